/**
 * The one log pipeline (DESIGN.md 7.5, issue 15). Every log line, every `console.*` call and
 * every uncaught error of the process passes through it, and is masked before a byte leaves:
 *
 * 1. fields named like secrets (`password`, `token`, `authorization`, `cookie`, `pat`,
 *    `api_key`, `secret_id`, …; any case, at any depth) are replaced whatever their value;
 * 2. every value the process currently holds as a secret — the master key, the Vault token
 *    and secret ID, the bearer token of a request in flight, a PAT being used — is replaced
 *    wherever it appears (the `SecretRegistry`: services register a secret while they hold
 *    it and unregister it after);
 * 3. secret-shaped text is replaced: bearer/basic headers, `password=…` assignments,
 *    prefixed tokens, key blocks, and any token the secret detectors of
 *    security/secret_scan.ts recognise.
 */
import { candidateTokens, detectSecretPattern } from "./security/secret_scan.ts";

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
/** Words that make a field name secret, matched on the name's parts (snake, kebab, camel). */
const SECRET_WORDS = new Set([
  "pat",
  "pats",
  "token",
  "tokens",
  "secret",
  "secrets",
  "password",
  "passwd",
  "passphrase",
  "authorization",
  "cookie",
  "cookies",
  "credential",
  "credentials",
  "apikey",
  "bearer",
  // A Cloud account e-mail is personal data, masked like a credential.
  "email",
  "emails",
]);
/** Two-part names that are secrets together (each part alone is not). */
const SECRET_PAIRS = new Set(["api key", "private key", "master key", "access key", "secret id"]);

/** Security: any field whose name suggests a credential is masked whatever its value. */
export function isSecretFieldName(name: string): boolean {
  const parts = name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase().split(/[^a-z0-9]+/)
    .filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    if (SECRET_WORDS.has(parts[i])) return true;
    if (i + 1 < parts.length && SECRET_PAIRS.has(`${parts[i]} ${parts[i + 1]}`)) return true;
  }
  return false;
}

// Security: secret-shaped text inside any string (bearer headers, assignments, Data Center
// PATs, prefixed tokens, key blocks). Cheap regexes first; then the scanner's detectors.
const SECRET_TEXT: [RegExp, string][] = [
  [/\b(Bearer|Basic)\s+[A-Za-z0-9+/=._~-]{8,}/gi, REDACTED],
  [
    /\b(password|passwd|secret|secret_id|token|api_key|apikey|pat)(["']?\s*[:=]\s*["']?)(?!\[redacted\])[^\s"',;&}]{4,}/gi,
    `$1$2${REDACTED}`,
  ],
  [/(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}[A-Za-z0-9+/=](?![A-Za-z0-9+/=])/g, REDACTED],
  [
    /\b(ATATT3|ATCTT3|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|glpat-|xox[abposr]-|svt_|hvs\.|hvb\.)[A-Za-z0-9_=-]{8,}/g,
    REDACTED,
  ],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, REDACTED],
];

export function redactText(text: string, secrets?: SecretRegistry): string {
  let out = secrets ? secrets.mask(text) : text;
  for (const [re, by] of SECRET_TEXT) out = out.replace(re, by);
  for (const token of candidateTokens(out)) {
    if (token.includes(REDACTED)) continue;
    if (detectSecretPattern(token) !== null) out = out.replaceAll(token, REDACTED);
  }
  return out;
}

/**
 * The secrets this process holds right now. A service registers a value while it holds it
 * (the returned function unregisters it); the log pipeline masks every registered value, in
 * its plain, URL-encoded, JSON-escaped and base64 forms. Registrations are counted, so two
 * requests with one bearer token each unregister only their own. A released value stays
 * masked among the last RECENT released ones: the error of a failed request is logged after
 * the service that held the secret has let go of it.
 */
export class SecretRegistry {
  static readonly RECENT = 256;
  #live = new Map<string, { count: number; forms: string[] }>();
  /** Released values, oldest first (a Map keeps insertion order), with their forms. */
  #recent = new Map<string, string[]>();
  #forms: string[] = [];
  /**
   * Whether #forms must be rebuilt. Registering runs on every request and masking only when a
   * line is written, so the list is rebuilt lazily, at the first mask after a change.
   */
  #stale = false;

  register(value: string | null | undefined): () => void {
    // Too short to mask without masking ordinary words; no secret we hold is this short.
    if (!value || value.length < 8) return () => {};
    const entry = this.#live.get(value);
    if (entry) entry.count++;
    else {
      // A value seen lately (a user's token, request after request) keeps its forms.
      const forms = this.#recent.get(value) ?? formsOf(value);
      this.#recent.delete(value);
      this.#live.set(value, { count: 1, forms });
      this.#stale = true;
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const e = this.#live.get(value);
      if (!e) return;
      if (--e.count === 0) {
        this.#live.delete(value);
        this.#recent.set(value, e.forms);
        if (this.#recent.size > SecretRegistry.RECENT) {
          this.#recent.delete(this.#recent.keys().next().value!);
        }
        this.#stale = true;
      }
    };
  }

  get size(): number {
    return this.#live.size;
  }

  mask(text: string): string {
    if (this.#stale) this.#rebuild();
    let out = text;
    for (const form of this.#forms) if (out.includes(form)) out = out.replaceAll(form, REDACTED);
    return out;
  }

  #rebuild() {
    this.#stale = false;
    const all = [...[...this.#live.values()].map((e) => e.forms), ...this.#recent.values()];
    // Longest first, so a secret that contains another is masked whole.
    this.#forms = [...new Set(all.flat())].sort((a, b) => b.length - a.length);
  }
}

/** A secret's plain, URL-encoded, JSON-escaped and base64 forms (at least 8 characters). */
export function formsOf(value: string): string[] {
  const forms = [value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)];
  try {
    const b64 = btoa(value);
    forms.push(b64, b64.replace(/=+$/, ""));
  } catch { /* not Latin-1: no base64 form */ }
  return forms.filter((f) => f.length >= 8);
}

/** Deep copy with secrets masked; errors become {name, message, code} (stacks stay in dev). */
export function redact(value: unknown, depth = 0, secrets?: SecretRegistry): unknown {
  if (depth > 8) return "[too deep]";
  if (typeof value === "string") return redactText(value, secrets);
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Error) {
    const out: Fields = { name: value.name, message: redactText(value.message, secrets) };
    const code = (value as { code?: unknown }).code;
    if (typeof code === "string") out.code = code;
    if (value.cause !== undefined) out.cause = redact(value.cause, depth + 1, secrets);
    return out;
  }
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => redact(v, depth + 1, secrets));
  if (value instanceof Headers) {
    return redact(Object.fromEntries(value.entries()), depth + 1, secrets);
  }
  const out: Fields = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretFieldName(k) ? REDACTED : redact(v, depth + 1, secrets);
  }
  return out;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(
  sink: LogSink,
  options: { level?: LogLevel; base?: Fields; now?: () => Date; secrets?: SecretRegistry } = {},
): Logger {
  const min = LEVELS[options.level ?? "info"];
  const now = options.now ?? (() => new Date());
  const base = options.base ?? {};
  const secrets = options.secrets;
  const write = (level: LogLevel, msg: string, fields?: Fields) => {
    if (LEVELS[level] < min) return;
    const record = redact({ ...base, ...fields }, 0, secrets) as Fields;
    const line = JSON.stringify({
      ts: now().toISOString(),
      level,
      msg: redactText(msg, secrets),
      ...record,
    });
    // Security: the whole line once more, for a secret split across fields or escaped by JSON.
    sink(secrets ? secrets.mask(line) : line);
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

/** Text of `console.*` arguments: strings as they are, anything else as redacted JSON. */
function consoleText(args: unknown[], secrets: SecretRegistry): string {
  return args.map((a) => {
    if (typeof a === "string") return a;
    try {
      return JSON.stringify(redact(a, 0, secrets)) ?? String(a);
    } catch {
      return "[unprintable]";
    }
  }).join(" ");
}

type ConsoleMethod = "log" | "info" | "debug" | "warn" | "error" | "trace";

/**
 * Routes `console.*` and uncaught errors into the logger, so a future `console.log(headers)`
 * or an exception carrying a token is masked like any log line. An uncaught exception is
 * logged and ends the process (exit 70, as before but masked); an unhandled rejection is
 * logged and the process keeps serving. Returns a function that undoes it (tests).
 */
export function captureProcessOutput(
  log: Logger,
  secrets: SecretRegistry,
  exit: (code: number) => void = (code) => Deno.exit(code),
): () => void {
  const levels: Record<ConsoleMethod, LogLevel> = {
    log: "info",
    info: "info",
    debug: "debug",
    warn: "warn",
    error: "error",
    trace: "debug",
  };
  const saved = new Map<ConsoleMethod, (...args: unknown[]) => void>();
  for (const [method, level] of Object.entries(levels) as [ConsoleMethod, LogLevel][]) {
    saved.set(method, console[method]);
    console[method] = (...args: unknown[]) => log[level](consoleText(args, secrets));
  }
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    log.error("uncaught_error", { error: e.error ?? e.message });
    exit(70);
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    log.error("unhandled_rejection", { error: e.reason });
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => {
    for (const [method, fn] of saved) console[method] = fn;
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  };
}
