/**
 * The one-time connect page (DESIGN.md section 5): a small server-rendered form through which a
 * person gives sosvault their Jira PAT without the assistant ever seeing it. Mounted at
 * `/connect`: `GET /connect/{code}` shows the form, `POST /connect/{code}` connects.
 *
 * Every answer is HTML (never JSON, never a stack) under a strict CSP with a per-response nonce
 * for the one inline stylesheet; no script, no external asset. The PAT is never written into a
 * page, not even back into the form after a failure.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { readLimited } from "./json_body.ts";
import { AppError, toAppError } from "../errors.ts";
import { newRequestId } from "../ids.ts";
import type { Logger } from "../log.ts";
import type { ConnectionService, PublicConnection } from "../connections/service.ts";
import {
  ConnectLinkError,
  type ConnectLinkRecord,
  type ConnectLinks,
  MAX_CONNECT_ATTEMPTS,
  unknownConnectLink,
} from "../connect/links.ts";
import type { AppEnv } from "./middleware.ts";
import { findSecretInText } from "../security/secret_scan.ts";

export interface ConnectPageDeps {
  links: ConnectLinks;
  connections: ConnectionService;
  log: Logger;
  publicUrl: () => string;
  allowedHosts: readonly string[];
}

export const MAX_FORM_BODY = 16 * 1024;
const FORM_FIELDS = ["base_url", "pat", "email", "token_kind"] as const;
interface FormFields {
  base_url: string;
  pat: string;
  /** Jira Cloud only; an empty field is left out. */
  email?: string;
  token_kind?: "scoped";
}

export function connectPageRoutes(deps: ConnectPageDeps): Hono<AppEnv> {
  const { links, connections, log } = deps;
  const app = new Hono<AppEnv>();

  app.get("/:code", async (c) => {
    const r = responder(c, deps);
    let record: ConnectLinkRecord;
    try {
      record = await links.open(c.req.param("code"));
    } catch (err) {
      return r.failure(err);
    }
    return r.page(200, formPage(record, { baseUrl: record.base_url ?? "", deps }));
  });

  app.post("/:code", async (c) => {
    const r = responder(c, deps);
    try {
      const refusal = crossSiteRefusal(c.req.raw, deps.publicUrl());
      if (refusal) {
        log.warn("connect_page_cross_site_refused", { request_id: r.requestId, ...refusal });
        throw new AppError(
          "forbidden",
          "This form was sent from another web site, so sosvault refused it. Open the connect link yourself, directly in your browser, and submit the form there.",
        );
      }
      const code = c.req.param("code");
      const record = await links.open(code);
      let fields: FormFields;
      try {
        fields = await readForm(c.req.raw);
      } catch (err) {
        return r.failure(err, { record, baseUrl: record.base_url ?? "" });
      }
      const echo = await echoableBaseUrl(fields, record);
      const email = await echoableEmail(fields);
      try {
        // Security: a base URL sosvault would refuse never costs an attempt and never reaches
        // Jira; the same rule runs again inside connect().
        connections.validateBaseUrl(fields.base_url);
      } catch (err) {
        return r.failure(err, { record, baseUrl: echo });
      }
      let connection: PublicConnection;
      try {
        // The link, not the browser, decides the owner: the code is the capability.
        connection = await links.redeem(
          code,
          (rec) =>
            connections.connect({ user: rec.user, requestId: r.requestId, source: "http" }, fields),
        );
      } catch (err) {
        if (err instanceof ConnectLinkError) throw err;
        // Attempts left decide whether a retry form is offered; a burned link says so.
        let after: ConnectLinkRecord | null = null;
        let closed: unknown = null;
        try {
          after = await links.open(code);
        } catch (e) {
          closed = e;
        }
        // The second step for Jira Cloud: the site said it is Cloud, so ask for the e-mail.
        const askEmail = err instanceof AppError && /enter your e-mail/.test(err.message);
        return r.failure(
          err,
          after ? { record: after, baseUrl: echo, email, askEmail } : { then: closed },
        );
      }
      log.info("connect_page_connected", {
        request_id: r.requestId,
        user: record.user,
        connection_id: connection.connection_id,
      });
      return r.page(200, successPage(record.user, connection));
    } catch (err) {
      return r.failure(err);
    }
  });

  app.all("/:code", (c) => {
    const r = responder(c, deps);
    return r.page(
      405,
      messagePage(
        "Method not allowed",
        "This page only opens (GET) and submits its form (POST).",
        r.requestId,
      ),
      { Allow: "GET, POST" },
    );
  });

  app.all("*", (c) => responder(c, deps).failure(unknownConnectLink()));
  app.onError((err, c) => responder(c, deps).failure(err));
  return app;
}

/**
 * Security (CSRF): a POST from another site is refused. A browser tells us where a form came
 * from through `Origin` and `Sec-Fetch-Site`; when present they must say "this origin".
 * `Origin: null` is what a browser sends for our own form because the page is served with
 * `Referrer-Policy: no-referrer`, so it passes only when `Sec-Fetch-Site` vouches for
 * same-origin. A request with neither header is not from a browser, so not a CSRF vector.
 */
export function crossSiteRefusal(
  req: Request,
  publicUrl: string,
): { origin: string | null; sec_fetch_site: string | null } | null {
  const origin = req.headers.get("origin");
  const site = req.headers.get("sec-fetch-site");
  const expected = new URL(publicUrl).origin;
  const siteOk = site === null || site === "same-origin";
  const originOk = origin === null || origin === expected ||
    (origin === "null" && site === "same-origin");
  if (siteOk && originOk) return null;
  return { origin: origin?.slice(0, 200) ?? null, sec_fetch_site: site?.slice(0, 40) ?? null };
}

/**
 * Reads the form strictly: the urlencoded type, at most 16 KiB, `base_url` and `pat`, and for
 * Jira Cloud `email` and the `token_kind=scoped` checkbox.
 */
async function readForm(req: Request): Promise<FormFields> {
  const type = (req.headers.get("content-type") ?? "").trim();
  if (!/^application\/x-www-form-urlencoded\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i.test(type)) {
    throw new AppError(
      "invalid_input",
      "The form must be sent as application/x-www-form-urlencoded: submit it from this page.",
    );
  }
  const text = await readLimitedText(req, MAX_FORM_BODY);
  const params = new URLSearchParams(text);
  const seen = new Map<string, string>();
  for (const [name, value] of params) {
    if (!(FORM_FIELDS as readonly string[]).includes(name)) {
      throw new AppError("invalid_input", "The form has unknown fields: submit it from this page.");
    }
    if (seen.has(name)) throw new AppError("invalid_input", `The form has ${name} twice.`);
    seen.set(name, value);
  }
  const baseUrl = (seen.get("base_url") ?? "").trim();
  const pat = seen.get("pat") ?? "";
  if (!baseUrl) throw new AppError("invalid_input", "Give the Jira base URL.");
  if (!seen.has("pat")) throw new AppError("invalid_input", "Give your personal access token.");
  const email = (seen.get("email") ?? "").trim();
  const kind = seen.get("token_kind");
  if (kind !== undefined && kind !== "scoped") {
    throw new AppError(
      "invalid_input",
      "The form has an unknown token kind: submit it from this page.",
    );
  }
  return {
    base_url: baseUrl,
    pat,
    ...(email ? { email } : {}),
    ...(kind ? { token_kind: kind } : {}),
  };
}

async function readLimitedText(req: Request, limit: number): Promise<string> {
  const bytes = await readLimited(
    req,
    limit,
    () => new AppError("payload_too_large", `The form is larger than ${limit / 1024} KiB.`),
    "The form could not be read completely: submit it again.",
  );
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new AppError("invalid_input", "The form is not valid UTF-8.");
  }
}

/**
 * Security: the submitted base URL is shown again only when it is a plain http(s) URL that
 * does not contain the PAT, nor anything secret-shaped (a token pasted into the wrong field
 * while another went into the right one), so a token is never sent back.
 */
/**
 * The e-mail is shown again after a failure only when it is a plain address, so the form need
 * not be refilled; a token pasted into it never is.
 */
async function echoableEmail(fields: FormFields): Promise<string> {
  const v = fields.email ?? "";
  if (!v || v.length > 320 || (fields.pat && v.includes(fields.pat))) return "";
  if (await findSecretInText(v)) return "";
  return /^[^\s@:]+@[^\s@:]+$/.test(v) ? v : "";
}

async function echoableBaseUrl(fields: FormFields, record: ConnectLinkRecord): Promise<string> {
  const v = fields.base_url;
  const fallback = record.base_url ?? "";
  if (v.length > 2048 || (fields.pat && v.includes(fields.pat))) return fallback;
  if (await findSecretInText(v)) return fallback;
  try {
    const u = new URL(v);
    return u.protocol === "https:" || u.protocol === "http:" ? v : fallback;
  } catch {
    return fallback;
  }
}

type FailureForm =
  | { record: ConnectLinkRecord; baseUrl: string; email?: string; askEmail?: boolean }
  | { then: unknown };

function responder(c: Context<AppEnv>, deps: ConnectPageDeps) {
  const requestId = c.get("requestId") ?? newRequestId();
  const nonce = newNonce();
  const page = (status: number, render: Render, extra: Record<string, string> = {}) =>
    new Response(render({ nonce, requestId }), {
      status,
      headers: { ...pageHeaders(nonce), ...extra },
    });
  return {
    requestId,
    page,
    /** The error's public message on an HTML page with the error's status; a retry form if any. */
    failure(err: unknown, form?: FailureForm): Response {
      const appErr = toAppError(err);
      const extra: Record<string, string> = {};
      if (appErr.retryAfter !== undefined) extra["Retry-After"] = String(appErr.retryAfter);
      if (appErr.code === "unexpected_error") {
        // The path holds the code, a live capability: it stays out of the log.
        deps.log.error("unexpected_error", { request_id: requestId, error: err, path: "/connect" });
      } else if (err instanceof ConnectLinkError) {
        deps.log.info("connect_link_refused", { request_id: requestId, reason: err.reason });
      } else if (appErr.detail) {
        deps.log.warn("request_failed", {
          request_id: requestId,
          code: appErr.code,
          detail: appErr.detail,
        });
      }
      const message = explain(appErr, deps.allowedHosts);
      if (form && "record" in form) {
        return page(
          appErr.status,
          formPage(form.record, {
            baseUrl: form.baseUrl,
            email: form.email,
            askEmail: form.askEmail,
            deps,
            error: message,
          }),
          extra,
        );
      }
      if (form && "then" in form && form.then instanceof ConnectLinkError) {
        // This failure was the last one the link allowed: say both things.
        return page(
          appErr.status,
          messagePage("Could not connect", `${message} ${form.then.message}`, requestId),
          extra,
        );
      }
      const status = err instanceof ConnectLinkError && err.reason === "expired"
        ? 410
        : appErr.status;
      return page(status, messagePage(titleFor(err), message, requestId), extra);
    },
  };
}

function explain(err: AppError, allowedHosts: readonly string[]): string {
  if (
    err.code === "forbidden" && allowedHosts.length > 0 && /JIRA_ALLOWED_HOSTS/.test(err.message)
  ) {
    return `sosvault may not connect to this Jira host. Allowed Jira hosts: ${
      allowedHosts.join(", ")
    }. Use one of them, or ask the operator to add yours to JIRA_ALLOWED_HOSTS.`;
  }
  // Service messages name API fields; the page names what the person sees.
  const m = err.message.replace(/^pat\b/, "The token").replace(/^base_url\b/, "The Jira base URL");
  return m.charAt(0).toUpperCase() + m.slice(1) + (/[.!?]$/.test(m) ? "" : ".");
}

function titleFor(err: unknown): string {
  if (err instanceof ConnectLinkError) {
    return {
      unknown: "Link not valid",
      expired: "Link expired",
      used: "Link already used",
      burned: "Link locked",
      busy: "Please wait",
    }[err.reason];
  }
  if (err instanceof AppError && err.code === "forbidden") return "Refused";
  return "Could not connect";
}

// ---- HTML -----------------------------------------------------------------------------------

type Render = (ctx: { nonce: string; requestId: string }) => string;

function pageHeaders(nonce: string): Record<string, string> {
  return {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy":
      `default-src 'none'; style-src 'nonce-${nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  };
}

function newNonce(): string {
  let s = "";
  for (const b of crypto.getRandomValues(new Uint8Array(18))) s += String.fromCharCode(b);
  return btoa(s);
}

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/**
 * A tagged template whose interpolations are escaped unless they are already `Html`. (Named
 * `markup`, not `html`, so the formatter leaves the markup exactly as written.)
 */
class Html {
  constructor(readonly text: string) {}
}
function markup(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  values.forEach((v, i) => {
    const items = Array.isArray(v) ? v : [v];
    for (const x of items) {
      if (x instanceof Html) out += x.text;
      else if (x !== null && x !== undefined && x !== false) out += escapeHtml(String(x));
    }
    out += strings[i + 1];
  });
  return new Html(out);
}

function layout(title: string, body: Html): Render {
  return ({ nonce }) =>
    markup`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>${title} · sosvault</title>
<style nonce="${nonce}">${new Html(STYLE)}</style>
</head>
<body>
<main class="card">
<p class="brand">sosvault</p>
${body}
</main>
</body>
</html>
`.text;
}

function formPage(
  record: ConnectLinkRecord,
  options: {
    baseUrl: string;
    deps: ConnectPageDeps;
    error?: string;
    email?: string;
    askEmail?: boolean;
  },
): Render {
  const user = record.user;
  const left = MAX_CONNECT_ATTEMPTS - record.attempts;
  const hosts = options.deps.allowedHosts;
  const error = options.error && markup`<p class="error" role="alert">${options.error}</p>`;
  const allowed = hosts.length > 0 &&
    markup`<p class="hint" id="allowed-hosts">Allowed Jira hosts: ${
      hosts.map((h, i) => markup`${i ? ", " : ""}<code>${h}</code>`)
    }</p>`;
  const attempts = record.attempts > 0 && ` ${left} attempt${left === 1 ? "" : "s"} left.`;
  const body = markup`<h1>Connect to Jira</h1>
<p class="owner">This connection will belong to sosvault user <strong id="owner">${user}</strong>.</p>
<p class="warn">Continue only if you are <strong>${user}</strong> and you just asked your assistant to connect to Jira. Whoever submits this form gives their Jira token to ${user}'s sosvault account.</p>
${error}
<form method="post" autocomplete="off">
<label for="base_url">Jira base URL</label>
<input id="base_url" name="base_url" type="url" required maxlength="2048" placeholder="https://jira.example.com" spellcheck="false" autocapitalize="off" value="${options.baseUrl}">
${allowed}
<label for="pat">Personal access token</label>
<input id="pat" name="pat" type="password" required autocomplete="off" spellcheck="false" autocapitalize="off" maxlength="1024">
<p class="hint">Create one in Jira under your profile → Personal Access Tokens. sosvault checks it with Jira and stores it encrypted; your assistant never sees it and only gets a connection id.</p>
<fieldset class="${options.askEmail ? "cloud needed" : "cloud"}">
<legend>Jira Cloud (<code>https://&lt;site&gt;.atlassian.net</code>) only</legend>
<label for="email">Atlassian account e-mail</label>
<input id="email" name="email" type="email" maxlength="320" spellcheck="false" autocapitalize="off" autocomplete="off" ${
    options.askEmail ? new Html("required ") : ""
  }value="${options.email ?? ""}">
<p class="hint">${
    options.askEmail
      ? "This Jira is Jira Cloud: enter the e-mail of your Atlassian account, and put your API token (from id.atlassian.com → Security → API tokens) in the token field above."
      : "Leave empty for Jira Server/Data Center. For Jira Cloud, enter your Atlassian account e-mail and put an API token (id.atlassian.com → Security → API tokens) in the token field."
  } sosvault stores the e-mail encrypted and shows only a masked hint.</p>
<label class="check">
<input id="token_kind" name="token_kind" type="checkbox" value="scoped">
This is an API token with scopes</label>
</fieldset>
<button type="submit">Connect</button>
</form>
<p class="meta">This link works once and expires at <time datetime="${record.expires_at}">${
    formatUtc(record.expires_at)
  }</time>.${attempts}</p>`;
  return layout("Connect to Jira", body);
}

function successPage(user: string, c: PublicConnection): Render {
  const body = markup`<h1>Connected</h1>
<p class="ok" role="status">Jira account <strong>${c.jira_user.display_name}</strong> (${c.jira_user.name}${
    c.email_hint ? `, ${c.email_hint}` : ""
  }) on <code>${c.base_url}</code> is now connected for sosvault user <strong>${user}</strong>.</p>
<p>Connection id:</p>
<p class="id"><code id="connection-id">${c.connection_id}</code></p>
<p>Return to your assistant and give it this connection id. You can close this page; your token will not be shown anywhere.</p>
<p class="meta">The connection expires at <time datetime="${c.expires_at}">${
    formatUtc(c.expires_at)
  }</time>.</p>`;
  return layout("Connected", body);
}

function messagePage(title: string, message: string, requestId: string): Render {
  const body = markup`<h1>${title}</h1>
<p class="error" role="alert">${message}</p>
<p class="meta">Request id: <code>${requestId}</code></p>`;
  return layout(title, body);
}

function formatUtc(iso: string): string {
  return iso.replace("T", " ").replace(/:\d\d\.\d{3}Z$/, " UTC");
}

const STYLE = `
:root{color-scheme:light dark;--bg:#f4f5f7;--card:#fff;--fg:#172b4d;--muted:#5e6c84;--line:#c1c7d0;
--accent:#0052cc;--accent-fg:#fff;--warn-bg:#fffae6;--warn-line:#ffab00;--err-bg:#ffebe6;
--err-line:#de350b;--ok-bg:#e3fcef;--ok-line:#00875a}
@media (prefers-color-scheme:dark){:root{--bg:#1d2125;--card:#22272b;--fg:#dee4ea;--muted:#9fadbc;
--line:#454f59;--accent:#579dff;--accent-fg:#1d2125;--warn-bg:#533f04;--err-bg:#5d1f1a;--ok-bg:#1c3329}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:flex-start;justify-content:center;
background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.card{width:100%;max-width:34rem;margin:3rem 1rem;padding:2rem;background:var(--card);
border-radius:12px;box-shadow:0 1px 3px rgba(9,30,66,.25)}
.brand{margin:0 0 .25rem;color:var(--muted);font-size:.8rem;letter-spacing:.08em;text-transform:uppercase}
h1{margin:0 0 1rem;font-size:1.5rem}
.owner{font-size:1.1rem;margin:0 0 .75rem}
.warn,.error,.ok{padding:.75rem 1rem;border-radius:8px;border-left:4px solid}
.warn{background:var(--warn-bg);border-color:var(--warn-line);font-size:.9rem}
.error{background:var(--err-bg);border-color:var(--err-line)}
.ok{background:var(--ok-bg);border-color:var(--ok-line)}
form{margin-top:1.25rem}
label{display:block;font-weight:600;margin:1rem 0 .3rem}
input{width:100%;padding:.6rem .7rem;font:inherit;color:inherit;background:transparent;
border:1px solid var(--line);border-radius:6px}
input:focus{outline:2px solid var(--accent);outline-offset:1px}
.hint{margin:.35rem 0 0;color:var(--muted);font-size:.85rem}
fieldset{margin:1.25rem 0 0;padding:.25rem 1rem 1rem;border:1px solid var(--line);border-radius:8px}
fieldset.needed{border:2px solid var(--warn-line)}
legend{padding:0 .35rem;font-size:.9rem;color:var(--muted)}
label.check{display:flex;gap:.5rem;align-items:center;font-weight:400}
label.check input{width:auto}
button{margin-top:1.5rem;width:100%;padding:.7rem;font:inherit;font-weight:600;cursor:pointer;
color:var(--accent-fg);background:var(--accent);border:0;border-radius:6px}
.meta{margin:1.25rem 0 0;color:var(--muted);font-size:.85rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.id code{display:block;padding:.75rem 1rem;background:var(--bg);border-radius:6px;
font-size:1rem;word-break:break-all;user-select:all}
`;
