/** The known-secret substring search (issue 14 item 1), on its own. */
import assert from "node:assert/strict";
import { KnownSecrets } from "../../src/security/known_secrets.ts";
import { createKeyring } from "../../src/vault/cipher.ts";
import { makeDcPat } from "../helpers/canary.ts";
import { disguises } from "./_disguises.ts";

Deno.test("known secrets: substring search finds every registered secret of a connection, and nothing else", async () => {
  const keyring = await createKeyring(crypto.getRandomValues(new Uint8Array(32)));
  const pat = makeDcPat();
  const apiToken = "ATATT3x" + "Qw9_-".repeat(30);
  const fps = KnownSecrets.fingerprint(keyring.current, [pat, apiToken, `me@x.org:${apiToken}`]);
  assert.ok(!JSON.stringify(fps).includes(pat.slice(0, 8)), "fingerprints do not carry the secret");
  const known = new KnownSecrets(keyring, [{ kid: keyring.current.kid, secrets: fps }]);
  for (const [name, text] of disguises(pat)) assert.ok(known.search(text).found, name);
  assert.ok(known.search(`see ${apiToken}!`).found, "a second secret of the same connection");
  assert.ok(known.search(btoa(`me@x.org:${apiToken}`)).found, "email:token in base64");
  for (const ordinary of ["notes-2026.txt", makeDcPat(), "SUP-123", "a".repeat(5000)]) {
    assert.equal(known.search(ordinary).found, false, ordinary.slice(0, 20));
  }
  // Bounded: a long base64-alphabet blob costs a fixed budget, and running out fails closed.
  const blob = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(60_000))));
  const big = known.search(blob);
  assert.equal(big.found, false);
  assert.ok(big.windows > 0);
  assert.ok(big.windows <= KnownSecrets.MAX_WINDOWS);
});
