/**
 * The one error family of sosvault. Every failure a user can act on is an `AppError` with a
 * contract code (DESIGN.md section 4); anything else becomes `unexpected_error` at the edge.
 * Messages are public: they must never contain a secret, a path we were not given, or an
 * upstream body.
 */

export const ERROR_STATUS = {
  invalid_input: 400,
  unauthenticated: 401,
  invalid_credentials: 422,
  forbidden: 403,
  not_found: 404,
  connection_expired: 409,
  connection_revoked: 409,
  artifact_invalid: 422,
  payload_too_large: 413,
  secret_rejected: 400,
  consent_required: 403,
  approval_required: 403,
  sos_unavailable: 503,
  sudo_not_configured: 503,
  conflict: 409,
  rate_limited: 429,
  upstream_unavailable: 502,
  unexpected_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface AppErrorOptions {
  /** Seconds a client should wait, sent as `Retry-After` with `rate_limited`. */
  retryAfter?: number;
  /** Internal detail for the server log only; never shown to a client. */
  detail?: Record<string, unknown>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly retryAfter?: number;
  readonly detail?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.retryAfter = options.retryAfter;
    this.detail = options.detail;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; request_id: string };
}

const UNEXPECTED_MESSAGE =
  "Something went wrong inside sosvault. The details are in the server log under this request id.";

/** Turns anything thrown into the public error; unknown errors never leak their text. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  return new AppError("unexpected_error", UNEXPECTED_MESSAGE, { cause: err });
}

export function errorBody(err: AppError, requestId: string): ErrorBody {
  return { error: { code: err.code, message: err.message, request_id: requestId } };
}

/** The contract code of anything thrown (unknown errors are `unexpected_error`). */
export function errorCodeOf(err: unknown): ErrorCode {
  return err instanceof AppError ? err.code : "unexpected_error";
}
