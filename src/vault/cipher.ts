/**
 * Envelope encryption of PATs (DESIGN.md 7.2): AES-256-GCM under a key derived from the master
 * key with HKDF-SHA-256, a fresh 96-bit IV per encryption, the key id stored beside the
 * ciphertext, and the owning user and connection bound as additional authenticated data.
 */

import { createSecretKey, type KeyObject } from "node:crypto";

const enc = new TextEncoder();
const dec = new TextDecoder();
const SALT = enc.encode("sosvault/hkdf-salt/v1");

export interface Envelope {
  v: 1;
  /** Key id: which master key encrypted this (a fingerprint of it, never the key). */
  kid: string;
  iv: string;
  ct: string;
}

export interface VaultKey {
  kid: string;
  encrypt: CryptoKey;
  fingerprint: CryptoKey;
  /**
   * HMAC key for the known-secret windows (src/security/known_secrets.ts): a node:crypto key,
   * because that search computes many small HMACs synchronously, which WebCrypto cannot.
   */
  window: KeyObject;
  /** Secret base of the rolling prefilter of those windows (a number below 2^26). */
  windowBase: number;
  /** Signs the security event chain (security/event_chain.ts); its own HKDF label. */
  events: CryptoKey;
}

export interface Keyring {
  current: VaultKey;
  previous?: VaultKey;
}

export class DecryptError extends Error {
  constructor(
    readonly reason: "unknown_key" | "bad_envelope" | "auth_failed",
    readonly kid?: string,
  ) {
    super(`vault envelope could not be decrypted (${reason})`);
    this.name = "DecryptError";
  }
}

async function hkdf(master: CryptoKey, info: string, length: number): Promise<Uint8Array> {
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: SALT, info: enc.encode(info) },
    master,
    length * 8,
  );
  return new Uint8Array(bits);
}

export async function deriveVaultKey(masterKey: Uint8Array): Promise<VaultKey> {
  const master = await crypto.subtle.importKey("raw", masterKey as BufferSource, "HKDF", false, [
    "deriveBits",
  ]);
  const [encBytes, fpBytes, idBytes, evBytes, windowBytes] = await Promise.all([
    hkdf(master, "sosvault/pat-encryption/v1", 32),
    hkdf(master, "sosvault/pat-fingerprint/v1", 32),
    hkdf(master, "sosvault/key-id/v1", 6),
    hkdf(master, "sosvault/event-chain/v1", 32),
    hkdf(master, "sosvault/known-secret-window/v1", 32),
  ]);
  const baseBytes = await hkdf(master, "sosvault/known-secret-prefilter/v1", 4);
  const windowBase = 2 + (new DataView(baseBytes.buffer).getUint32(0) % (2 ** 26 - 16));
  const window = createSecretKey(windowBytes);
  const encrypt = await crypto.subtle.importKey("raw", encBytes as BufferSource, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
  const fingerprint = await crypto.subtle.importKey(
    "raw",
    fpBytes as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const events = await crypto.subtle.importKey(
    "raw",
    evBytes as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
  encBytes.fill(0);
  fpBytes.fill(0);
  evBytes.fill(0);
  return { kid: "k" + toHex(idBytes), encrypt, fingerprint, events, window, windowBase };
}

export async function createKeyring(current: Uint8Array, previous?: Uint8Array): Promise<Keyring> {
  return {
    current: await deriveVaultKey(current),
    previous: previous ? await deriveVaultKey(previous) : undefined,
  };
}

export function keyFor(keyring: Keyring, kid: string): VaultKey | undefined {
  if (keyring.current.kid === kid) return keyring.current;
  if (keyring.previous?.kid === kid) return keyring.previous;
  return undefined;
}

/** AAD: a ciphertext copied onto another user's or connection's record fails to decrypt. */
export function patAad(userId: string, connectionId: string): Uint8Array {
  return enc.encode(`sosvault/pat/v1\u0000${userId}\u0000${connectionId}`);
}

export async function seal(key: VaultKey, plaintext: string, aad: Uint8Array): Promise<Envelope> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: aad as BufferSource },
    key.encrypt,
    enc.encode(plaintext),
  );
  return { v: 1, kid: key.kid, iv: toBase64(iv), ct: toBase64(new Uint8Array(ct)) };
}

export async function open(keyring: Keyring, envelope: Envelope, aad: Uint8Array): Promise<string> {
  if (envelope?.v !== 1 || typeof envelope.iv !== "string" || typeof envelope.ct !== "string") {
    throw new DecryptError("bad_envelope");
  }
  const key = keyFor(keyring, envelope.kid);
  if (!key) throw new DecryptError("unknown_key", envelope.kid);
  let iv: Uint8Array, ct: Uint8Array;
  try {
    iv = fromBase64(envelope.iv);
    ct = fromBase64(envelope.ct);
  } catch {
    throw new DecryptError("bad_envelope", envelope.kid);
  }
  if (iv.length !== 12 || ct.length < 16) throw new DecryptError("bad_envelope", envelope.kid);
  try {
    const pt = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: iv as BufferSource, additionalData: aad as BufferSource },
      key.encrypt,
      ct as BufferSource,
    );
    return dec.decode(pt);
  } catch {
    throw new DecryptError("auth_failed", envelope.kid);
  }
}

/** Keyed fingerprint of a secret, to recognise a user's own PAT without storing it. */
export async function fingerprint(key: VaultKey, secret: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key.fingerprint, enc.encode(secret));
  return toHex(new Uint8Array(mac));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
