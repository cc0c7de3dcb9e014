/** Opaque identifiers: a short prefix that says what it is, then random base64url. */

import { Buffer } from "node:buffer";

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

export function randomId(prefix: string, bytes: number): string {
  return prefix + base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/**
 * Request ids are made on every request and are not secrets (they are in every log line and
 * error), so they come from a pool of random bytes filled a page at a time: one call into the
 * CSPRNG per 341 ids instead of one per id. Tokens and codes never use it, so no future
 * secret ever sits in memory before it is made.
 */
const POOL_BYTES = 4096;
const REQUEST_ID_BYTES = 12;
let pool = new Uint8Array(0);
let pooled = 0;

function pooledRandom(bytes: number): Uint8Array {
  if (pooled + bytes > pool.length) {
    pool = crypto.getRandomValues(new Uint8Array(POOL_BYTES));
    pooled = 0;
  }
  return pool.subarray(pooled, pooled += bytes);
}

/** `jc_` + 192 random bits (the contract asks for at least 128). */
export const newConnectionId = () => randomId("jc_", 24);
export const CONNECTION_ID = /^jc_[A-Za-z0-9_-]{22,64}$/;
export const newRequestId = () => "req_" + base64url(pooledRandom(REQUEST_ID_BYTES));
export const newUserToken = () => randomId("svt_", 32);
export const newConnectCode = () => randomId("", 24);

/** Time-ordered id for event keys: sortable by time, unique within a millisecond. */
export function timeOrderedId(at: Date): string {
  return at.getTime().toString(36).padStart(10, "0") + randomId("", 6);
}
