/**
 * Our thin Jira REST client (JIRA_FACTS.md section D). Data Center: Bearer PAT, REST v2; Cloud:
 * Basic e-mail + API token, REST v3 (src/jira/auth.ts builds both; a bare string is a DC PAT),
 * redirects never followed, no cookies, a non-browser User-Agent; every answer is classified
 * by status, headers and content type into the contract's error codes, never by parsing HTML.
 */
import { AppError } from "../errors.ts";
import type { JiraTransport } from "./transport.ts";
import { cloudMyselfSchema, type JiraUser, myselfSchema } from "./schemas.ts";
import { type Deployment, type JiraAuth, toAuth } from "./auth.ts";
import { formsOf } from "../log.ts";

export const USER_AGENT = "sosvault/0.1 (+jira-attachment-client)";

export interface JiraClientOptions {
  transport: JiraTransport;
  timeoutMs: number;
  /** Bounded retries for idempotent GETs only; uploads are never retried. */
  retries?: number;
  /** Longest Retry-After sosvault will wait inside one request before answering rate_limited. */
  maxRetryWaitMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** The clock the whole-call deadline is read from (injected so tests need not sleep). */
  now?: () => number;
}

const SSO_HINT =
  "Jira answered with a login or single sign-on page instead of its REST API: check that base_url is the Jira base URL that accepts personal access tokens (not an SSO gateway or a wrong context path)";

export class JiraClient {
  readonly #o: Required<JiraClientOptions>;

  constructor(options: JiraClientOptions) {
    this.#o = {
      retries: 2,
      maxRetryWaitMs: 5000,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      now: () => Date.now(),
      ...options,
    };
  }

  /** The PAT probe: `/myself` cannot be reached anonymously, so a 200 proves the token. */
  async myself(baseUrl: string, pat: string | JiraAuth): Promise<JiraUser> {
    const auth = toAuth(baseUrl, pat);
    const body = await this.getJson(auth.apiBase, `${auth.restPrefix}/myself`, auth, {
      notFound:
        "Jira has no REST API at this base URL: check the context path (for example https://host/jira)",
      scope: "read:jira-user",
    });
    // Cloud has no user names since the GDPR changes: the accountId is the stable identity.
    const parsed = (auth.deployment === "cloud" ? cloudMyselfSchema : myselfSchema).safeParse(body);
    if (!parsed.success) {
      throw new AppError("upstream_unavailable", "Jira answered /myself with an unexpected body");
    }
    return parsed.data;
  }

  /**
   * What kind of Jira answers at `baseUrl`, from `GET /rest/api/2/serverInfo` (deploymentType
   * "Cloud", or "Server"/"DataCenter"), asked without any credential: nothing secret is sent
   * before sosvault knows where it is going. Undefined when the answer does not say (an SSO
   * gateway, an instance that hides serverInfo); network and TLS failures are thrown, as the
   * probe with the credential would meet them too.
   */
  async deploymentOf(baseUrl: string): Promise<Deployment | undefined> {
    const res = await this.sendAnonymous(baseUrl + "/rest/api/2/serverInfo");
    const body = await readSmallJson(res);
    const type = (body as { deploymentType?: unknown } | undefined)?.deploymentType;
    if (type === "Cloud") return "cloud";
    if (type === "Server" || type === "DataCenter") return "data_center";
    return undefined;
  }

  /**
   * The site's cloudId from `{site}/_edge/tenant_info` (public, no credential): the gateway
   * route of scoped tokens needs it.
   */
  async cloudIdOf(siteUrl: string): Promise<string> {
    const res = await this.sendAnonymous(new URL("/_edge/tenant_info", siteUrl).href);
    const body = await readSmallJson(res);
    const id = (body as { cloudId?: unknown } | undefined)?.cloudId;
    if (typeof id !== "string" || !/^[0-9a-fA-F-]{8,64}$/.test(id)) {
      throw new AppError(
        "upstream_unavailable",
        "the Jira Cloud site did not tell its cloudId (/_edge/tenant_info), which a scoped API token needs: check base_url, or use a classic API token",
      );
    }
    return id;
  }

  /**
   * Whether a scoped Cloud token may add attachments, without adding one: an empty multipart
   * POST to issue id 0, which no Jira has. The gateway refuses a missing scope before Jira runs
   * (401/403 "scope does not match"); any other answer (404, 400, 415) means the scope is there.
   */
  async probeWriteScope(auth: JiraAuth): Promise<void> {
    const boundary = "sosvault-scope-probe";
    const res = await this.send(auth.apiBase, `${auth.restPrefix}/issue/0/attachments`, auth, {
      method: "POST",
      headers: { "Content-Type": `multipart/form-data; boundary=${boundary}` },
      body: `--${boundary}--\r\n`,
    });
    // Security: the body is only tested, never copied.
    const prefix = res.status === 401 || res.status === 403 ? await readPrefix(res) : "";
    await res.body?.cancel().catch(() => {});
    if (/scope does not match/i.test(prefix)) throw missingScope("write:jira-work");
  }

  /** One credential-free GET, same client rules (no redirects, our User-Agent, the timeout). */
  async sendAnonymous(url: string): Promise<Response> {
    const signal = AbortSignal.timeout(this.#o.timeoutMs);
    try {
      return await this.#o.transport(
        new Request(url, {
          method: "GET",
          headers: { "Accept": "application/json", "User-Agent": USER_AGENT },
          redirect: "manual",
          signal,
        }),
      );
    } catch (err) {
      throw transportFailure(err);
    }
  }

  /**
   * GET with bounded retries on 429/502/503/504 and on connections Jira never accepted.
   * JIRA_TIMEOUT_SECONDS is one deadline for the whole call, computed once: every attempt and
   * every wait between attempts fits inside it, and a wait that would not fit is not started.
   * A timeout is never retried (the request may have reached Jira, and the budget is spent).
   * Aborting `signal` (a revoke in flight) stops it at once, retries included.
   */
  async getJson(
    baseUrl: string,
    path: string,
    pat: string | JiraAuth,
    messages: JiraMessages = {},
    signal?: AbortSignal,
  ): Promise<unknown> {
    const auth = toAuth(baseUrl, pat);
    const deadlineAt = this.#o.now() + this.#o.timeoutMs;
    const deadline = AbortSignal.timeout(this.#o.timeoutMs);
    const callSignal = signal ? AbortSignal.any([signal, deadline]) : deadline;
    const fits = (wait: number) => this.#o.now() + wait < deadlineAt;
    for (let attempt = 0;; attempt++) {
      // Security: no request, first or retried, goes out with the PAT once the use is aborted.
      signal?.throwIfAborted();
      let res: Response;
      try {
        res = await this.send(baseUrl, path, auth, { method: "GET", signal: callSignal }, deadline);
      } catch (err) {
        const wait = backoff(attempt);
        if (
          attempt < this.#o.retries && !signal?.aborted && !deadline.aborted &&
          err instanceof AppError && err.detail?.beforeSend === true && fits(wait)
        ) {
          await this.#o.sleep(wait);
          continue;
        }
        throw err;
      }
      if (RETRYABLE.has(res.status) && attempt < this.#o.retries) {
        const wait = res.status === 429 ? retryAfterMs(res) ?? backoff(attempt) : backoff(attempt);
        if (wait <= this.#o.maxRetryWaitMs && fits(wait)) {
          await res.body?.cancel();
          await this.#o.sleep(wait);
          continue;
        }
      }
      return await readJsonOrThrow(res, messages, auth);
    }
  }

  /** One request to `{baseUrl}{path}`. Throws upstream_unavailable on network/TLS/timeout. */
  async send(
    baseUrl: string,
    path: string,
    pat: string | JiraAuth,
    init: RequestInit,
    /** The caller's whole-call deadline, when `init.signal` already includes it. */
    deadline?: AbortSignal,
  ): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("Authorization", toAuth(baseUrl, pat).authorization);
    headers.set("Accept", "application/json");
    headers.set("User-Agent", USER_AGENT);
    // Jira's XSRF filter also guards bodyless mutations; harmless on GETs.
    headers.set("X-Atlassian-Token", "no-check");
    // With a whole-call deadline, init.signal already carries it; otherwise one per request.
    const own = deadline ?? AbortSignal.timeout(this.#o.timeoutMs);
    const signal = !init.signal
      ? own
      : deadline
      ? init.signal
      : AbortSignal.any([init.signal, own]);
    try {
      return await this.#o.transport(
        new Request(baseUrl + path, { ...init, headers, redirect: "manual", signal }),
      );
    } catch (err) {
      // The deadline is ours, not the caller's abort: it becomes upstream_unavailable below.
      if (init.signal?.aborted && !deadline?.aborted) throw init.signal.reason;
      throw transportFailure(deadline?.aborted ? deadline.reason : err);
    }
  }
}

/**
 * Whether the connection failed before any request byte left: refused or reset while
 * connecting. Only these are safe and useful to retry; a timeout or a broken exchange is not.
 */
function failedBeforeSend(err: unknown): boolean {
  const text = `${String(err)} ${String((err as { cause?: unknown })?.cause ?? "")}`;
  return /\(Connect\)/.test(text) && /connection (refused|reset)/i.test(text);
}

function transportFailure(err: unknown): AppError {
  const timedOut = err instanceof DOMException && err.name === "TimeoutError";
  // The underlying error text can contain the URL but never headers; still, keep it in
  // `detail` (server log only) and give the client a fixed message.
  return new AppError(
    "upstream_unavailable",
    timedOut
      ? "Jira did not answer in time: try again later, or ask the operator to raise JIRA_TIMEOUT_SECONDS"
      : "Jira could not be reached (network or TLS failure): check base_url, and that the Jira certificate is trusted (JIRA_CA_FILE)",
    {
      detail: {
        error: String((err as Error)?.message ?? err),
        beforeSend: !timedOut && failedBeforeSend(err),
      },
    },
  );
}

/** A 2xx JSON answer of at most 64 KiB, else undefined (the body is then discarded). */
async function readSmallJson(res: Response): Promise<unknown> {
  if (res.status < 200 || res.status >= 300 || !isJson(res)) {
    await res.body?.cancel();
    return undefined;
  }
  const text = await res.text().catch(() => "");
  if (text.length > 65536) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Route-specific wording, and the Cloud scope a route needs (named when a token lacks it). */
export interface JiraMessages {
  notFound?: string;
  forbidden?: string;
  scope?: string;
  /**
   * Told where (JSON paths, never the value) the caller's own token was found and replaced in
   * a 2xx answer, so the caller can record `secret_in_upstream` and warn the user. Without it
   * such an answer is refused whole (upstream_unavailable).
   */
  onSecret?: (paths: string[]) => void;
}

const REDACTED = "[redacted]";
const SAFE_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/;
const MAX_DEPTH = 64;

/**
 * A copy of a parsed answer with every form of `secrets` (plain, URL-encoded, JSON-escaped,
 * base64) replaced in every string and key, and the paths where one was found. Longest forms
 * first, so a form containing another is replaced whole. A key that is not a plain name is
 * shown as `*` in a path (it might be the secret itself).
 */
function redactSecrets(
  value: unknown,
  secrets: readonly string[],
): { value: unknown; found: string[] } {
  const found: string[] = [];
  const forms = [...new Set(secrets.filter(Boolean).flatMap((s) => formsOf(s)))]
    .sort((a, b) => b.length - a.length);
  if (forms.length === 0) return { value, found };
  const walk = (v: unknown, at: string, d: number): unknown => {
    if (typeof v === "string") {
      let out = v;
      for (const f of forms) if (out.includes(f)) out = out.replaceAll(f, REDACTED);
      if (out !== v) found.push(at || "$");
      return out;
    }
    if (v === null || typeof v !== "object") return v;
    // JSON.parse output: depth is bounded by Jira's nesting; refuse absurd depth outright.
    if (d > MAX_DEPTH) {
      throw new AppError("upstream_unavailable", "Jira sent an answer nested too deeply");
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${at}[${i}]`, d + 1));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const key = walk(k, `${at}.*`, d + 1) as string;
      out[key] = walk(x, `${at}.${SAFE_KEY.test(key) ? key : "*"}`, d + 1);
    }
    return out;
  };
  return { value: walk(value, "", 0), found };
}

const RETRYABLE = new Set([429, 502, 503, 504]);

function backoff(attempt: number): number {
  return 200 * 2 ** attempt + Math.floor(Math.random() * 100);
}

export function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get("retry-after");
  if (!v) return rateLimitResetMs(res);
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Jira Cloud's `X-RateLimit-Reset` (ISO 8601), when a 429 came without Retry-After. */
function rateLimitResetMs(res: Response): number | undefined {
  const v = res.headers.get("x-ratelimit-reset");
  if (!v) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function isJson(res: Response): boolean {
  return /^application\/([a-z.+-]*\+)?json\b/i.test(res.headers.get("content-type") ?? "");
}

/**
 * Maps a Jira answer to JSON or to the contract's error. The body of an error is never copied
 * into a message: it may be an HTML page, and it may echo what we sent.
 */
export async function readJsonOrThrow(
  res: Response,
  messages: JiraMessages = {},
  pat?: string | JiraAuth,
): Promise<unknown> {
  const status = res.status;
  const auth = typeof pat === "string" ? undefined : pat;
  const secrets = typeof pat === "string" ? [pat] : pat?.secrets ?? [];
  const cloud = auth?.deployment === "cloud";
  const loginReason = (res.headers.get("x-seraph-loginreason") ?? "").toUpperCase();
  const anonymous = (res.headers.get("x-ausername") ?? "").toLowerCase() === "anonymous";
  if (status >= 200 && status < 300) {
    if (!isJson(res)) {
      await res.body?.cancel();
      throw new AppError("invalid_credentials", SSO_HINT);
    }
    if (anonymous || /AUTHENTICATED_FAILED|AUTHENTICATION_DENIED/.test(loginReason)) {
      await res.body?.cancel();
      throw new AppError(
        "invalid_credentials",
        cloud
          ? "Jira Cloud did not accept the e-mail and API token (it answered as an anonymous user): check both, or create a new API token, and reconnect"
          : "Jira did not accept the personal access token (it answered as an anonymous user): create a new token and reconnect",
      );
    }
    let text: string;
    try {
      text = await res.text();
    } catch {
      throw new AppError("upstream_unavailable", "Jira sent a malformed JSON answer");
    }
    // Security: a call that cannot report a finding (the /myself probe at connect and verify)
    // still refuses an answer quoting the token whole: no connection is stored on such data.
    if (
      !messages.onSecret &&
      secrets.some((p) => p && (text.includes(p) || text.includes(p.replaceAll("/", "\\/"))))
    ) {
      throw new AppError(
        "upstream_unavailable",
        "Jira's answer contained the personal access token itself, so sosvault did not use it: tell the Jira administrator",
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new AppError("upstream_unavailable", "Jira sent a malformed JSON answer");
    }
    // Security: Jira data (a display name, a file name) reaches answers and the model. For a
    // call that reports findings (issue data), the caller's own token quoted in it (someone put
    // it in a file name) is replaced by [redacted] in every decoded string before anything
    // reads the answer: refusing it whole would lock the issue until the item is removed.
    const redacted = redactSecrets(body, secrets);
    if (redacted.found.length) messages.onSecret?.(redacted.found);
    return redacted.value;
  }
  const deniedReason = (res.headers.get("x-authentication-denied-reason") ?? "").toUpperCase();
  // Security: the body is only tested for the gateway's scope refusal, never copied.
  const prefix = cloud && (status === 401 || status === 403) ? await readPrefix(res) : "";
  await res.body?.cancel().catch(() => {});
  if (status >= 300 && status < 400) throw new AppError("invalid_credentials", SSO_HINT);
  if (/CAPTCHA/.test(deniedReason) || (cloud && /AUTHENTICATION_DENIED/.test(loginReason))) {
    throw new AppError(
      "invalid_credentials",
      "Jira refused the login after earlier failed attempts (a CAPTCHA is now required): log in to Jira once in a browser, then reconnect",
    );
  }
  if (cloud && /scope does not match/i.test(prefix)) throw missingScope(messages.scope);
  if (status === 401 && cloud) {
    throw new AppError(
      "invalid_credentials",
      "Jira Cloud rejected the e-mail and API token (wrong e-mail, or the token is invalid, expired or revoked; a scoped token must be marked as scoped): check both and reconnect",
    );
  }
  if (status === 401) {
    throw new AppError(
      "invalid_credentials",
      "Jira rejected the personal access token (invalid, expired or revoked): create a new token in Jira and reconnect",
    );
  }
  if (status === 403) {
    if (/AUTHENTICATION_DENIED|AUTHENTICATED_FAILED/.test(loginReason)) {
      throw new AppError(
        "invalid_credentials",
        "Jira refused the login (it may require a browser login or CAPTCHA first): log in to Jira in a browser, then reconnect",
      );
    }
    throw new AppError(
      "forbidden",
      messages.forbidden ?? "Jira denied this action for your account",
    );
  }
  if (status === 404) {
    throw new AppError(
      "not_found",
      messages.notFound ?? "Jira says this does not exist, or you may not see it",
    );
  }
  if (status === 429) {
    const wait = retryAfterMs(res);
    const seconds = Math.max(1, Math.ceil((wait ?? 5000) / 1000));
    throw new AppError(
      "rate_limited",
      `Jira is rate limiting this account: try again in ${seconds} seconds`,
      {
        retryAfter: seconds,
      },
    );
  }
  if (status === 413) {
    throw new AppError(
      "payload_too_large",
      "a proxy in front of Jira refused the request as too large",
    );
  }
  throw new AppError(
    "upstream_unavailable",
    `Jira answered with HTTP ${status}: try again later, or ask the Jira administrator`,
  );
}

function missingScope(scope?: string): AppError {
  return new AppError(
    "forbidden",
    `the scoped API token lacks a scope sosvault needs${
      scope ? ` (${scope})` : ""
    }: create a scoped token with read:jira-user, read:jira-work and write:jira-work, and reconnect`,
  );
}

async function readPrefix(res: Response, max = 1024): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return "";
  let text = "";
  const dec = new TextDecoder();
  try {
    while (text.length < max) {
      const { done, value } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
  } catch {
    return text;
  } finally {
    reader.cancel().catch(() => {});
  }
  return text.slice(0, max);
}
