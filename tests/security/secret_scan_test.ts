// Specification of the secret detector (DESIGN.md 7 item 4, SECURITY_TESTS.md 3.3 and T15).
// Every token here is synthetic and generated per run: never paste a real token into this file.

import assert from "node:assert/strict";
import {
  candidateTokens,
  cleanRepeatsOf,
  findSecret,
  findSecretInText,
  isDataCenterPatShape,
  SCAN_LIMITS,
  SECRET_DETECTORS,
  type SecretHit,
} from "../../src/security/secret_scan.ts";

// ---------------------------------------------------------------------------------------------
// Synthetic token generators

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const DIGITS = "0123456789";
const BASE62 = UPPER + LOWER + DIGITS;
const BASE64URL = BASE62 + "-_";
const HEX = "0123456789abcdef";

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function randomFrom(alphabet: string, n: number): string {
  return Array.from(randomBytes(n), (b) => alphabet[b % alphabet.length]).join("");
}

/** Random base62 that always holds a lower-case letter, an upper-case letter and a digit. */
function randomBase62(n: number): string {
  return randomFrom(LOWER, 1) + randomFrom(UPPER, 1) + randomFrom(DIGITS, 1) +
    randomFrom(BASE62, n - 3);
}

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function base64url(bytes: Uint8Array): string {
  return base64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const utf8 = new TextEncoder();

/** A Data Center PAT: base64 of `<numeric id>:<random bytes>` (44 chars for 12 + 1 + 20). */
function dcPat(id = "123456789012", secretBytes = 20): string {
  return base64(concat(utf8.encode(`${id}:`), randomBytes(secretBytes)));
}

function jwt(): string {
  const header = base64url(utf8.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const payload = base64url(
    utf8.encode(JSON.stringify({ sub: "alice", iat: 1714550400, aud: "sosvault" })),
  );
  return `${header}.${payload}.${base64url(randomBytes(32))}`;
}

function pemBlock(label: string): string {
  const body = base64(randomBytes(144)).match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----`;
}

async function pkcs8Base64(
  algorithm: RsaHashedKeyGenParams | EcKeyGenParams | Algorithm,
): Promise<string> {
  const pair = await crypto.subtle.generateKey(algorithm, true, ["sign"]) as CryptoKeyPair;
  return base64(new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey)));
}

// Ephemeral keys generated for this run, exported as bare base64 DER (no PEM armour).
const RSA_PKCS8 = await pkcs8Base64({
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
});
const EC_PKCS8 = await pkcs8Base64({ name: "ECDSA", namedCurve: "P-256" });
const ED25519_PKCS8 = await pkcs8Base64({ name: "Ed25519" });

// ---------------------------------------------------------------------------------------------
// Positive corpus: at least one row per detector family

interface Positive {
  name: string;
  detector: string;
  make: () => string;
}

const POSITIVES: readonly Positive[] = [
  { name: "Jira DC PAT (12-digit id, 44 chars)", detector: "jira_dc_pat", make: () => dcPat() },
  {
    name: "Jira DC PAT (2-digit id, 44 chars)",
    detector: "jira_dc_pat",
    make: () => dcPat("42", 30),
  },
  {
    name: "Jira DC PAT-like run of 40 chars",
    detector: "jira_dc_pat",
    make: () => dcPat("7", 28),
  },
  {
    name: "Jira DC PAT-like run of 48 chars",
    detector: "jira_dc_pat",
    make: () => dcPat("12345678901234567", 18),
  },
  {
    name: "Atlassian Cloud API token",
    detector: "atlassian_api_token",
    make: () => `ATATT3xFfGF0${randomFrom(BASE64URL, 170)}=${randomFrom(HEX, 8).toUpperCase()}`,
  },
  {
    name: "Atlassian access token",
    detector: "atlassian_access_token",
    make: () => `ATCTT3xFfGF0${randomFrom(BASE64URL, 120)}=${randomFrom(HEX, 8).toUpperCase()}`,
  },
  {
    name: "Bitbucket app password",
    detector: "bitbucket_app_password",
    make: () => `ATBB${randomBase62(32)}`,
  },
  {
    name: "Bitbucket Data Center access token",
    detector: "bitbucket_dc_token",
    make: () => `BBDC-${randomBase62(44)}`,
  },
  { name: "GitHub classic PAT", detector: "github_token", make: () => `ghp_${randomBase62(36)}` },
  { name: "GitHub OAuth token", detector: "github_token", make: () => `gho_${randomBase62(36)}` },
  {
    name: "GitHub user-to-server token",
    detector: "github_token",
    make: () => `ghu_${randomBase62(36)}`,
  },
  {
    name: "GitHub server-to-server token",
    detector: "github_token",
    make: () => `ghs_${randomBase62(36)}`,
  },
  {
    name: "GitHub refresh token",
    detector: "github_token",
    make: () => `ghr_${randomBase62(36)}`,
  },
  {
    name: "GitHub fine-grained PAT",
    detector: "github_fine_grained_token",
    make: () => `github_pat_${randomBase62(22)}_${randomBase62(59)}`,
  },
  {
    name: "GitLab PAT",
    detector: "gitlab_token",
    make: () => `glpat-${randomFrom(BASE62 + "-_", 20)}`,
  },
  {
    name: "Slack bot token",
    detector: "slack_token",
    make: () => `xoxb-${randomFrom(DIGITS, 12)}-${randomFrom(DIGITS, 13)}-${randomBase62(24)}`,
  },
  {
    name: "Slack user token",
    detector: "slack_token",
    make: () => `xoxp-${randomFrom(DIGITS, 11)}-${randomFrom(DIGITS, 12)}-${randomBase62(32)}`,
  },
  {
    name: "AWS access key id",
    detector: "aws_access_key",
    make: () => `AKIA${randomFrom(UPPER + DIGITS, 16)}`,
  },
  {
    name: "AWS temporary access key id",
    detector: "aws_access_key",
    make: () => `ASIA${randomFrom(UPPER + DIGITS, 16)}`,
  },
  {
    name: "OpenAI legacy key",
    detector: "openai_api_key",
    make: () => `sk-${randomBase62(48)}`,
  },
  {
    name: "OpenAI project key",
    detector: "openai_api_key",
    make: () => `sk-proj-${randomBase62(40)}_${randomFrom(BASE64URL, 100)}`,
  },
  {
    name: "Anthropic API key",
    detector: "anthropic_api_key",
    make: () => `sk-ant-api03-${randomFrom(BASE64URL, 93)}AA`,
  },
  {
    name: "Stripe secret key",
    detector: "stripe_api_key",
    make: () => `sk_live_${randomBase62(24)}`,
  },
  {
    name: "Google API key",
    detector: "google_api_key",
    make: () => `AIza${randomFrom(BASE64URL, 35)}`,
  },
  { name: "npm token", detector: "npm_token", make: () => `npm_${randomBase62(36)}` },
  { name: "JWT", detector: "jwt", make: jwt },
  {
    name: "PEM RSA private key",
    detector: "private_key",
    make: () => pemBlock("RSA PRIVATE KEY"),
  },
  {
    name: "PEM OpenSSH private key",
    detector: "private_key",
    make: () => pemBlock("OPENSSH PRIVATE KEY"),
  },
  { name: "PEM PKCS#8 private key", detector: "private_key", make: () => pemBlock("PRIVATE KEY") },
  {
    name: "PEM encrypted private key",
    detector: "private_key",
    make: () => pemBlock("ENCRYPTED PRIVATE KEY"),
  },
  {
    name: "bare base64 DER RSA private key",
    detector: "private_key",
    make: () => RSA_PKCS8,
  },
  {
    name: "bare base64 DER EC P-256 private key",
    detector: "private_key",
    make: () => EC_PKCS8,
  },
  {
    name: "bare base64 DER Ed25519 private key",
    detector: "private_key",
    make: () => ED25519_PKCS8,
  },
  {
    name: "base64 of email:token",
    detector: "email_token_base64",
    make: () => base64(utf8.encode(`alice@example.com:${randomBase62(24)}`)),
  },
  {
    name: "base64url of email:token",
    detector: "email_token_base64",
    make: () => base64url(utf8.encode(`svc-jira@corp.example.org:${randomBase62(32)}`)),
  },
  {
    name: "Bearer header with an opaque token",
    detector: "bearer_header",
    make: () => `Bearer ${randomBase62(40)}`,
  },
  {
    name: "lower-case bearer with a short opaque token",
    detector: "bearer_header",
    make: () => `bearer ${randomBase62(16)}`,
  },
  {
    name: "Basic header",
    detector: "basic_auth_header",
    make: () => `Basic ${base64(utf8.encode(`jira-bot:${randomBase62(20)}`))}`,
  },
  {
    name: "Authorization header with the token scheme",
    detector: "authorization_header",
    make: () => `Authorization: token ${randomFrom(HEX, 40)}`,
  },
  {
    name: "Proxy-Authorization header with an API key",
    detector: "authorization_header",
    make: () => `Proxy-Authorization: ApiKey ${randomBase62(32)}`,
  },
];

// ---------------------------------------------------------------------------------------------
// Variants a token can be hidden in

const INVISIBLES = ["\u200B", "\u200C", "\u200D", "\u2060", "\uFEFF", "\u202C", "\u00AD"];

function withZeroWidth(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    out += text[i];
    if (i % 3 === 2) out += INVISIBLES[i % INVISIBLES.length];
  }
  return out;
}

function percentEncodeAll(text: string): string {
  return Array.from(utf8.encode(text), (b) => `%${b.toString(16).padStart(2, "0")}`).join("");
}

function fullwidth(text: string): string {
  return Array.from(text, (c) => {
    const code = c.charCodeAt(0);
    if (c === " ") return "\u3000";
    return code >= 0x21 && code <= 0x7e ? String.fromCharCode(code + 0xfee0) : c;
  }).join("");
}

function jsonEscapeAll(text: string): string {
  return Array.from(text, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");
}

interface Variant {
  spec: string;
  /** The tool arguments that carry `token`, and where the hit must be reported. */
  wrap: (token: string) => { value: unknown; path: string };
}

const VARIANTS: readonly Variant[] = [
  {
    spec: "as a plain argument value",
    wrap: (t) => ({ value: { issue_key: t }, path: "$.issue_key" }),
  },
  {
    spec: "embedded in a sentence",
    wrap: (t) => ({
      value: { comment: `Hi! Could you attach the logs? Use ${t} if the upload fails. Thanks.` },
      path: "$.comment",
    }),
  },
  {
    spec: "URL-encoded",
    wrap: (t) => ({ value: { filename: encodeURIComponent(t) }, path: "$.filename" }),
  },
  {
    spec: "fully percent-encoded",
    wrap: (t) => ({ value: { filename: percentEncodeAll(t) }, path: "$.filename" }),
  },
  {
    spec: "hidden behind zero-width characters",
    wrap: (t) => ({ value: { artifact_ref: withZeroWidth(t) }, path: "$.artifact_ref" }),
  },
  {
    spec: "written in fullwidth look-alike characters",
    wrap: (t) => ({ value: { issue_key: fullwidth(t) }, path: "$.issue_key" }),
  },
  {
    spec: "JSON-escaped as \\u sequences",
    wrap: (t) => ({ value: { comment: jsonEscapeAll(t) }, path: "$.comment" }),
  },
  {
    spec: "used as an object key",
    wrap: (t) => ({ value: { meta: { ok: 1, [t]: "value" } }, path: "$.meta<key 1>" }),
  },
  {
    spec: "nested in arrays",
    wrap: (t) => ({
      value: { issue_key: "ABC-1", labels: ["ok", ["fine", t]] },
      path: "$.labels[1][1]",
    }),
  },
];

/** The hit names a detector, a path and a length, and nothing of the secret. */
function assertHitHidesSecret(hit: SecretHit | null, secret: string): asserts hit is SecretHit {
  assert.ok(hit !== null, "expected a hit");
  assert.deepEqual(Object.keys(hit).sort(), ["detector", "length", "path"]);
  const serialised = JSON.stringify(hit);
  assert.ok(!serialised.includes(secret), "the hit contains the secret");
  for (let i = 0; i + 12 <= secret.length; i += 4) {
    assert.ok(!serialised.includes(secret.slice(i, i + 12)), "the hit contains part of the secret");
  }
}

// ---------------------------------------------------------------------------------------------
// Positives

Deno.test("the positive corpus covers every pattern detector", () => {
  const covered = new Set(POSITIVES.map((p) => p.detector));
  const patternDetectors = SECRET_DETECTORS.filter((d) =>
    d !== "known_secret" && d !== "too_complex"
  );
  assert.deepEqual([...covered].sort(), [...patternDetectors].sort());
  assert.ok(POSITIVES.length >= 30);
});

for (const variant of VARIANTS) {
  Deno.test(`findSecret() rejects every token family ${variant.spec}`, async (t) => {
    for (const positive of POSITIVES) {
      await t.step(positive.name, async () => {
        const token = positive.make();
        const { value, path } = variant.wrap(token);
        const hit = await findSecret(value);
        assertHitHidesSecret(hit, token);
        assert.equal(hit.detector, positive.detector);
        assert.equal(hit.path, path);
      });
    }
  });
}

Deno.test("findSecretInText() rejects every token family in egress text", async (t) => {
  for (const positive of POSITIVES) {
    await t.step(positive.name, async () => {
      const token = positive.make();
      const text = `{"issue_key":"ABC-1","error":"upstream said: ${token}"}`;
      const hit = await findSecretInText(text);
      assertHitHidesSecret(hit, token);
      assert.equal(hit.detector, positive.detector);
      assert.deepEqual(hit, { detector: positive.detector, path: "$", length: text.length });
    });
  }
});

Deno.test("findSecret() rejects a Jira DC PAT hidden behind zero-width characters", async () => {
  const pat = dcPat();
  const hit = await findSecret({ connection_id: "jc_x", issue_key: withZeroWidth(pat) });
  assertHitHidesSecret(hit, pat);
  assert.equal(hit.detector, "jira_dc_pat");
  assert.equal(hit.path, "$.issue_key");
});

Deno.test("findSecret() rejects a Jira DC PAT written after a path or before a suffix", async () => {
  const pat = dcPat();
  for (
    const text of [
      `/var/tmp/${pat}`,
      `/tmp/sosvault/alice/${pat}/report.tar.xz`,
      `${pat}.txt`,
      `https://jira.example.com/jira/rest/api/2/issue/ABC-1?pat=${pat}`,
      `https://jira.example.com/jira/rest/${pat}`,
      `/home/alice/myProject/MAILHOST01/${pat}/sosreport-MAILHOST01-2024.tar.xz`,
      `token:${pat}`,
      `"${pat}"`,
      pat.replaceAll("/", "\\/"),
      pat.replaceAll("+", "-").replaceAll("/", "_"),
    ]
  ) {
    const hit = await findSecret({ artifact_ref: text });
    assertHitHidesSecret(hit, pat);
    assert.equal(hit.detector, "jira_dc_pat", `missed in shape ${text.replace(pat, "<PAT>")}`);
  }
});

Deno.test("findSecret() does not read a DC PAT into a slice of a certificate body", async () => {
  // A real CA bundle line whose tail after the second '/' decodes to "3:" + 32 bytes.
  const line = "OXSuTEGC2/KmSNGzm/MzqvOmwMVO9fSddmPmAsYiS8GVP1BkLFTltvA8Kc9XAgMB";
  assert.equal(await findSecret({ comment: line }), null);
  assert.ok(
    isDataCenterPatShape(line.slice(line.lastIndexOf("/") + 1)),
    "the slice alone has the shape",
  );
});

Deno.test("findSecret() rejects a Bearer header carrying a Jira DC PAT as a DC PAT", async () => {
  const pat = dcPat();
  const hit = await findSecret({ comment: `Authorization: Bearer ${pat}` });
  assertHitHidesSecret(hit, pat);
  assert.equal(hit.detector, "jira_dc_pat");
});

// ---------------------------------------------------------------------------------------------
// Negatives

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function digest(algorithm: string, text: string): Promise<ArrayBuffer> {
  return await crypto.subtle.digest(algorithm, utf8.encode(text));
}

/** A hand-rolled MD5 is overkill; any 128-bit digest has its shape. */
async function md5Shaped(text: string): Promise<string> {
  return hex(await digest("SHA-256", text)).slice(0, 32);
}

const ORDINARY_TEXT_4K = (() => {
  const parts = [
    "Attached the sosreport for ABC-123 and abc-456; the checksum matched.",
    "/var/tmp/sosreport-myhost-linux-mcp-sos-2024-05-01-abcdef.tar.xz",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "connection jc_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCd created 2024-05-01T12:34:56Z",
    "https://jira.example.com/jira/browse/OPS-42?focusedCommentId=10001",
    "The bearer of this ticket should rotate the basic configuration before authorization.",
    "0d4c3a1e-8f7b-4c2d-9e6a-5b4f3c2d1e0f alice@example.com v2.9.6 10.0.0-beta.1+build.5",
  ];
  let text = "";
  for (let i = 0; text.length < 4096; i++) text += parts[i % parts.length] + "\n";
  return text.slice(0, 4096);
})();

const ORDINARY: ReadonlyArray<[string, string]> = [
  ["Jira issue key", "ABC-123"],
  ["lower-case Jira issue key", "abc-123"],
  ["issue key with underscore project", "PROJ_X-98765"],
  ["issue key whose project looks like a token prefix (SK)", "SK-123"],
  ["issue key whose project looks like a token prefix (ATBB)", "ATBB-42"],
  ["issue key whose project looks like a token prefix (BBDC)", "BBDC-1234"],
  ["numeric issue id", "1234567"],
  [
    "sosreport path in /var/tmp",
    "/var/tmp/sosreport-myhost-linux-mcp-sos-2024-05-01-abcdef.tar.xz",
  ],
  [
    "sosreport checksum path",
    "/var/tmp/sosreport-myhost-linux-mcp-sos-2024-05-01-abcdef.tar.xz.sha256",
  ],
  [
    "artifact copy path",
    "/tmp/sosvault/alice/sosreport-db01.prod.example.com-linux-mcp-sos-2024-05-01-x9y8z7w.tar.xz",
  ],
  [
    "long artifact path with an M-initial host",
    "/srv/sosvault/artifacts/MAILHOST01/sosreport-MAILHOST01-linux-mcp-sos-2024-05-01-Nq7zK.tar.xz",
  ],
  ["relative path", "relative/path/to/file.txt"],
  ["dot-relative log path", "./logs/app-2024-05-01.log"],
  ["deep path", `/${Array.from({ length: 40 }, (_, i) => `dir${i}`).join("/")}/file.bin`],
  ["Windows path", "C:\\Users\\alice\\Downloads\\sosreport-host-2024.tar.xz"],
  ["base URL", "https://jira.example.com/jira"],
  ["issue URL with query", "https://jira.example.com/jira/browse/ABC-123?focusedCommentId=10001"],
  ["connect URL", "https://sosvault.example.com/connect/Xy9_Kp2-QrLm8NwZ"],
  ["ISO timestamp (UTC)", "2024-05-01T12:34:56.789Z"],
  ["ISO timestamp (offset)", "2024-05-01T12:34:56+02:00"],
  ["file name", "sosreport.tar.xz"],
  ["file name with spaces", "Screenshot 2024-05-01 at 10.15.32.png"],
  ["kebab-case file name", "task-runner-for-nightly-builds-2024-05-01.log"],
  ["email", "alice@example.com"],
  ["tagged email", "first.last+jira@sub.example.co.uk"],
  ["semver", "1.2.3"],
  ["semver with pre-release and build", "10.0.0-beta.1+build.20240501"],
  ["v-prefixed version", "v2.9.6"],
  ["MIME type", "application/x-xz"],
  ["host name", "db01.prod.example.com"],
  [
    "long English sentence with credential words",
    "The bearer of this ticket should rotate the private key and update the basic configuration " +
    "before authorization is granted; the token of appreciation goes to the security team.",
  ],
  [
    "long plain English paragraph",
    "Please attach the diagnostic archive to the incident ticket once the collection finishes. " +
    "If the upload fails because the attachment is too large, split it or ask an administrator " +
    "to raise the limit, and mention the checksum in a comment so reviewers can verify it.",
  ],
  ["Authorization in prose", "Authorization: pending approval from the change advisory board"],
  ["Bearer in prose", "Bearer instrument documentation"],
  ["time in a sentence", "Meeting: 12:30 in room B"],
  ["non-ASCII text", "Grüße aus Köln — 日本語のテキスト — ½ ﬁle"],
  ["public certificate header", "-----BEGIN CERTIFICATE-----"],
  ["public key header", "-----BEGIN PUBLIC KEY-----"],
  ["lone JWT header", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"],
  ["too-short GitHub prefix", `ghp_${"a1B2".repeat(8)}xyz`],
  ["too-short AWS prefix", "AKIA1234ABCD"],
  ["too-short GitLab token", "glpat-abc123DEF456ghi78"],
  ["too-short Atlassian prefix", "ATATT3xFfGF0"],
  ["malformed percent escapes", "100% done, 50%off, %zz and %E2%82 truncated"],
  ["JSON-ish text with escapes", '{\\"path\\":\\"\\/var\\/tmp\\/x.tar.xz\\",\\"n\\":\\u0031}'],
  ["the 4 KiB ordinary text", ORDINARY_TEXT_4K],
];

/** Values computed at load time: digests, UUIDs and our own random ids. */
const COMPUTED_ORDINARY: ReadonlyArray<[string, string]> = [
  ["sha256 hex digest", hex(await digest("SHA-256", "sosreport-host-2024.tar.xz"))],
  ["upper-case sha256 hex", hex(await digest("SHA-256", "another file")).toUpperCase()],
  ["sha1 hex digest (40 chars)", hex(await digest("SHA-1", "attachment"))],
  ["sha512 hex digest", hex(await digest("SHA-512", "attachment"))],
  ["md5-shaped hex digest", await md5Shaped("attachment")],
  [
    "sha256 in base64 (44 chars, like an attachment checksum)",
    base64(new Uint8Array(await digest("SHA-256", "sosreport-host-2024.tar.xz"))),
  ],
  [
    "sha256 in base64 of another file",
    base64(new Uint8Array(await digest("SHA-256", "kernel.log"))),
  ],
  ["base64 of prose", btoa("The quick brown fox jumps over the lazy dog")],
  ["base64 of prose (45 chars)", btoa("Release notes for the storage layer")],
  ["base64url of prose", base64url(utf8.encode("Meeting notes for the quarterly review"))],
  [
    "base64 of prose with a colon",
    btoa("Summary: nightly backup completed without errors"),
  ],
  ["UUID", crypto.randomUUID()],
  ["upper-case UUID", crypto.randomUUID().toUpperCase()],
  ["connection id (26 chars)", `jc_${randomFrom(BASE64URL, 26)}`],
  ["connection id (43 chars)", `jc_${base64url(randomBytes(32))}`],
  ["job id", `job_${base64url(randomBytes(16))}`],
  ["request id", `req_${base64url(randomBytes(16))}`],
  ["consent token", `sc_${base64url(randomBytes(32))}`],
];

Deno.test("findSecret() returns null for every ordinary value", async (t) => {
  const all = [...ORDINARY, ...COMPUTED_ORDINARY];
  assert.ok(all.length >= 40);
  for (const [name, value] of all) {
    await t.step(name, async () => {
      assert.equal(await findSecret(value), null);
      assert.equal(await findSecret({ issue_key: value, labels: [value], [value]: value }), null);
      assert.equal(await findSecretInText(value), null);
      assert.equal(await findSecret({ comment: value }, () => false), null);
    });
  }
});

Deno.test("findSecret() returns null for 200 fresh ids of each of our own kinds", async () => {
  for (let i = 0; i < 200; i++) {
    const ids = {
      connection_id: `jc_${base64url(randomBytes(32))}`,
      short_connection_id: `jc_${randomFrom(BASE64URL, 26)}`,
      job_id: `job_${base64url(randomBytes(16))}`,
      request_id: `req_${base64url(randomBytes(16))}`,
      consent_token: `sc_${base64url(randomBytes(32))}`,
      uuid: crypto.randomUUID(),
      path: `/tmp/sosvault/u_${
        randomFrom(BASE64URL, 22)
      }/sosreport-h-linux-mcp-sos-2024-05-01.tar.xz`,
    };
    const hit = await findSecret(ids);
    assert.equal(hit, null, `false positive at ${hit?.path}`);
  }
});

Deno.test("cleanRepeatsOf() vouches only for a flat object of strings already scanned clean", async () => {
  const id = `jc_${base64url(randomBytes(24))}`;
  const pat = `ghp_${randomBase62(36)}`;
  assert.equal(cleanRepeatsOf({ connection_id: id }), null, "not scanned yet");
  assert.equal(await findSecret({ connection_id: id }), null);
  assert.deepEqual(cleanRepeatsOf({ connection_id: id }), ["connection_id", id]);
  // A field name no scan has seen (the memo is the module's, shared by every test here).
  const fresh = `field_${randomFrom(LOWER, 16)}`;
  assert.deepEqual(
    cleanRepeatsOf({ connection_id: id, [fresh]: true, n: 3 }),
    null,
    `${fresh} is new`,
  );
  // A secret is never remembered clean, whatever shape it was sent in.
  assert.ok(await findSecret({ connection_id: pat }));
  assert.equal(cleanRepeatsOf({ connection_id: pat }), null);
  // Free text, nesting and other shapes always get the full scan.
  assert.equal(await findSecret({ comment: "see the attached report" }), null);
  assert.equal(cleanRepeatsOf({ comment: "see the attached report" }), null);
  assert.equal(cleanRepeatsOf({ connection_id: [id] }), null);
  assert.equal(cleanRepeatsOf({ connection_id: { id } }), null);
  assert.equal(cleanRepeatsOf([id]), null);
  assert.equal(cleanRepeatsOf(id), null);
  assert.equal(cleanRepeatsOf(new Map([["connection_id", id]])), null);
});

// ---------------------------------------------------------------------------------------------
// Paths and what a hit carries

Deno.test("findSecret() reports the JSON path of the string that held the secret", async () => {
  const token = `ghp_${randomBase62(36)}`;
  const cases: Array<[unknown, string]> = [
    [token, "$"],
    [{ issue_key: token }, "$.issue_key"],
    [{ issue_key: "ABC-1", labels: ["a", "b", token] }, "$.labels[2]"],
    [{ a: { b: [{ c: token }] } }, "$.a.b[0].c"],
    [[1, true, null, token], "$[3]"],
    [{ "content-type": token }, "$<value 0>"],
    [{ ok: "x", nested: { first: 1, [token]: 2 } }, "$.nested<key 1>"],
  ];
  for (const [value, path] of cases) {
    const hit = await findSecret(value);
    assertHitHidesSecret(hit, token);
    assert.equal(hit.path, path);
    assert.equal(hit.length, token.length);
  }
});

Deno.test("findSecret() reports the length of the whole string, not of the match", async () => {
  const text = `see ${`sk-${randomBase62(48)}`} here`;
  const hit = await findSecret({ comment: text });
  assert.deepEqual(hit, { detector: "openai_api_key", path: "$.comment", length: text.length });
});

Deno.test("findSecret() never copies a secret-looking key into the path of its value", async () => {
  const keyToken = `ghp_${randomBase62(36)}`;
  const pat = dcPat();
  const hit = await findSecret({ [keyToken]: { inner: pat } }, (c) => c === pat);
  assertHitHidesSecret(hit, keyToken);
  assertHitHidesSecret(hit, pat);
  assert.deepEqual(hit, { detector: "known_secret", path: "$<value 0>.inner", length: 44 });
});

Deno.test("findSecret() scans a __proto__ key and its value like any other", async () => {
  const token = `ghp_${randomBase62(36)}`;
  const parsed = JSON.parse(`{"ok":1,"__proto__":{"x":"${token}"}}`);
  assert.deepEqual(await findSecret(parsed), {
    detector: "github_token",
    path: "$.__proto__.x",
    length: token.length,
  });
  const keyed = JSON.parse(`{"__proto__":{"${token}":1}}`);
  assert.equal((await findSecret(keyed))?.path, "$.__proto__<key 0>");
});

Deno.test("findSecret() returns the first hit in document order", async () => {
  const hit = await findSecret({
    issue_key: "ABC-1",
    first: `AKIA${randomFrom(UPPER + DIGITS, 16)}`,
    second: `ghp_${randomBase62(36)}`,
  });
  assert.equal(hit?.path, "$.first");
  assert.equal(hit?.detector, "aws_access_key");
});

Deno.test("findSecret() ignores numbers, booleans, null and undefined", async () => {
  for (const value of [0, 12345678901234567890, true, false, null, undefined, 10n, [1, 2, 3]]) {
    assert.equal(await findSecret(value), null);
  }
});

// ---------------------------------------------------------------------------------------------
// Layer 3: known secrets

Deno.test("findSecret() passes the exact candidate to the known-secret check", async () => {
  const pat = dcPat();
  const seen: string[] = [];
  const hit = await findSecret({ comment: `my token is ${pat}, thanks` }, (candidate) => {
    seen.push(candidate);
    return candidate === pat;
  });
  assertHitHidesSecret(hit, pat);
  assert.equal(hit.detector, "known_secret");
  assert.equal(hit.path, "$.comment");
  assert.ok(seen.includes(pat));
});

Deno.test("findSecret() reports known_secret rather than the PAT's shape", async () => {
  const pat = dcPat();
  assert.equal((await findSecret({ issue_key: pat }))?.detector, "jira_dc_pat");
  const hit = await findSecret({ issue_key: pat }, (c) => c === pat);
  assert.equal(hit?.detector, "known_secret");
});

Deno.test("findSecret() prefers a known secret anywhere over an earlier shape match", async () => {
  const pat = dcPat();
  const hit = await findSecret(
    { first: `ghp_${randomBase62(36)}`, second: { deeper: [`x ${pat} y`] } },
    (c) => c === pat,
  );
  assert.deepEqual(hit, {
    detector: "known_secret",
    path: "$.second.deeper[0]",
    length: pat.length + 4,
  });
});

Deno.test("findSecret() finds a known secret that has no recognisable shape", async () => {
  const secret = `${randomFrom(LOWER, 8)}-${randomFrom(LOWER, 8)}-${randomFrom(LOWER, 8)}`;
  const check = (c: string) => c === secret;
  assert.equal(await findSecret({ comment: secret }), null);
  for (
    const text of [
      secret,
      `pat=${secret}`,
      `user:${secret}`,
      `/tmp/${secret}/x`,
      `${secret}.txt`,
      `'${secret}'`,
      withZeroWidth(secret),
      percentEncodeAll(secret),
      fullwidth(secret),
    ]
  ) {
    const hit = await findSecret({ comment: text }, check);
    assert.equal(hit?.detector, "known_secret");
    assertHitHidesSecret(hit, secret);
  }
});

Deno.test("findSecret() awaits an asynchronous HMAC fingerprint check", async () => {
  const key = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const fingerprint = async (text: string) =>
    hex(await crypto.subtle.sign("HMAC", key, utf8.encode(text)));
  const pat = dcPat();
  const held = new Set([await fingerprint(pat)]);
  const check = async (candidate: string) => held.has(await fingerprint(candidate));
  const hit = await findSecret({ filename: `${pat}.log` }, check);
  assert.deepEqual(hit, { detector: "known_secret", path: "$.filename", length: 48 });
  assert.equal(await findSecret({ filename: "ordinary.log" }, check), null);
});

Deno.test("findSecret() does not consult the known-secret check for short values", async () => {
  let calls = 0;
  const hit = await findSecret({ issue_key: "ABC-123", connection_id: "jc_short" }, () => {
    calls++;
    return true;
  });
  assert.equal(hit, null);
  assert.equal(calls, 0);
});

Deno.test("findSecret() fails closed when the known-secret check throws", async () => {
  const pat = dcPat();
  await assert.rejects(
    findSecret({ comment: pat }, () => {
      throw new Error("fingerprint store unavailable");
    }),
    (error: Error) =>
      error.message === "fingerprint store unavailable" && !error.message.includes(pat),
  );
});

Deno.test("findSecretInText() reports a known secret at path $", async () => {
  const pat = dcPat();
  const text = `log line: upstream echoed ${pat}`;
  assert.deepEqual(await findSecretInText(text, (c) => c === pat), {
    detector: "known_secret",
    path: "$",
    length: text.length,
  });
});

Deno.test("candidateTokens() yields delimited runs of 20..512 token characters", () => {
  const a = randomBase62(20);
  const b = dcPat();
  const long = randomBase62(600);
  const tokens = candidateTokens(`x "${a}" Bearer ${b}; short=${randomBase62(19)} ${long}`);
  assert.ok(tokens.includes(a));
  assert.ok(tokens.includes(b));
  assert.ok(tokens.every((t) => t.length >= 20 && t.length <= 512));
  assert.ok(!tokens.includes(long));
  assert.ok(tokens.every((t) => /^[A-Za-z0-9+/=_\-.:~]+$/.test(t)));
});

Deno.test("candidateTokens() also yields the token after key=, user: and path prefixes", () => {
  const t = dcPat();
  for (const text of [`pat=${t}`, `user:${t}`, `/var/tmp/${t}`, `${t}.txt`, `a/${t}/b`]) {
    assert.ok(candidateTokens(text).includes(t), text.replace(t, "<T>"));
  }
  assert.deepEqual(candidateTokens(""), []);
  assert.deepEqual(candidateTokens("ABC-123 and a short one"), []);
});

// ---------------------------------------------------------------------------------------------
// isDataCenterPatShape()

Deno.test("isDataCenterPatShape() accepts base64 of digits, a colon and 16+ bytes", () => {
  assert.ok(isDataCenterPatShape(dcPat()));
  assert.ok(isDataCenterPatShape(dcPat("1", 31)));
  assert.ok(isDataCenterPatShape(dcPat("7", 28)));
  assert.ok(isDataCenterPatShape(dcPat("12345678901234567", 18)));
  assert.equal(dcPat().length, 44);
});

Deno.test("isDataCenterPatShape() rejects near misses", () => {
  // Fixed filler bytes (0xAB is neither a digit nor ':') keep these near misses exact.
  const b64 = (text: string, extra = 0) =>
    base64(concat(utf8.encode(text), new Uint8Array(extra).fill(0xab)));
  assert.equal(isDataCenterPatShape(b64("123456789012", 21)), false, "no colon");
  assert.equal(isDataCenterPatShape(b64(":", 32)), false, "no digits");
  assert.equal(isDataCenterPatShape(b64("12345678901234567:", 15)), false, "secret too short");
  assert.equal(isDataCenterPatShape(b64("abc:", 29)), false, "non-digit id");
  assert.equal(isDataCenterPatShape(dcPat("1", 24)), false, "36 chars");
  assert.equal(isDataCenterPatShape(dcPat("1", 35)), false, "52 chars");
  assert.equal(isDataCenterPatShape(`${dcPat()}!`), false, "not base64");
  const urlSafe = (() => {
    for (;;) {
      const t = dcPat();
      if (/[+/]/.test(t)) return t.replaceAll("+", "-").replaceAll("/", "_");
    }
  })();
  assert.equal(isDataCenterPatShape(urlSafe), false, "URL-safe alphabet");
  assert.equal(isDataCenterPatShape(""), false);
});

// ---------------------------------------------------------------------------------------------
// Bounds: bombs give too_complex, never a throw or a hang

function nestedArrays(depth: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

Deno.test("findSecret() accepts nesting up to the depth limit", async () => {
  assert.equal(await findSecret(nestedArrays(SCAN_LIMITS.maxDepth, "ok")), null);
  const hit = await findSecret(nestedArrays(SCAN_LIMITS.maxDepth, `ghp_${randomBase62(36)}`));
  assert.equal(hit?.detector, "github_token");
});

Deno.test("findSecret() rejects nesting one level past the limit as too_complex", async () => {
  const hit = await findSecret(nestedArrays(SCAN_LIMITS.maxDepth + 1, "ok"));
  assert.equal(hit?.detector, "too_complex");
  assert.equal(hit?.length, 0);
});

Deno.test("findSecret() rejects a 100,000-deep array bomb as too_complex", async () => {
  assert.equal((await findSecret(nestedArrays(100_000, "ok")))?.detector, "too_complex");
});

Deno.test("findSecret() rejects a 10,000-deep object bomb as too_complex", async () => {
  let value: unknown = "ok";
  for (let i = 0; i < 10_000; i++) value = { a: value };
  assert.equal((await findSecret(value, () => false))?.detector, "too_complex");
});

Deno.test("findSecret() rejects a cyclic value as too_complex", async () => {
  const cyclic: Record<string, unknown> = { a: "ok" };
  cyclic.self = cyclic;
  assert.equal((await findSecret(cyclic))?.detector, "too_complex");
});

Deno.test("findSecret() rejects a shared-reference bomb as too_complex", async () => {
  let value: unknown = "leaf";
  for (let i = 0; i < 20; i++) value = Array(10).fill(value);
  assert.equal((await findSecret(value))?.detector, "too_complex");
});

Deno.test("findSecret() rejects a 200,000-element array as too_complex", async () => {
  assert.equal((await findSecret(Array(200_000).fill("ok")))?.detector, "too_complex");
});

Deno.test("findSecret() rejects a sparse array of length 1e9 as too_complex", async () => {
  assert.equal((await findSecret(new Array(1e9)))?.detector, "too_complex");
});

Deno.test("findSecret() rejects an object with 100,000 keys as too_complex", async () => {
  const wide: Record<string, string> = {};
  for (let i = 0; i < 100_000; i++) wide[`k${i}`] = "v";
  assert.equal((await findSecret(wide))?.detector, "too_complex");
});

Deno.test("findSecret() rejects more text than the total budget as too_complex", async () => {
  const big = "a".repeat(SCAN_LIMITS.maxTotalChars + 1);
  assert.deepEqual(await findSecret({ comment: big }), {
    detector: "too_complex",
    path: "$.comment",
    length: 0,
  });
});

Deno.test("findSecret() rejects values that are not JSON-shaped as too_complex", async () => {
  class Box {
    value = `ghp_${randomBase62(36)}`;
  }
  for (
    const value of [
      new Map([["k", "v"]]),
      new Set(["v"]),
      new Uint8Array(16),
      new Date(0),
      new Box(),
      { nested: new Map() },
    ]
  ) {
    assert.equal((await findSecret(value))?.detector, "too_complex");
  }
});

Deno.test("findSecret() turns a throwing getter into too_complex instead of throwing", async () => {
  const hostile = {
    get issue_key(): string {
      throw new Error("boom");
    },
  };
  assert.equal((await findSecret(hostile))?.detector, "too_complex");
});

Deno.test("findSecret() caps the known-secret checks and then fails closed", async () => {
  const leaf = () => Array.from({ length: 3_000 }, () => randomBase62(21)).join(" ");
  let calls = 0;
  const hit = await findSecret(Array.from({ length: 8 }, leaf), () => {
    calls++;
    return false;
  });
  assert.equal(hit?.detector, "too_complex");
  assert.equal(calls, SCAN_LIMITS.maxKnownSecretChecks);
});

Deno.test("findSecretInText() scans only the first 64 KiB of a longer text", async () => {
  const token = `ghp_${randomBase62(36)}`;
  const filler = ORDINARY_TEXT_4K.repeat(64); // 256 KiB
  assert.equal(await findSecretInText(filler), null);
  assert.equal((await findSecretInText(`${token} ${filler}`))?.detector, "github_token");
  assert.equal(await findSecretInText(`${filler} ${token}`), null);
});

Deno.test("findSecretInText() finishes 1,000 scans of a 4 KiB ordinary text", async () => {
  assert.equal(ORDINARY_TEXT_4K.length, 4096);
  for (let i = 0; i < 1_000; i++) {
    assert.equal(await findSecretInText(ORDINARY_TEXT_4K), null);
  }
});

Deno.test("findSecret() finishes 1,000 scans of 4 KiB arguments with a known-secret check", async () => {
  const args = { comment: ORDINARY_TEXT_4K, issue_key: "ABC-123", labels: ["a", "b"] };
  for (let i = 0; i < 1_000; i++) {
    assert.equal(await findSecret(args, () => false), null);
  }
});

Deno.test("findSecret() stays linear on adversarial repetitions of token prefixes", async () => {
  for (
    const unit of ["eyJ", "eyJa.", "ghp_", "github_pat_", "-----BEGIN", "Bearer ", "M/", "ATBB-"]
  ) {
    const text = unit.repeat(Math.ceil(SCAN_LIMITS.maxScannedChars / unit.length));
    await findSecret({ comment: text }, () => false);
    await findSecretInText(text);
  }
});
