/**
 * Secret detection for model-visible text: MCP tool arguments before any handler runs, and
 * egress text (tool results, error texts, log lines) before it leaves the process.
 *
 * Contract: DESIGN.md section 7 item 4; shapes and layers: SECURITY_TESTS.md 3.2 and 3.3.
 *
 * - Layer 1: high-precision prefixes and header shapes (Atlassian, GitHub, GitLab, Slack, AWS,
 *   OpenAI/Anthropic, Stripe, Google, npm, JWT, private keys, Authorization/Bearer/Basic).
 * - Layer 2: structural validators (Jira Data Center PAT decode rule, base64 of
 *   `someone@host:token`).
 * - Layer 3: an injected known-secret check run on every candidate token, so the caller can
 *   compare keyed fingerprints of the user's own PATs.
 *
 * There is deliberately no entropy heuristic: hashes, UUIDs and our own random ids are
 * ordinary values and must never be rejected.
 *
 * Nothing here ever returns, logs or throws the matched value: a hit carries only the
 * detector id, a JSON path and a length.
 *
 * @module
 */

/** Where secret-looking material was found; never the material itself. */
export interface SecretHit {
  /** Stable detector id, e.g. `"jira_dc_pat"`, `"known_secret"`, `"too_complex"`. */
  detector: string;
  /**
   * Location of the string that held the secret: `"$"` for the root or for
   * {@linkcode findSecretInText}, `"$.issue_key"`, `"$.labels[2]"`. A hit on an object key
   * is reported as `"<parent><key N>"` (the N-th key of that object, in `Object.keys`
   * order), and a value under a key that is not a short plain identifier as
   * `"<parent><value N>"`, so that a key name which might itself be a secret never appears
   * in a path.
   */
  path: string;
  /** Length in UTF-16 code units of the whole string (key or value) that held the hit. */
  length: number;
}

/**
 * Decides whether `candidate` is exactly one of the secrets the caller holds (typically by
 * comparing keyed HMAC fingerprints). Errors it throws propagate to the caller of
 * {@linkcode findSecret}, so a failing check fails closed.
 */
export type KnownSecretCheck = (candidate: string) => boolean | Promise<boolean>;

/**
 * Decides whether `text` (one string of the value, raw or normalised) contains one of the
 * caller's secrets anywhere inside it; `"exhausted"` when its bounded work ran out (the scan
 * then fails closed as `too_complex`). See src/security/known_secrets.ts.
 */
export type KnownSecretSearch = (
  text: string,
) => "found" | "exhausted" | null | Promise<"found" | "exhausted" | null>;

/** Bounds that keep one scan cheap whatever the input; exported for tests and callers. */
export const SCAN_LIMITS: Readonly<{
  maxDepth: number;
  maxNodes: number;
  maxTotalChars: number;
  maxScannedChars: number;
  maxKnownSecretChecks: number;
}> = Object.freeze({
  /** Nested arrays/objects allowed; one more is `too_complex`. */
  maxDepth: 32,
  /** Values, keys and containers visited by {@linkcode findSecret}. */
  maxNodes: 50_000,
  /** Sum of the lengths of every string and key in one {@linkcode findSecret} value. */
  maxTotalChars: 2 * 1024 * 1024,
  /** Characters of one string that are scanned; the rest is ignored. */
  maxScannedChars: 64 * 1024,
  /** Calls of the known-secret check in one scan. */
  maxKnownSecretChecks: 20_000,
});

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Walks every string leaf and every object key of `value` and returns the first hit, or null.
 *
 * A known-secret hit anywhere wins over a pattern hit, because it means the caller's real
 * secret reached the model and needs incident handling, not just a rejection. Values deeper
 * than {@linkcode SCAN_LIMITS}.maxDepth, larger than its node or character budget, cyclic, or
 * not JSON-shaped (class instances, typed arrays, maps) give `too_complex` instead of a scan.
 */
export async function findSecret(
  value: unknown,
  isKnownSecret?: KnownSecretCheck,
  searchKnown?: KnownSecretSearch,
): Promise<SecretHit | null> {
  const walk = new TreeWalk(isKnownSecret !== undefined || searchKnown !== undefined);
  try {
    walk.visit(value, "$", 0);
  } catch {
    // Security: getters or proxies that throw must not turn the scan into a pass.
    walk.stopTooComplex("$");
  }
  if (isKnownSecret === undefined && searchKnown === undefined) {
    return walk.patternHit ?? walk.tooComplex;
  }
  const found = searchKnown === undefined
    ? null
    : await firstContainedSecret(walk.leaves, searchKnown);
  if (found?.detector === "known_secret") return found;
  const known = isKnownSecret === undefined
    ? null
    : await firstKnownSecret(walk.leaves, isKnownSecret);
  if (known?.detector === "known_secret") return known;
  return walk.patternHit ?? found ?? known ?? walk.tooComplex;
}

/**
 * Scans one string (for example an outgoing tool result or log line). Only the first
 * {@linkcode SCAN_LIMITS}.maxScannedChars characters are scanned; length alone never makes a
 * hit. The path of a hit is `"$"`.
 */
export async function findSecretInText(
  text: string,
  isKnownSecret?: KnownSecretCheck,
): Promise<SecretHit | null> {
  const whole = String(text);
  const leaf: Leaf = { variants: scanVariants(whole), path: "$", length: whole.length };
  const known = isKnownSecret === undefined ? null : await firstKnownSecret([leaf], isKnownSecret);
  if (known?.detector === "known_secret") return known;
  const detector = detectPattern(leaf.variants);
  if (detector !== null) return { detector, path: leaf.path, length: leaf.length };
  return known;
}

/**
 * Synchronous pattern check of one string (layers 1 and 2 only, no known-secret check): the
 * id of the first detector that matches, or null. The log pipeline masks with it.
 */
export function detectSecretPattern(text: string): string | null {
  return detectPattern(scanVariants(String(text)));
}

/**
 * Candidate tokens the known-secret check is applied to: maximal runs of
 * `[A-Za-z0-9+/=_\-.:~]` delimited by anything else (whitespace, quotes, other punctuation),
 * kept when 20..512 characters long. Runs are also split at `:`, `.`, `~` and at a `=` that
 * is not trailing padding, and cut at `/`, so that `pat=<token>`, `user:<token>`,
 * `<token>.txt` and `/tmp/<token>` still yield the bare token. Duplicates are dropped; the
 * order is the order of first appearance.
 */
export function candidateTokens(text: string): string[] {
  const out = new Set<string>();
  const add = (token: string) => {
    if (token.length >= MIN_CANDIDATE && token.length <= MAX_CANDIDATE) out.add(token);
  };
  for (const [run] of text.matchAll(CANDIDATE_RUN)) {
    if (run.length < MIN_CANDIDATE) continue;
    add(run);
    for (const [piece] of run.matchAll(CANDIDATE_PIECE)) {
      if (piece.length < MIN_CANDIDATE) continue;
      for (const window of slashWindows(piece, MIN_CANDIDATE, MAX_CANDIDATE)) add(window);
    }
  }
  return [...out];
}

/**
 * True when `token` has the shape of a Jira/Confluence Data Center personal access token:
 * 40..48 characters of standard base64 (the observed tokens are 44, unpadded) that decode to
 * ASCII digits (at least one), `:`, then at least 16 more bytes.
 */
export function isDataCenterPatShape(token: string): boolean {
  if (token.length < DC_PAT_MIN || token.length > DC_PAT_MAX) return false;
  if (!STANDARD_BASE64.test(token)) return false;
  return decodesToIdColonSecret(token);
}

// ---------------------------------------------------------------------------------------------
// Tree walk (synchronous: layers 1 and 2, bounds)

interface Leaf {
  variants: readonly string[];
  path: string;
  length: number;
}

/** Identifier-like key names short enough to be shown in a path. */
const SAFE_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Field names (`connection_id`) and sosvault's own ids (`jc_…`, `job_…`) are in nearly every
 * call, and the detectors are a pure function of the text, so those that matched none are
 * remembered. Only these two shapes are kept: plain ASCII identifiers, which normalise to
 * themselves, and nothing of a user's free text.
 */
const FIELD_NAME = /^[a-z][a-z0-9_]{0,40}$/;
const CLEAN_REPEATS_MAX = 4096;
const CLEAN_REPEATS = new Set<string>();

/** sosvault's own ids (connection, job, request): never a Jira token, whatever the caller. */
export const OWN_ID = /^(jc|job|req)_[A-Za-z0-9_-]{16,64}$/;

function rememberClean(text: string) {
  if (CLEAN_REPEATS.has(text) || !(FIELD_NAME.test(text) || OWN_ID.test(text))) return;
  if (CLEAN_REPEATS.size >= CLEAN_REPEATS_MAX) CLEAN_REPEATS.clear();
  CLEAN_REPEATS.add(text);
}

/**
 * The keys and string values of a flat, plain object when the detectors already passed every
 * one of them (they are all remembered clean repeats, see above), or null for anything else:
 * nested values, other shapes, or any string not seen clean before. Lets the common call
 * (`{connection_id: "jc_…"}`) skip the walk; what the known-secret layer still needs to see
 * is the caller's to decide.
 */
export function cleanRepeatsOf(value: unknown): string[] | null {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return null;
  const out: string[] = [];
  try {
    for (const key of Object.keys(value)) {
      if (!CLEAN_REPEATS.has(key)) return null;
      out.push(key);
      const v = (value as Record<string, unknown>)[key];
      if (typeof v === "string") {
        if (!CLEAN_REPEATS.has(v)) return null;
        out.push(v);
      } else if (v !== null && typeof v === "object") return null;
    }
  } catch {
    return null;
  }
  return out;
}

class TreeWalk {
  readonly leaves: Leaf[] = [];
  patternHit: SecretHit | null = null;
  tooComplex: SecretHit | null = null;
  #nodes = 0;
  #chars = 0;
  #stopped = false;
  #lastStringHit = false;
  readonly #keepLeaves: boolean;

  constructor(keepLeaves: boolean) {
    this.#keepLeaves = keepLeaves;
  }

  /** Returns false once the walk must stop. */
  visit(value: unknown, path: string, depth: number): boolean {
    if (this.#stopped) return false;
    if (typeof value === "string") return this.#string(value, path);
    if (!this.#count(path, 0)) return false;
    if (value === null || typeof value !== "object") return true;
    // Security: stops stack exhaustion and cycles (a cycle is infinitely deep).
    if (depth >= SCAN_LIMITS.maxDepth) return this.stopTooComplex(path);
    if (Array.isArray(value)) {
      // Indexes, not iteration, so a sparse array of length 1e9 spends the node budget
      // instead of hanging.
      for (let i = 0; i < value.length; i++) {
        if (!this.visit(value[i], `${path}[${i}]`, depth + 1)) return false;
      }
      return true;
    }
    const proto = Object.getPrototypeOf(value);
    // Security: only JSON-shaped objects are walked; anything else could hide strings we
    // would not see (Map entries, typed array bytes), so it fails closed.
    if (proto !== Object.prototype && proto !== null) return this.stopTooComplex(path);
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      // Security: keys are model-controlled too; a secret used as a key is still a secret.
      if (!this.#string(key, `${path}<key ${i}>`)) return false;
      // Security: a key that looks like a secret, or is not a short identifier, is never
      // copied into the paths of the values below it.
      const segment = !this.#lastStringHit && SAFE_KEY.test(key) ? `.${key}` : `<value ${i}>`;
      if (!this.visit(record[key], path + segment, depth + 1)) return false;
    }
    return true;
  }

  stopTooComplex(path: string): false {
    this.#stopped = true;
    this.tooComplex ??= { detector: "too_complex", path, length: 0 };
    return false;
  }

  #count(path: string, chars: number): boolean {
    this.#nodes += 1;
    this.#chars += chars;
    // Security: stops width, size and shared-reference (DAG) bombs from making the scan
    // unbounded.
    if (this.#nodes > SCAN_LIMITS.maxNodes || this.#chars > SCAN_LIMITS.maxTotalChars) {
      return this.stopTooComplex(path);
    }
    return true;
  }

  #string(text: string, path: string): boolean {
    if (!this.#count(path, text.length)) return false;
    const variants = scanVariants(text);
    const detector = CLEAN_REPEATS.has(text) ? null : detectPattern(variants);
    if (detector === null) rememberClean(text);
    this.#lastStringHit = detector !== null;
    if (detector !== null && this.patternHit === null) {
      this.patternHit = { detector, path, length: text.length };
      if (!this.#keepLeaves) {
        this.#stopped = true;
        return false;
      }
    }
    if (this.#keepLeaves) this.leaves.push({ variants, path, length: text.length });
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// Layer 3: known secrets

async function firstKnownSecret(
  leaves: readonly Leaf[],
  isKnownSecret: KnownSecretCheck,
): Promise<SecretHit | null> {
  let budget = SCAN_LIMITS.maxKnownSecretChecks;
  for (const leaf of leaves) {
    const seen = new Set<string>();
    for (const variant of leaf.variants) {
      for (const candidate of candidateTokens(variant)) {
        if (seen.has(candidate)) continue;
        seen.add(candidate);
        // Security: bounds the fingerprinting work an adversarial input can demand; running
        // out fails closed rather than skipping the rest.
        if (--budget < 0) return { detector: "too_complex", path: leaf.path, length: 0 };
        // Security: the user's own PAT in model context, whatever its shape.
        if ((await isKnownSecret(candidate)) === true) {
          return { detector: "known_secret", path: leaf.path, length: leaf.length };
        }
      }
    }
  }
  return null;
}

/** The first leaf that contains a known secret anywhere (the substring search). */
async function firstContainedSecret(
  leaves: readonly Leaf[],
  searchKnown: KnownSecretSearch,
): Promise<SecretHit | null> {
  let exhausted: SecretHit | null = null;
  for (const leaf of leaves) {
    for (const variant of leaf.variants) {
      const answer = await searchKnown(variant);
      // Security: the user's own secret inside a longer string (`notes-<PAT>.txt`).
      if (answer === "found") {
        return { detector: "known_secret", path: leaf.path, length: leaf.length };
      }
      // Security: running out of search budget fails closed rather than passing.
      if (answer === "exhausted") {
        exhausted ??= { detector: "too_complex", path: leaf.path, length: 0 };
      }
    }
  }
  return exhausted;
}

/** Strings shorter than this yield no candidate for the known-secret check. */
export const MIN_CANDIDATE = 20;
const MAX_CANDIDATE = 512;
const CANDIDATE_RUN = /[A-Za-z0-9+/=_\-.:~]+/g;
/** Splits at `:`, `.`, `~` and at `=` followed by more text (keeps trailing padding). */
const CANDIDATE_PIECE = /[A-Za-z0-9+/_\-]+=*/g;

// ---------------------------------------------------------------------------------------------
// Normalisation

/**
 * Zero-width, bidi-control and other invisible characters that can be slipped inside a token
 * to break pattern matching while it still reads (and often pastes) as the token.
 */
const INVISIBLE =
  /[\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF9-\uFFFB]|\uDB40[\uDC00-\uDC7F\uDD00-\uDDEF]/g;
const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
const JSON_ESCAPE = /\\(?:u([0-9A-Fa-f]{4})|(["\\/bfnrt]))/g;
const JSON_SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};
/** NFKC can expand text (up to 18x for some characters); this keeps the normalised copy bounded. */
const MAX_NORMALISED_CHARS = 4 * SCAN_LIMITS.maxScannedChars;
const utf8 = new TextDecoder("utf-8", { fatal: false });

/** The raw text (capped) and, when different, its normalised form: both are scanned. */
function scanVariants(text: string): string[] {
  const raw = text.length > SCAN_LIMITS.maxScannedChars
    ? text.slice(0, SCAN_LIMITS.maxScannedChars)
    : text;
  const normalised = normalise(raw);
  return normalised === raw ? [raw] : [raw, normalised];
}

// Security: fullwidth look-alikes, invisible characters, %-encoding and JSON \u escapes
// would each let a token through a pattern match; each decoding runs once, so the cost
// stays linear.
function normalise(text: string): string {
  let s = stripInvisible(text.normalize("NFKC"));
  s = jsonUnescapeOnce(percentDecodeOnce(s));
  s = stripInvisible(s.normalize("NFKC"));
  return s.length > MAX_NORMALISED_CHARS ? s.slice(0, MAX_NORMALISED_CHARS) : s;
}

function stripInvisible(text: string): string {
  return text.replace(INVISIBLE, "");
}

/** Decodes %XX runs as UTF-8 and leaves malformed `%` sequences alone; `+` stays `+`. */
function percentDecodeOnce(text: string): string {
  if (!text.includes("%")) return text;
  return text.replace(PERCENT_RUN, (run) => {
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = parseInt(run.slice(3 * i + 1, 3 * i + 3), 16);
    }
    return utf8.decode(bytes);
  });
}

function jsonUnescapeOnce(text: string): string {
  if (!text.includes("\\")) return text;
  return text.replace(
    JSON_ESCAPE,
    (_, hex: string | undefined, simple: string | undefined) =>
      hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : JSON_SIMPLE_ESCAPES[simple!],
  );
}

// ---------------------------------------------------------------------------------------------
// Layers 1 and 2: detectors

interface Detector {
  readonly id: string;
  readonly test: (text: string) => boolean;
}

/** First detector (in table order) that fires on any variant, or null. */
function detectPattern(variants: readonly string[]): string | null {
  for (const detector of DETECTORS) {
    for (const variant of variants) {
      if (detector.test(variant)) return detector.id;
    }
  }
  return null;
}

/**
 * A regular-expression detector. Every pattern starts with a literal and either has no
 * constraint after its unbounded run or a lookbehind that allows one start per run, so a scan
 * stays linear in the text length. `accept` vetoes individual matches (the pattern must then
 * be global).
 */
function regexDetector(
  id: string,
  pattern: RegExp,
  accept?: (match: RegExpExecArray) => boolean,
): Detector {
  if (accept === undefined) return { id, test: (text) => pattern.test(text) };
  return {
    id,
    test: (text) => {
      for (const match of text.matchAll(pattern)) {
        if (accept(match)) return true;
      }
      return false;
    },
  };
}

/** Not preceded by a letter or digit: the prefix starts a token. */
const WORD_START = "(?<![A-Za-z0-9])";
/**
 * Not preceded by a letter, digit, `_` or `-`: for short prefixes that would otherwise match
 * inside kebab-case names or inside our own base64url ids.
 */
const TOKEN_START = "(?<![A-Za-z0-9_\\-])";

const DETECTORS: readonly Detector[] = [
  // Security: PEM private key blocks (RSA, EC, OpenSSH, PKCS#8, encrypted, PGP). First: the
  // armour is unambiguous, while a key's random body can hold any other token's prefix.
  regexDetector("private_key", /-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY/i),
  // Security: Atlassian Cloud API tokens (the cloud counterpart of the PAT).
  regexDetector("atlassian_api_token", new RegExp(`${WORD_START}ATATT3[A-Za-z0-9_=\\-]{20,}`)),
  // Security: Atlassian access tokens.
  regexDetector(
    "atlassian_access_token",
    new RegExp(`${WORD_START}ATCTT3[A-Za-z0-9_=\\-]{20,}`),
  ),
  // Security: Bitbucket Cloud app passwords; mixed character classes keep issue keys like
  // ATBB-123 out.
  regexDetector(
    "bitbucket_app_password",
    new RegExp(`${TOKEN_START}ATBB([A-Za-z0-9_=\\-]{20,})`, "g"),
    (m) => charClassCount(m[1]) >= 2,
  ),
  // Security: Bitbucket Data Center HTTP access tokens.
  regexDetector(
    "bitbucket_dc_token",
    new RegExp(`${TOKEN_START}BBDC-([A-Za-z0-9+/_=\\-]{20,})`, "g"),
    (m) => charClassCount(m[1]) >= 2,
  ),
  // Security: GitHub classic, OAuth, user-to-server, server-to-server and refresh tokens.
  regexDetector("github_token", new RegExp(`${WORD_START}gh[pousr]_[A-Za-z0-9]{36,}`)),
  // Security: GitHub fine-grained PATs.
  regexDetector(
    "github_fine_grained_token",
    new RegExp(`${TOKEN_START}github_pat_[A-Za-z0-9_]{40,}`),
  ),
  // Security: GitLab personal access tokens.
  regexDetector("gitlab_token", new RegExp(`${TOKEN_START}glpat-[A-Za-z0-9_\\-]{20,}`)),
  // Security: Slack bot/user/app tokens; real ones always carry numeric ids.
  regexDetector(
    "slack_token",
    new RegExp(`${TOKEN_START}xox[abposr]-([A-Za-z0-9\\-]{10,})`, "g"),
    (m) => /[0-9]/.test(m[1]),
  ),
  // Security: AWS access key ids (long-term and temporary).
  regexDetector(
    "aws_access_key",
    new RegExp(`${TOKEN_START}(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])`),
  ),
  // Security: Anthropic API keys (before the generic sk- rule so the id is precise).
  regexDetector("anthropic_api_key", new RegExp(`${TOKEN_START}sk-ant-[A-Za-z0-9_\\-]{20,}`)),
  // Security: OpenAI-style sk- and sk-proj- keys; mixed classes keep kebab-case words out.
  regexDetector(
    "openai_api_key",
    new RegExp(`${TOKEN_START}sk-(?:proj-)?([A-Za-z0-9_\\-]{20,})`, "g"),
    (m) => charClassCount(m[1]) >= 2,
  ),
  // Security: Stripe secret and restricted keys.
  regexDetector(
    "stripe_api_key",
    new RegExp(`${TOKEN_START}(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}`),
  ),
  // Security: Google API keys.
  regexDetector("google_api_key", new RegExp(`${TOKEN_START}AIza[A-Za-z0-9_\\-]{35}`)),
  // Security: npm access tokens.
  regexDetector("npm_token", new RegExp(`${TOKEN_START}npm_[A-Za-z0-9]{36}`)),
  // Security: JWTs (OAuth access tokens, session tokens); the lookbehind keeps the scan linear.
  regexDetector(
    "jwt",
    /(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{1,8192}\.eyJ[A-Za-z0-9_\-]{1,65536}\./,
  ),
  // Security: a private key pasted without its PEM armour: the fixed DER prefixes of PKCS#8
  // (RSA, EC, Ed25519/X25519/Ed448), PKCS#1 RSA and SEC1 EC keys in base64.
  regexDetector(
    "private_key",
    /MII[A-Za-z0-9+/]{2}[AQgw]IBA(?:AKC|DANBgkqhkiG9w0BAQEFAASC)|MI[GH][A-Za-z0-9+/]AgEAMB[AM]GByqGSM49AgE|M[CE][A-Za-z0-9+/]CAQAwBQYDK2V[uvwx]|MHcCAQEEI|MIGkAgEBBDA/,
  ),
  // Security: the Jira Data Center PAT itself (SECURITY_TESTS.md 3.3 layer 2).
  { id: "jira_dc_pat", test: containsDataCenterPat },
  // Security: base64 of `someone@host:token`, i.e. credentials packed for Basic auth.
  { id: "email_token_base64", test: containsEmailTokenBase64 },
  // Security: a bearer credential of any kind; plain words after "bearer" are prose.
  regexDetector(
    "bearer_header",
    /(?<![A-Za-z0-9])bearer(?:\s+|\s*[:=]\s*)([A-Za-z0-9\-._~+/]{16,}=*)/gi,
    (m) => !isPlainWords(m[1]),
  ),
  // Security: HTTP Basic credentials.
  regexDetector(
    "basic_auth_header",
    /(?<![A-Za-z0-9])basic\s+([A-Za-z0-9+/_\-]{8,}={0,2})/gi,
    (m) => decodesToBasicCredentials(m[1]),
  ),
  // Security: any other Authorization header value (token, Digest, Negotiate, API keys).
  regexDetector(
    "authorization_header",
    /(?<![A-Za-z0-9])(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token|digest|negotiate|ntlm|apikey|sso-key)\s+)?([A-Za-z0-9+/=_\-.:~]{8,})/gi,
    (m) => !isPlainWords(m[1]),
  ),
];

/** Every detector id a {@linkcode SecretHit} can carry, in the order they are tried. */
export const SECRET_DETECTORS: readonly string[] = Object.freeze([
  "known_secret",
  ...new Set(DETECTORS.map((detector) => detector.id)),
  "too_complex",
]);

/** How many of lower-case letters, upper-case letters and digits occur. */
function charClassCount(text: string): number {
  return Number(/[a-z]/.test(text)) + Number(/[A-Z]/.test(text)) + Number(/[0-9]/.test(text));
}

/**
 * Prose rather than a credential: words of one case (or Capitalised) joined by `-._~`, no
 * digits. Random tokens of 16+ characters essentially never have this shape.
 */
function isPlainWords(text: string): boolean {
  return /^(?:[a-z]+|[A-Z]+|[A-Z][a-z]+)(?:[\-._~](?:[a-z]+|[A-Z]+|[A-Z][a-z]+))*$/.test(text);
}

// ---------------------------------------------------------------------------------------------
// Base64 helpers for the structural checks

const DC_PAT_MIN = 40;
const DC_PAT_MAX = 48;
const DC_PAT_MIN_SECRET_BYTES = 16;
const STANDARD_BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** Base64 (standard or URL-safe) runs, padding included. */
const BASE64_RUN = /[A-Za-z0-9+/_\-]+={0,2}/g;
const EMAIL_TOKEN_MIN = 16;
const EMAIL_TOKEN_MAX = 1024;
/** At most this many `/` of one run are used as window edges (half from each end). */
const MAX_SLASH_EDGES = 64;

/** base64 value of each character (both alphabets), -1 for anything else. */
const BASE64_VALUES: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  table["-".charCodeAt(0)] = 62;
  table["_".charCodeAt(0)] = 63;
  return table;
})();

/** Decodes standard or URL-safe base64, padding optional; null if it is not base64. */
function decodeBase64(text: string): Uint8Array | null {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--;
  if (end % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let buffer = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? BASE64_VALUES[code] : -1;
    if (value < 0) return null;
    buffer = ((buffer << 6) | value) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (buffer >> bits) & 0xff;
    }
  }
  return out;
}

/** Decoded bytes are ASCII digits (at least one), `:`, then at least 16 more bytes. */
function decodesToIdColonSecret(token: string): boolean {
  // Digits 0x30-0x39 put M, N or O first; checking that avoids decoding ordinary words.
  const first = token.charCodeAt(0);
  if (first < 0x4d || first > 0x4f) return false;
  const bytes = decodeBase64(token);
  if (bytes === null) return false;
  let i = 0;
  while (i < bytes.length && bytes[i] >= 0x30 && bytes[i] <= 0x39) i++;
  return i >= 1 && bytes[i] === 0x3a && bytes.length - i - 1 >= DC_PAT_MIN_SECRET_BYTES;
}

/**
 * Sub-strings of `run` from its start or just after a `/` to its end or just before a `/`,
 * `min..max` long: a token written after a path (`/tmp/<token>`) is otherwise hidden inside a
 * longer base64-alphabet run, because `/` is itself a base64 character.
 */
function* slashWindows(
  run: string,
  min: number,
  max: number,
  pathContextOnly = false,
): Generator<string> {
  let slashes: number[] = [];
  for (let i = run.indexOf("/"); i !== -1; i = run.indexOf("/", i + 1)) slashes.push(i);
  if (slashes.length > MAX_SLASH_EDGES) {
    slashes = [
      ...slashes.slice(0, MAX_SLASH_EDGES / 2),
      ...slashes.slice(-MAX_SLASH_EDGES / 2),
    ];
  }
  const starts = [0, ...slashes.map((i) => i + 1)];
  const ends = [...slashes, run.length];
  // Inside a base64 blob (a certificate body) every `/` would start a random-looking window,
  // so the structural checks only cut where the rest of the run reads like path segments.
  // Computed chunk by chunk from each end, so the whole run is read once.
  const startOk = starts.map(() => true);
  const endOk = ends.map(() => true);
  if (pathContextOnly) {
    for (let k = 1; k < starts.length; k++) {
      startOk[k] = startOk[k - 1] && isPathLike(run.slice(starts[k - 1], starts[k] - 1));
    }
    for (let k = ends.length - 2; k >= 0; k--) {
      endOk[k] = endOk[k + 1] && isPathLike(run.slice(ends[k] + 1, ends[k + 1]));
    }
  }
  for (let s = 0; s < starts.length; s++) {
    if (!startOk[s]) continue;
    for (let e = 0; e < ends.length; e++) {
      const length = ends[e] - starts[s];
      if (endOk[e] && length >= min && length <= max) yield run.slice(starts[s], ends[e]);
    }
  }
}

/** Upper-case words, and lower/camel/Pascal-case words (every capital followed by a lower). */
const UPPER_WORD = /^[A-Z0-9]+$/;
const CAMEL_WORD = /^[a-z0-9]*(?:[A-Z][a-z0-9]+)*$/;

/**
 * Path segments made of words joined by `-`, `_` or `.`. Random base64 segments almost never
 * look like this. (Split first rather than one regex: alternatives repeated inside a
 * quantifier would backtrack exponentially.)
 */
function isPathLike(text: string): boolean {
  return text.split(/[\/\-_.]/).every((word) => UPPER_WORD.test(word) || CAMEL_WORD.test(word));
}

function containsDataCenterPat(text: string): boolean {
  for (const [run] of text.matchAll(BASE64_RUN)) {
    if (run.length < DC_PAT_MIN) continue;
    for (const window of slashWindows(run, DC_PAT_MIN, DC_PAT_MAX, true)) {
      // URL-safe characters are accepted too: the same id and secret bytes, re-encoded.
      if (decodesToIdColonSecret(window)) return true;
    }
  }
  return false;
}

function containsEmailTokenBase64(text: string): boolean {
  for (const [run] of text.matchAll(BASE64_RUN)) {
    if (run.length < EMAIL_TOKEN_MIN) continue;
    for (const window of slashWindows(run, EMAIL_TOKEN_MIN, EMAIL_TOKEN_MAX, true)) {
      if (decodesToEmailToken(window)) return true;
    }
  }
  return false;
}

const EMAIL_TOKEN = /^[^@:]+@[^@:]+:.{8,}$/s;

function decodesToEmailToken(window: string): boolean {
  // A printable first byte (0x21-0x7e) puts I-Z or a-f first.
  const first = window.charCodeAt(0);
  if (!((first >= 0x49 && first <= 0x5a) || (first >= 0x61 && first <= 0x66))) return false;
  const bytes = decodeBase64(window);
  if (bytes === null || !bytes.every((b) => b >= 0x21 && b <= 0x7e)) return false;
  return EMAIL_TOKEN.test(String.fromCharCode(...bytes));
}

function decodesToBasicCredentials(encoded: string): boolean {
  const bytes = decodeBase64(encoded);
  if (bytes === null || bytes.length < 3 || bytes.length > 4096) return false;
  if (!bytes.every((b) => b >= 0x20 && b <= 0x7e)) return false;
  return bytes.includes(0x3a);
}
