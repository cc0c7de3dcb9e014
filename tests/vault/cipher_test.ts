import assert from "node:assert/strict";
import {
  createKeyring,
  DecryptError,
  type Envelope,
  fingerprint,
  fromBase64,
  open,
  patAad,
  seal,
  toBase64,
} from "../../src/vault/cipher.ts";

const k1 = crypto.getRandomValues(new Uint8Array(32));
const k2 = crypto.getRandomValues(new Uint8Array(32));
const PAT = "MTIzNDU2Nzg5MDEyOr6Ck1pbTC2Ui3r7ZjvRGv+lV0Yx";

async function rejects(p: Promise<unknown>, reason: DecryptError["reason"]) {
  await assert.rejects(p, (err) => err instanceof DecryptError && err.reason === reason);
}

Deno.test("seal() then open() returns the PAT, with a fresh IV every time", async () => {
  const ring = await createKeyring(k1);
  const a = await seal(ring.current, PAT, patAad("alice", "jc_1"));
  const b = await seal(ring.current, PAT, patAad("alice", "jc_1"));
  assert.notEqual(a.iv, b.iv);
  assert.notEqual(a.ct, b.ct);
  assert.equal(a.kid, ring.current.kid);
  assert.equal(await open(ring, a, patAad("alice", "jc_1")), PAT);
  assert.ok(!JSON.stringify(a).includes(PAT));
});

Deno.test("open() refuses a ciphertext moved to another user or connection (AAD)", async () => {
  const ring = await createKeyring(k1);
  const env = await seal(ring.current, PAT, patAad("alice", "jc_1"));
  await rejects(open(ring, env, patAad("bob", "jc_1")), "auth_failed");
  await rejects(open(ring, env, patAad("alice", "jc_2")), "auth_failed");
});

Deno.test("open() fails closed when any bit of IV, ciphertext or tag is flipped", async () => {
  const ring = await createKeyring(k1);
  const aad = patAad("alice", "jc_1");
  const env = await seal(ring.current, PAT, aad);
  for (const field of ["iv", "ct"] as const) {
    const bytes = fromBase64(env[field]);
    for (let bit = 0; bit < bytes.length * 8; bit += 7) {
      const flipped = bytes.slice();
      flipped[bit >> 3] ^= 1 << (bit & 7);
      await rejects(open(ring, { ...env, [field]: toBase64(flipped) }, aad), "auth_failed");
    }
  }
  await rejects(open(ring, { ...env, kid: "k000000000000" }, aad), "unknown_key");
  await rejects(open(ring, { ...env, v: 2 } as unknown as Envelope, aad), "bad_envelope");
  await rejects(open(ring, { ...env, iv: "!!" }, aad), "bad_envelope");
});

Deno.test("a keyring opens envelopes of the previous key and seals with the current one", async () => {
  const old = await createKeyring(k1);
  const env = await seal(old.current, PAT, patAad("u", "c"));
  const rotated = await createKeyring(k2, k1);
  assert.equal(await open(rotated, env, patAad("u", "c")), PAT);
  assert.notEqual(rotated.current.kid, old.current.kid);
  const fresh = await seal(rotated.current, PAT, patAad("u", "c"));
  assert.equal(fresh.kid, rotated.current.kid);
  await rejects(open(await createKeyring(k2), env, patAad("u", "c")), "unknown_key");
});

Deno.test("fingerprint() is keyed: same PAT, different master keys, different fingerprints", async () => {
  const a = await createKeyring(k1);
  const b = await createKeyring(k2);
  assert.equal(await fingerprint(a.current, PAT), await fingerprint(a.current, PAT));
  assert.notEqual(await fingerprint(a.current, PAT), await fingerprint(b.current, PAT));
  assert.match(await fingerprint(a.current, PAT), /^[0-9a-f]{64}$/);
});
