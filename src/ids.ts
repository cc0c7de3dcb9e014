/** Opaque identifiers: a short prefix that says what it is, then random base64url. */

import { Buffer } from "node:buffer";

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

export function randomId(prefix: string, bytes: number): string {
  return prefix + base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** `jc_` + 192 random bits (the contract asks for at least 128). */
export const newConnectionId = () => randomId("jc_", 24);
export const CONNECTION_ID = /^jc_[A-Za-z0-9_-]{22,64}$/;
export const newRequestId = () => randomId("req_", 12);
export const newUserToken = () => randomId("svt_", 32);
export const newConnectCode = () => randomId("", 24);

/** Time-ordered id for event keys: sortable by time, unique within a millisecond. */
export function timeOrderedId(at: Date): string {
  return at.getTime().toString(36).padStart(10, "0") + randomId("", 6);
}
