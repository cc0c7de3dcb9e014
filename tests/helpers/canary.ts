/**
 * Canary PATs: real Data Center-shaped tokens made for one test run. Every canary is written
 * to .test-out/canaries.txt so the sweep that runs after the suite (tests/sweep/) can prove it
 * appears nowhere it must not: responses, logs, events, and the KV files on disk.
 */
import { OUT_DIR } from "./paths.ts";

function base64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** 12 ASCII digits, ':', 20 random bytes, base64: 44 characters, like a Jira DC PAT. */
export function makeDcPat(): string {
  const digits = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => String(b % 10)).join(
    "",
  );
  const id = new TextEncoder().encode(digits.replace(/^0/, "1") + ":");
  const bytes = new Uint8Array(33);
  bytes.set(id);
  bytes.set(crypto.getRandomValues(new Uint8Array(20)), 13);
  return base64(bytes);
}

export async function newCanaryPat(): Promise<string> {
  const pat = makeDcPat();
  await Deno.mkdir(OUT_DIR, { recursive: true });
  await Deno.writeTextFile(`${OUT_DIR}/canaries.txt`, pat + "\n", { append: true });
  return pat;
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

function randomTokenChars(n: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => alphabet[b & 63]).join("");
}

/** An Atlassian Cloud API token's shape: `ATATT3`, ~180 URL-safe characters, `=`, 8 hex. */
export function makeCloudToken(): string {
  return `ATATT3${randomTokenChars(180)}=${randomHex(4).toUpperCase()}`;
}

/**
 * A canary Cloud credential: an e-mail whose local part is 24 random hex characters, and an API
 * token. The token and the local part go to canaries.txt (every form and every 12-character
 * piece is swept); the e-mail and `email:token` go to canaries-whole.txt (only whole-value forms
 * are swept there, since the masked hint legitimately shows the domain).
 */
export async function newCloudCanary(): Promise<{ email: string; token: string }> {
  const local = `c${randomHex(12)}`;
  const email = `${local}@canary.example.org`;
  const token = makeCloudToken();
  await Deno.mkdir(OUT_DIR, { recursive: true });
  await Deno.writeTextFile(`${OUT_DIR}/canaries.txt`, `${token}\n${local.slice(1)}\n`, {
    append: true,
  });
  await Deno.writeTextFile(`${OUT_DIR}/canaries-whole.txt`, `${email}\n${email}:${token}\n`, {
    append: true,
  });
  return { email, token };
}

/** Registers another secret (a webhook secret) with the sweep; keep its file out of .test-out. */
export async function registerCanary(secret: string): Promise<string> {
  await Deno.mkdir(OUT_DIR, { recursive: true });
  await Deno.writeTextFile(`${OUT_DIR}/canaries.txt`, secret + "\n", { append: true });
  return secret;
}

/**
 * A canary of another secret kind (issue 15: Vault tokens, secret IDs, wrapping tokens, master
 * keys served by Vault, tokens that match no pattern at all), registered for the sweep like
 * the PATs. `shape` makes it look like the real thing, so only the masking of known values —
 * not a pattern — can hide it.
 */
export async function newCanary(
  shape: "vault_token" | "uuid" | "hex32" | "plain",
): Promise<string> {
  const rand = (n: number) =>
    Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0"))
      .join("");
  const value = shape === "vault_token"
    ? `hvs.${base64(crypto.getRandomValues(new Uint8Array(18))).replace(/[+/=]/g, "x")}`
    : shape === "uuid"
    ? crypto.randomUUID()
    : shape === "hex32"
    ? rand(32)
    : `canary${rand(10)}`;
  await Deno.mkdir(OUT_DIR, { recursive: true });
  await Deno.writeTextFile(`${OUT_DIR}/canaries.txt`, value + "\n", { append: true });
  return value;
}
