/**
 * Finding a user's own secrets (Jira PATs, and any other secret string a connection registers)
 * as a substring of model-controlled text, without storing or holding the secrets themselves.
 *
 * A connection registers each secret string once, as a keyed fingerprint of the whole string
 * together with its length and the smallest alphabet it is written in. A search slides a window
 * of each registered length over the runs of that alphabet in the text (its raw form, its
 * %-decoded form, and the base64 decodings of its base64 runs at every alignment). Each window
 * first meets a rolling polynomial hash with a secret base (O(1) per window: a prefilter only,
 * false positives about 1 in 2^26), and only prefilter matches are confirmed with the keyed
 * HMAC, which alone decides. The work is bounded: at most {@linkcode KnownSecrets.MAX_WINDOWS}
 * windows and {@linkcode KnownSecrets.MAX_CONFIRMS} HMACs per search; running out is reported,
 * and callers fail closed.
 *
 * Nothing here returns, logs or throws a secret or a window.
 *
 * @module
 */
import { createHmac, createSecretKey, randomBytes } from "node:crypto";
import type { KeyObject } from "node:crypto";
import type { Keyring } from "../vault/cipher.ts";
import { keyFor } from "../vault/cipher.ts";

/**
 * How one secret string of a connection is remembered: never the string, only its length, the
 * alphabet its windows are cut from, and a keyed fingerprint. A connection may register several
 * (a Data Center PAT; a Cloud API token, `email:token` and its base64): each is one entry.
 */
export interface KnownSecretFingerprint {
  length: number;
  alphabet: Alphabet;
  /** Rolling-hash prefilter value (secret base, so it says nothing without the key). */
  pre: number;
  fp: string;
}

/** The fingerprints of one connection and the id of the key that made them. */
export interface KnownSecretSet {
  kid: string;
  secrets: readonly KnownSecretFingerprint[];
}

export type Alphabet = "base64" | "base64url" | "printable";

/** Runs of each alphabet; "printable" is what a token may contain (checkPatFormat). */
const RUNS: Readonly<Record<Alphabet, RegExp>> = {
  base64: /[A-Za-z0-9+/=]+/g,
  base64url: /[A-Za-z0-9_=\-]+/g,
  printable: /[\x21-\x7e]+/g,
};
const SHAPES: Readonly<Record<Alphabet, RegExp>> = {
  base64: /^[A-Za-z0-9+/=]+$/,
  base64url: /^[A-Za-z0-9_=\-]+$/,
  printable: /^[\x21-\x7e]+$/,
};
/** Shorter secrets would make windows of ordinary words; longer ones are not tokens. */
const MIN_LENGTH = 16;
const MAX_LENGTH = 1024;
/** Characters of one text that are searched (as the pattern scan, SCAN_LIMITS). */
const MAX_TEXT = 64 * 1024;

export interface SearchResult {
  found: boolean;
  /** The window budget ran out before the text was fully searched: fail closed. */
  exhausted: boolean;
  /** Windows fingerprinted (for tests and bounds). */
  windows: number;
}

/** Fingerprints of one key, length and alphabet: one sliding window serves them all. */
interface Group {
  key: KeyObject;
  base: number;
  /** base^(length-1) mod P, to drop the leaving character. */
  top: number;
  length: number;
  alphabet: Alphabet;
  pres: Set<number>;
  fps: Set<string>;
}

export class KnownSecrets {
  /** Windows fingerprinted per search, over every variant and length. */
  static readonly MAX_WINDOWS = 4_000_000;
  /** HMAC confirmations per search (prefilter matches). */
  static readonly MAX_CONFIRMS = 256;

  readonly #groups: Group[] = [];

  /**
   * Prepared once per check for one user: the sets whose key is no longer in the keyring are
   * skipped (they cannot be recomputed, and such a connection cannot be used either).
   */
  constructor(keyring: Keyring, sets: readonly KnownSecretSet[]) {
    const byGroup = new Map<string, Group>();
    for (const set of sets) {
      const vaultKey = keyFor(keyring, set.kid);
      if (!vaultKey) continue;
      const { window: key, windowBase: base } = vaultKey;
      for (const s of set.secrets) {
        const id = `${set.kid}\u0000${s.length}\u0000${s.alphabet}`;
        let group = byGroup.get(id);
        if (!group) {
          group = {
            key,
            base,
            top: power(base, s.length - 1),
            length: s.length,
            alphabet: s.alphabet,
            pres: new Set(),
            fps: new Set(),
          };
          byGroup.set(id, group);
          this.#groups.push(group);
        }
        group.pres.add(s.pre);
        group.fps.add(s.fp);
      }
    }
  }

  /** Fingerprints to register for a connection's secrets, under `key` (the current one). */
  static fingerprint(
    key: { window: KeyObject; windowBase: number },
    secrets: readonly string[],
  ): KnownSecretFingerprint[] {
    const out: KnownSecretFingerprint[] = [];
    for (const secret of secrets) {
      if (secret.length < MIN_LENGTH || secret.length > MAX_LENGTH) continue;
      const alphabet = (["base64", "base64url", "printable"] as const).find((a) =>
        SHAPES[a].test(secret)
      );
      if (!alphabet) continue;
      out.push({
        length: secret.length,
        alphabet,
        pre: rolling(secret, 0, secret.length, key.windowBase),
        fp: mac(key.window, secret),
      });
    }
    return out;
  }

  /**
   * A matcher for secrets held in memory right now (a decrypted PAT about to be sent), under
   * a throw-away key: the same search, with nothing stored.
   */
  static forSecrets(secrets: readonly string[]): KnownSecrets {
    const kid = "ephemeral";
    const window = createSecretKey(randomBytes(32));
    const windowBase = 2 + (randomBytes(4).readUInt32BE(0) % (P - 16));
    const ring = { current: { kid, window, windowBase } } as unknown as Keyring;
    const fps = KnownSecrets.fingerprint({ window, windowBase }, secrets);
    return new KnownSecrets(ring, [{ kid, secrets: fps }]);
  }

  get empty(): boolean {
    return this.#groups.length === 0;
  }

  /**
   * Security: whether `text` contains one of the registered secrets anywhere, whatever
   * surrounds it: `-`, `_`, letters, digits, %-encoding, or base64 of `user:secret`.
   */
  search(text: string): SearchResult {
    const result: SearchResult = { found: false, exhausted: false, windows: 0 };
    if (this.#groups.length === 0) return result;
    const variants = searchVariants(String(text).slice(0, MAX_TEXT));
    let confirms = 0;
    for (const group of this.#groups) {
      const { length, base, top } = group;
      for (const variant of variants) {
        for (const { 0: run } of variant.matchAll(RUNS[group.alphabet])) {
          if (run.length < length) continue;
          let h = rolling(run, 0, length, base);
          for (let i = 0;; i++) {
            if (++result.windows > KnownSecrets.MAX_WINDOWS) {
              result.exhausted = true;
              return result;
            }
            if (group.pres.has(h)) {
              if (++confirms > KnownSecrets.MAX_CONFIRMS) {
                result.exhausted = true;
                return result;
              }
              if (group.fps.has(mac(group.key, run.slice(i, i + length)))) {
                result.found = true;
                return result;
              }
            }
            if (i + length >= run.length) break;
            // Drop run[i], take run[i + length]; every product stays below 2^52.
            h = (h - mulMod(run.charCodeAt(i), top) + P) % P;
            h = (mulMod(h, base) + run.charCodeAt(i + length)) % P;
          }
        }
      }
    }
    return result;
  }
}

/** Prime modulus of the prefilter, below 2^26 so products of two residues fit a double. */
const P = 67_108_859;

function mulMod(a: number, b: number): number {
  return (a * b) % P;
}

function power(base: number, exp: number): number {
  let out = 1;
  for (let i = 0; i < exp; i++) out = mulMod(out, base);
  return out;
}

/** Polynomial hash of text[start, start+length) in base `base` modulo P. */
function rolling(text: string, start: number, length: number, base: number): number {
  let h = 0;
  for (let i = start; i < start + length; i++) h = (mulMod(h, base) + text.charCodeAt(i)) % P;
  return h;
}

function mac(key: KeyObject, text: string): string {
  return createHmac("sha256", key).update(text, "utf8").digest("base64url");
}

const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
const BASE64_RUN = /[A-Za-z0-9+/_\-]{8,}/g;
const B64: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < a.length; i++) t[a.charCodeAt(i)] = i;
  t[45] = 62; // "-"
  t[95] = 63; // "_"
  return t;
})();

/**
 * The text, its %-decoded form, and every base64 run decoded from each of the four character
 * alignments (one of them is the alignment of a base64 value embedded after other letters),
 * as Latin-1 so each byte is one character.
 */
function searchVariants(text: string): string[] {
  const out = [text];
  if (text.includes("%")) {
    out.push(text.replace(PERCENT_RUN, (run) => {
      let s = "";
      for (let i = 0; i < run.length; i += 3) {
        s += String.fromCharCode(parseInt(run.slice(i + 1, i + 3), 16));
      }
      return s;
    }));
  }
  for (const source of [...out]) {
    for (const [run] of source.matchAll(BASE64_RUN)) {
      for (let offset = 0; offset < 4; offset++) out.push(decodeLoose(run, offset));
    }
  }
  return out;
}

/** Decodes 4-character groups from `offset`; a last group of 2 or 3 gives its 1 or 2 bytes. */
function decodeLoose(run: string, offset: number): string {
  const bytes: number[] = [];
  for (let i = offset; i + 2 <= run.length; i += 4) {
    const left = Math.min(4, run.length - i);
    let n = 0;
    for (let k = 0; k < 4; k++) n = (n << 6) | (k < left ? B64[run.charCodeAt(i + k)] : 0);
    bytes.push((n >> 16) & 0xff);
    if (left >= 3) bytes.push((n >> 8) & 0xff);
    if (left === 4) bytes.push(n & 0xff);
  }
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.slice(i, i + 8192));
  }
  return s;
}
