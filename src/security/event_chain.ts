/**
 * The tamper evidence of the security event log (issue 15). Each stored event carries a
 * sequence number, the id of the master key that signed it (`kid`) and a MAC:
 *
 *   chain(n) = SHA-256(chain(n-1) ‖ canonical JSON of event n without `kid` and `mac`)
 *   mac(n)   = HMAC-SHA-256(K_kid, "sosvault/event/v1" ‖ kid ‖ chain(n))
 *
 * K_kid is derived from the master key by HKDF with its own label (vault/cipher.ts). chain(n)
 * commits to every earlier event, so the MAC of event n authenticates the whole history up
 * to n: editing, deleting, reordering or inserting an event breaks the first MAC after it,
 * and nobody without the master key can mend it. The chain itself is key-independent, so a
 * key rotation re-signs events one by one without re-linking them. Every field of an event
 * takes part in the canonical JSON, so fields added later are covered without code here.
 */
import { toHex } from "../vault/cipher.ts";

const enc = new TextEncoder();

/** chain(0): where a log with no checkpoint starts. */
export const GENESIS = "0".repeat(64);

/** Fields that are not hashed into the chain: who signed it, and the signature itself. */
const UNCHAINED = new Set(["kid", "mac"]);

/**
 * JSON with object keys sorted at every depth, `undefined` members dropped (as JSON does).
 * Refuses what JSON cannot represent faithfully, so two writers never hash different texts.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === "string" || typeof value === "boolean") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError("canonical JSON: a number is not finite");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(",")}]`;
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  throw new TypeError(`canonical JSON: cannot represent a ${typeof value}`);
}

function chainedBody(record: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) if (!UNCHAINED.has(k)) out[k] = v;
  return out;
}

/** chain(n) from chain(n-1) and the stored record of event n. */
export async function nextChain(prev: string, record: object): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    enc.encode(`${prev}\u0000${canonicalJson(chainedBody(record))}`),
  );
  return toHex(new Uint8Array(digest));
}

async function hmac(key: CryptoKey, text: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(text))));
}

async function hmacEquals(key: CryptoKey, text: string, mac: unknown): Promise<boolean> {
  if (typeof mac !== "string" || !/^[0-9a-f]{64}$/.test(mac)) return false;
  const bytes = Uint8Array.from(mac.match(/../g)!.map((h) => parseInt(h, 16)));
  // WebCrypto's verify compares in constant time.
  return await crypto.subtle.verify("HMAC", key, bytes, enc.encode(text));
}

const eventText = (kid: string, chain: string) => `sosvault/event/v1\u0000${kid}\u0000${chain}`;
const markText = (label: string, kid: string, seq: number, chain: string) =>
  `sosvault/event-${label}/v1\u0000${kid}\u0000${seq}\u0000${chain}`;

export const signEvent = (key: CryptoKey, kid: string, chain: string) =>
  hmac(key, eventText(kid, chain));
export const checkEvent = (key: CryptoKey, kid: string, chain: string, mac: unknown) =>
  hmacEquals(key, eventText(kid, chain), mac);

/**
 * A signed mark on the chain: the head (last appended seq) or the checkpoint (last pruned
 * seq). Both name a seq and the chain value there, signed, so neither can be moved unseen.
 */
export interface ChainMark {
  seq: number;
  chain: string;
  kid: string;
  mac: string;
  time: string;
}

export const signMark = (
  key: CryptoKey,
  label: "head" | "checkpoint",
  m: Omit<ChainMark, "mac">,
) => hmac(key, markText(label, m.kid, m.seq, m.chain) + `\u0000${m.time}`);
export const checkMark = (key: CryptoKey, label: "head" | "checkpoint", m: ChainMark) =>
  hmacEquals(key, markText(label, m.kid, m.seq, m.chain) + `\u0000${m.time}`, m.mac);
