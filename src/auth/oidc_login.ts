/**
 * The connect page bound to a login (SOSVAULT_AUTH=oidc with SOSVAULT_OIDC_CLIENT_ID): before
 * `/connect/{code}` shows or accepts anything, the browser signs in at the IdP (authorization
 * code + PKCE + state + nonce, confidential client), and the page goes on only when the person
 * signed in is the user the link was minted for. Anyone else is refused without touching the
 * link (no attempt counted, nothing burned) and the refusal is a `denied` security event.
 *
 * The login lives in a short session: a random id in an HttpOnly, SameSite=Lax cookie
 * (`__Host-` and Secure when the public URL is https; on plain-http loopback development the
 * browser would drop a `__Host-` cookie, so it is a plain one there), and sha256(id) in KV.
 */
import { Hono } from "hono";
import type { Context, MiddlewareHandler } from "hono";
import { jwtVerify } from "jose";
import { AppError } from "../errors.ts";
import { kvKeys } from "../kv_keys.ts";
import { toHex } from "../vault/cipher.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { EventLog } from "../security/events.ts";
import type { ConnectLinks } from "../connect/links.ts";
import type { AppEnv } from "../http/middleware.ts";
import type { OidcAuth } from "./oidc.ts";
import { ACCEPTED_ALGORITHMS, CLOCK_SKEW_SECONDS, userName } from "./oidc_verify.ts";

export const CALLBACK_PATH = "/oidc/callback";
const SESSION_TTL_MS = 15 * 60_000;
const LOGIN_TTL_MS = 10 * 60_000;

interface LoginState {
  verifier: string;
  nonce: string;
  return_to: string;
}
interface Session {
  user: string;
  expires_at: number;
}

export interface ConnectLoginDeps {
  oidc: OidcAuth;
  kv: Deno.Kv;
  clock: Clock;
  log: Logger;
  events: EventLog;
  links: ConnectLinks;
  publicUrl: () => string;
  /** The confidential client's secret, read from SOSVAULT_OIDC_CLIENT_SECRET_FILE at start. */
  clientSecret: string;
  fetch?: typeof fetch;
}

function random(bytes = 32): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function sha256(text: string): Promise<string> {
  return toHex(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))),
  );
}

async function s256(verifier: string): Promise<string> {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)),
  );
  return btoa(String.fromCharCode(...d)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function cookieNames(publicUrl: string) {
  const secure = new URL(publicUrl).protocol === "https:";
  return {
    secure,
    session: secure ? "__Host-sosvault_session" : "sosvault_session",
    login: secure ? "__Host-sosvault_login" : "sosvault_login",
  };
}

function setCookie(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${
    secure ? "; Secure" : ""
  }`;
}

function readCookie(c: Context, name: string): string | null {
  for (const part of (c.req.header("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** Guards GET/POST /connect/{code}: a login first, then only the link's own user. */
export function connectLoginGate(deps: ConnectLoginDeps): MiddlewareHandler<AppEnv> {
  return async function connectLoginGateMiddleware(c, next) {
    const code = c.req.param("code");
    if (!code) return await next();
    let linkUser: string;
    try {
      linkUser = (await deps.links.open(code)).user;
    } catch {
      // Unknown, expired or used: the page itself says which, and a login would not help.
      return await next();
    }
    const names = cookieNames(deps.publicUrl());
    const session = await readSession(deps, readCookie(c, names.session));
    if (!session) {
      if (c.req.method !== "GET") {
        return page(
          401,
          "Sign in first",
          "Open the connect link again: it asks you to sign in before the form is shown.",
        );
      }
      try {
        return await startLogin(deps, `/connect/${code}`, names);
      } catch {
        return page(
          503,
          "Sign-in unavailable",
          "The identity provider cannot be reached right now. Try again shortly.",
        );
      }
    }
    // Security: the link's user, not the holder of the link, may give it a Jira token.
    if (session.user !== linkUser) {
      await deps.events.denied(
        { user: session.user, requestId: c.get("requestId"), source: "http" },
        { error_code: "forbidden" },
      );
      deps.log.warn("connect_page_wrong_user", {
        request_id: c.get("requestId"),
        user: session.user,
      });
      return page(
        403,
        "Not your link",
        `You are signed in as ${session.user}, but this link was made for another sosvault user. Nothing was changed: ask your own assistant for a connect link.`,
      );
    }
    await next();
  };
}

async function readSession(deps: ConnectLoginDeps, id: string | null): Promise<Session | null> {
  if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
  const s = (await deps.kv.get<Session>(kvKeys.oidcSession(await sha256(id)))).value;
  return s && s.expires_at > deps.clock().getTime() ? s : null;
}

async function startLogin(
  deps: ConnectLoginDeps,
  returnTo: string,
  names: ReturnType<typeof cookieNames>,
): Promise<Response> {
  const meta = await deps.oidc.keys.metadata();
  const state = random();
  const login: LoginState = { verifier: random(48), nonce: random(), return_to: returnTo };
  await deps.kv.set(kvKeys.oidcLogin(await sha256(state)), login, { expireIn: LOGIN_TTL_MS });
  const url = new URL(meta.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: deps.oidc.config.clientId!,
    redirect_uri: `${deps.publicUrl()}${CALLBACK_PATH}`,
    scope: "openid profile",
    state,
    nonce: login.nonce,
    code_challenge: await s256(login.verifier),
    code_challenge_method: "S256",
  }).toString();
  return new Response(null, {
    status: 302,
    headers: {
      Location: url.href,
      // Security: the state is also bound to this browser, so a login started elsewhere (login
      // CSRF) cannot finish here.
      "Set-Cookie": setCookie(names.login, state, LOGIN_TTL_MS / 1000, names.secure),
      "Cache-Control": "no-store",
    },
  });
}

/** GET /oidc/callback: checks state, redeems the code, verifies the ID token, opens a session. */
export function connectLoginRoutes(deps: ConnectLoginDeps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.get(CALLBACK_PATH, async (c) => {
    const names = cookieNames(deps.publicUrl());
    const state = c.req.query("state") ?? "";
    const code = c.req.query("code") ?? "";
    const cookieState = readCookie(c, names.login);
    if (!state || !code || cookieState !== state) {
      return page(400, "Sign-in not recognised", "Open the connect link again to sign in.");
    }
    const key = kvKeys.oidcLogin(await sha256(state));
    const login = (await deps.kv.get<LoginState>(key)).value;
    await deps.kv.delete(key); // one use, whatever happens next
    if (!login) return page(400, "Sign-in expired", "Open the connect link again to sign in.");
    let user: string | null;
    try {
      user = await redeem(deps, code, login);
    } catch (err) {
      deps.log.warn("connect_login_failed", {
        request_id: c.get("requestId"),
        reason: err instanceof AppError ? err.message : (err as Error).name,
      });
      return page(
        502,
        "Sign-in failed",
        "The identity provider's answer could not be checked. Open the connect link again.",
      );
    }
    if (!user) {
      return page(
        403,
        "Sign-in refused",
        "Your account's user name does not fit sosvault's user-name rules.",
      );
    }
    if (await deps.oidc.users.isBlocked(user)) {
      await deps.events.denied({ user, requestId: c.get("requestId"), source: "http" }, {
        error_code: "forbidden",
      });
      return page(403, "Sign-in refused", "This user was removed from sosvault by the operator.");
    }
    const id = random();
    const session: Session = { user, expires_at: deps.clock().getTime() + SESSION_TTL_MS };
    await deps.kv.set(kvKeys.oidcSession(await sha256(id)), session, { expireIn: SESSION_TTL_MS });
    const headers = new Headers({ Location: login.return_to, "Cache-Control": "no-store" });
    headers.append("Set-Cookie", setCookie(names.session, id, SESSION_TTL_MS / 1000, names.secure));
    headers.append("Set-Cookie", setCookie(names.login, "", 0, names.secure));
    return new Response(null, { status: 303, headers });
  });
  return r;
}

/** The token request (client_secret_basic, PKCE verifier) and the ID token's checks. */
async function redeem(
  deps: ConnectLoginDeps,
  code: string,
  login: LoginState,
): Promise<string | null> {
  const meta = await deps.oidc.keys.metadata();
  const { clientId } = deps.oidc.config;
  const res = await (deps.fetch ?? fetch)(meta.token_endpoint, {
    method: "POST",
    redirect: "error",
    signal: AbortSignal.timeout(10_000),
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
      authorization: `Basic ${
        btoa(`${encodeURIComponent(clientId!)}:${encodeURIComponent(deps.clientSecret)}`)
      }`,
    },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: `${deps.publicUrl()}${CALLBACK_PATH}`,
      code_verifier: login.verifier,
    }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || typeof body.id_token !== "string") {
    throw new AppError("upstream_unavailable", `token endpoint answered ${res.status}`);
  }
  const { payload } = await jwtVerify(body.id_token, deps.oidc.keys.resolver(), {
    issuer: deps.oidc.config.issuer,
    audience: clientId,
    algorithms: ACCEPTED_ALGORITHMS,
    clockTolerance: CLOCK_SKEW_SECONDS,
    currentDate: deps.clock(),
    requiredClaims: ["exp", "nonce"],
  });
  // Security: the nonce ties this ID token to the login this browser started (no replay).
  if (payload.nonce !== login.nonce) throw new AppError("unauthenticated", "nonce mismatch");
  return userName(payload, deps.oidc.config.userClaim);
}

function page(status: number, title: string, message: string): Response {
  const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
  return new Response(
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${
      esc(title)
    } · sosvault</title></head>` +
      `<body><main><p>sosvault</p><h1>${esc(title)}</h1><p role="alert">${
        esc(message)
      }</p></main></body></html>\n`,
    {
      status,
      headers: {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
      },
    },
  );
}
