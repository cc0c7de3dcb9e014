/**
 * Bearer authentication for /api and /mcp in SOSVAULT_AUTH=oidc (the `tokens`/`dev` path stays
 * in http/middleware.ts). Every refusal has the contract's error body, a WWW-Authenticate header
 * that lets an MCP client discover where to sign in (RFC 9728 section 5.1, RFC 6750 section 3),
 * and, for a token that was sent, a `denied` security event that never holds the token.
 */
import type { Context, MiddlewareHandler } from "hono";
import { AppError } from "../errors.ts";
import { errorResponse } from "../http/errors.ts";
import type { AppEnv } from "../http/middleware.ts";
import type { EventLog } from "../security/events.ts";
import type { Logger } from "../log.ts";
import type { OidcAuth } from "./oidc.ts";
import { IdpUnavailable } from "./oidc_keys.ts";
import { TokenRefused } from "./oidc_verify.ts";

export function oidcBearerAuth(
  oidc: OidcAuth,
  deps: { events: EventLog; log: Logger },
): MiddlewareHandler<AppEnv> {
  return async function oidcBearerAuthMiddleware(c, next) {
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer +([^\s]+)\s*$/i.exec(header);
    if (!m) {
      return refuse(
        c,
        oidc,
        deps,
        null,
        new AppError(
          "unauthenticated",
          "sign in with your identity provider and send the access token as 'Authorization: Bearer <token>'",
        ),
      );
    }
    let principal;
    try {
      principal = await oidc.verifier.verify(m[1]);
    } catch (err) {
      if (err instanceof IdpUnavailable) {
        const res = errorResponse(c, err, deps.log);
        // Security: not 502 — nothing upstream answered badly for this request; sosvault itself
        // cannot judge tokens until the issuer's keys are fetched, so it is unavailable.
        return new Response(res.body, { status: 503, headers: res.headers });
      }
      if (!(err instanceof TokenRefused)) throw err;
      const code = err.kind === "insufficient_scope" ? "forbidden" : "unauthenticated";
      return refuse(c, oidc, deps, err, new AppError(code, err.message), err.user);
    }
    // Security: a user the operator removed stays out even with a still-valid token.
    if (!await oidc.users.admit(principal.name, principal.admin)) {
      const why = new TokenRefused(
        "invalid_token",
        "this user was removed from sosvault by the operator",
      );
      return refuse(
        c,
        oidc,
        deps,
        why,
        new AppError("unauthenticated", why.message),
        principal.name,
      );
    }
    c.set("user", principal);
    await next();
  };
}

async function refuse(
  c: Context<AppEnv>,
  oidc: OidcAuth,
  deps: { events: EventLog; log: Logger },
  why: TokenRefused | null,
  err: AppError,
  user: string | null = null,
): Promise<Response> {
  if (why) {
    await deps.events.denied(
      {
        user: user ?? "anonymous",
        requestId: c.get("requestId"),
        source: c.req.path.startsWith("/mcp") ? "mcp" : "http",
      },
      { error_code: err.code },
    );
  }
  const res = errorResponse(c, err, deps.log);
  res.headers.set("WWW-Authenticate", challenge(oidc, why?.kind));
  return res;
}

/** `Bearer resource_metadata="…", scope="…"` plus the RFC 6750 error when a token was refused. */
export function challenge(oidc: OidcAuth, error?: "invalid_token" | "insufficient_scope"): string {
  const parts = [
    ...(error ? [`error="${error}"`] : []),
    `resource_metadata="${oidc.resourceMetadataUrl()}"`,
    `scope="${oidc.config.scope}"`,
  ];
  return `Bearer ${parts.join(", ")}`;
}
