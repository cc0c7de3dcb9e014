/** Request-scoped middleware: request ids, response hardening, and bearer authentication. */
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

export function requestId(): MiddlewareHandler<AppEnv> {
  return async function requestIdMiddleware(c, next) {
    const id = newRequestId();
    c.set("requestId", id);
    await next();
    c.res.headers.set("X-Request-Id", id);
  };
}

export function hardenResponses(): MiddlewareHandler<AppEnv> {
  return async function hardenResponsesMiddleware(c, next) {
    await next();
    c.res.headers.set("X-Content-Type-Options", "nosniff");
    c.res.headers.set("Referrer-Policy", "no-referrer");
    if (!c.res.headers.has("Cache-Control")) c.res.headers.set("Cache-Control", "no-store");
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
