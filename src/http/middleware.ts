/** Request-scoped middleware: request ids with response hardening, and bearer authentication. */
import type { MiddlewareHandler } from "hono";
import { AppError } from "../errors.ts";
import { newRequestId } from "../ids.ts";
import { DEV_USER, type User, type UserStore } from "../users/users.ts";
import type { SecretRegistry } from "../log.ts";

export type AppVariables = {
  requestId: string;
  user: Pick<User, "name" | "admin">;
};
export type AppEnv = { Variables: AppVariables };

/**
 * Every request gets its id (X-Request-Id, and the request_id of any error or log line it
 * causes) and every response the hardening headers. One middleware for both: it wraps every
 * request, MCP calls included, so each layer here is paid on every call.
 */
export function requestScope(): MiddlewareHandler<AppEnv> {
  return async function requestScopeMiddleware(c, next) {
    const id = newRequestId();
    c.set("requestId", id);
    await next();
    const h = c.res.headers;
    h.set("X-Request-Id", id);
    h.set("X-Content-Type-Options", "nosniff");
    h.set("Referrer-Policy", "no-referrer");
    if (!h.has("Cache-Control")) h.set("Cache-Control", "no-store");
  };
}

/**
 * Bearer authentication for /api and /mcp. In `dev` mode (loopback only, refused in
 * production by the config) every request is the single user `dev`.
 */
export function bearerAuth(
  options: { mode: "tokens" | "dev"; users: UserStore; secrets?: SecretRegistry },
): MiddlewareHandler<AppEnv> {
  const { mode, users, secrets } = options;
  return async function bearerAuthMiddleware(c, next) {
    if (mode === "dev") {
      c.set("user", { name: DEV_USER.name, admin: DEV_USER.admin });
      return await next();
    }
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer +([^\s]+)\s*$/i.exec(header);
    const user = m ? await users.authenticate(m[1]) : null;
    if (!user) {
      throw new AppError(
        "unauthenticated",
        header
          ? "this sosvault token is not valid: ask the operator for a token (sosvault users add)"
          : "send your sosvault token as 'Authorization: Bearer <token>'",
      );
    }
    c.set("user", { name: user.name, admin: user.admin });
    // Security: while this request runs, its bearer token is masked in every log line.
    const release = secrets?.register(m![1]);
    try {
      await next();
    } finally {
      release?.();
    }
  };
}
