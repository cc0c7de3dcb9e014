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
