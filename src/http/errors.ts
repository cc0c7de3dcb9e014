/** The one mapping from the error family to HTTP responses. */
import type { Context } from "hono";
import { AppError, errorBody, toAppError } from "../errors.ts";
import type { Logger } from "../log.ts";

export function errorResponse(c: Context, err: unknown, log: Logger): Response {
  const appErr = toAppError(err);
  const requestId = (c.get("requestId") as string | undefined) ?? "req_unknown";
  if (appErr.code === "unexpected_error" && !(err instanceof AppError && !err.cause)) {
    // Only the log sees the original error; the response carries the request id to find it.
    log.error("unexpected_error", { request_id: requestId, error: err, path: c.req.path });
  } else if (appErr.detail) {
    log.warn("request_failed", { request_id: requestId, code: appErr.code, detail: appErr.detail });
  }
  const headers: Record<string, string> = { "Cache-Control": "no-store" };
  if (appErr.retryAfter !== undefined) headers["Retry-After"] = String(appErr.retryAfter);
  if (appErr.code === "unauthenticated") headers["WWW-Authenticate"] = 'Bearer realm="sosvault"';
  return c.json(errorBody(appErr, requestId), appErr.status as 400, headers);
}
