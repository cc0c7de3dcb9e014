/**
 * Jira data that quotes the caller's own token (an attachment named after the PAT, a display
 * name holding the API token) is used with the token replaced by `[redacted]`, rather than
 * refused: a refusal would lock the issue for good, since the name stays in Jira (issue 14).
 * The caller is told through {@linkcode Redactions} and warns the user to rotate the token.
 */
import { AppError } from "../errors.ts";
import { KnownSecrets } from "../security/known_secrets.ts";

export const REDACTED = "[redacted]";

/** Counts what was replaced in the answers of one operation; passed by callers that warn. */
export interface Redactions {
  spans: number;
}

/** Nesting deeper than Jira's beans is not data we use; it is refused rather than walked. */
const MAX_DEPTH = 64;

/**
 * Security: `value` (parsed JSON, or data built from it) with every string, keys included,
 * cleared of the caller's `secrets` in any form KnownSecrets finds; the count goes to
 * `redactions`. Fails closed: a string too long or too costly to search, or a secret still
 * present afterwards (one too short to fingerprint), refuses the whole answer.
 */
export function redactSecrets<T>(
  value: T,
  secrets: readonly string[],
  redactions: Redactions,
): T {
  const live = secrets.filter((s) => s);
  if (live.length === 0) return value;
  const known = KnownSecrets.forSecrets(live);
  const one = (text: string): string => {
    const r = known.redact(text, REDACTED);
    if (r.exhausted) throw refused();
    redactions.spans += r.redacted;
    return r.text;
  };
  const walk = (v: unknown, depth: number): unknown => {
    if (depth > MAX_DEPTH) throw refused();
    if (typeof v === "string") return one(v);
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    if (v !== null && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[one(k)] = walk(x, depth + 1);
      return out;
    }
    return v;
  };
  const clean = walk(value, 0) as T;
  const text = JSON.stringify(clean) ?? "";
  if (live.some((s) => text.includes(s))) throw refused();
  return clean;
}

function refused(): AppError {
  return new AppError(
    "upstream_unavailable",
    "Jira's answer contained the personal access token itself in a form sosvault could not remove, so sosvault did not use it: revoke the token in Jira, and tell the Jira administrator",
  );
}
