/**
 * JSON-line logger. Everything written passes the redaction layer first (DESIGN.md 7.5):
 * fields named like secrets are masked, and secret-shaped strings anywhere are masked, so a
 * careless `log.info("x", {headers})` still cannot leak a PAT or a bearer token.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogSink = (line: string) => void;
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const REDACTED = "[redacted]";
// Security: any field whose name suggests a credential (or a Cloud account e-mail, personal
// data) is masked whatever its value.
const SECRET_FIELD =
  /^(pat|token|access_token|api_token|api_key|apikey|secret|password|passwd|authorization|cookie|set-cookie|master_key|private_key|credential|credentials|email)$/i;
// Security: secret-shaped text inside any string (bearer headers, Data Center PATs, prefixed
// tokens, key blocks). Cheap regexes; the tool-argument detector is the precise one.
const SECRET_TEXT: RegExp[] = [
  /\b(Bearer|Basic)\s+[A-Za-z0-9+/=._~-]{8,}/gi,
  /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}[A-Za-z0-9+/=](?![A-Za-z0-9+/=])/g,
  /\b(ATATT3|ATCTT3|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|glpat-|xox[abposr]-|svt_)[A-Za-z0-9_=-]{8,}/g,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g,
];

export function redactText(text: string): string {
  let out = text;
  for (const re of SECRET_TEXT) out = out.replace(re, REDACTED);
  return out;
}

/** Deep copy with secrets masked; errors become {name, message, code} (stacks stay in dev). */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return "[too deep]";
  if (typeof value === "string") return redactText(value);
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Error) {
    const out: Fields = { name: value.name, message: redactText(value.message) };
    const code = (value as { code?: unknown }).code;
    if (typeof code === "string") out.code = code;
    if (value.cause !== undefined) out.cause = redact(value.cause, depth + 1);
    return out;
  }
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => redact(v, depth + 1));
  if (value instanceof Headers) return redact(Object.fromEntries(value.entries()), depth + 1);
  const out: Fields = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_FIELD.test(k) ? REDACTED : redact(v, depth + 1);
  }
  return out;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(
  sink: LogSink,
  options: { level?: LogLevel; base?: Fields; now?: () => Date } = {},
): Logger {
  const min = LEVELS[options.level ?? "info"];
  const now = options.now ?? (() => new Date());
  const base = options.base ?? {};
  const write = (level: LogLevel, msg: string, fields?: Fields) => {
    if (LEVELS[level] < min) return;
    const record = redact({ ...base, ...fields }) as Fields;
    sink(JSON.stringify({ ts: now().toISOString(), level, msg: redactText(msg), ...record }));
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger(sink, { ...options, base: { ...base, ...fields } }),
  };
}

const encoder = new TextEncoder();
/** Writes to stderr synchronously so lines are never interleaved or lost on exit. */
export const stderrSink: LogSink = (line) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};
