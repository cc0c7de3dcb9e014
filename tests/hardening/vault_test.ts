/**
 * The vault at rest (SECURITY_TESTS T2, T4, T5, T6), end to end on the real server and KV file:
 * the file on disk holds no form of a PAT; every tampered envelope — a flipped bit anywhere,
 * another key id or version, another record's ciphertext, a broken shape — fails closed with a
 * clear error and a decrypt_failed event and never reaches Jira; and a tampered sentinel stops
 * `sosvault serve` before it listens.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { freshDir } from "../helpers/paths.ts";
import { runSosvault } from "../helpers/process.ts";
import { kvKeys } from "../../src/kv_keys.ts";
import { type Envelope, fromBase64, toBase64 } from "../../src/vault/cipher.ts";
import { assertNoLeak, childEnv, needlesOf, readVault } from "./_helpers.ts";

function flip(b64: string, bit: number): string {
  const bytes = fromBase64(b64);
  bytes[(bit >> 3) % bytes.length] ^= 1 << (bit & 7);
  return toBase64(bytes);
}

Deno.test("the KV file on disk holds every PAT only as an envelope under the current key: no form or piece of it in its bytes", async () => {
  const w = await startWorld({ env: { SOSVAULT_RATE_CONNECT: "0/60" } });
  try {
    const ids = [await w.connect(w.alice), await w.connect(w.alice), await w.connect(w.bob)];
    const { envelopes } = await readVault(w.server.services.kv);
    const kid = w.server.services.keyring.current.kid;
    for (const id of ids) {
      const e = envelopes.get(id)!;
      assert.deepEqual(Object.keys(e).sort(), ["ct", "iv", "kid", "v"]);
      assert.equal(e.kid, kid);
      assert.equal(fromBase64(e.iv).length, 12);
    }
    assert.notEqual(envelopes.get(ids[0])!.ct, envelopes.get(ids[1])!.ct, "same PAT, new IV");
    const needles = needlesOf([w.alice.pat, w.bob.pat]);
    const kvPath = w.server.env.SOSVAULT_KV_PATH!;
    for (const suffix of ["", "-wal", "-shm"]) {
      const bytes = await Deno.readFile(kvPath + suffix).catch(() => new Uint8Array());
      assertNoLeak(new TextDecoder("latin1").decode(bytes), needles, `sosvault.kv${suffix}`);
    }
  } finally {
    await w.close();
  }
});

Deno.test("every tampered envelope fails closed: a clear error, one decrypt_failed event each, and no Jira call", async () => {
  const w = await startWorld({
    env: { SOSVAULT_RATE_CONNECT: "0/60", SOSVAULT_RATE_TOOLS: "0/60" },
  });
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  try {
    const kv = w.server.services.kv;
    const id = await w.connect(w.alice);
    const mine2 = await w.connect(w.alice);
    const bobs = await w.connect(w.bob);
    const good = (await kv.get<Envelope>(kvKeys.secret(id))).value!;
    const other = (await kv.get<Envelope>(kvKeys.secret(mine2))).value!;
    const bobEnvelope = (await kv.get<Envelope>(kvKeys.secret(bobs))).value!;
    const ctBits = fromBase64(good.ct).length * 8;
    const cases: Array<[string, unknown]> = [
      ["a bit of the IV", { ...good, iv: flip(good.iv, 5) }],
      ["the first bit of the ciphertext", { ...good, ct: flip(good.ct, 0) }],
      ["a bit in the middle of the ciphertext", { ...good, ct: flip(good.ct, ctBits >> 2) }],
      ["a bit of the tag", { ...good, ct: flip(good.ct, ctBits - 3) }],
      ["the tag cut off", { ...good, ct: toBase64(fromBase64(good.ct).slice(0, -16)) }],
      ["another key id", { ...good, kid: "k000000000000" }],
      ["another version", { ...good, v: 2 }],
      ["no IV", { v: 1, kid: good.kid, ct: good.ct }],
      ["not base64", { ...good, ct: "!!!" }],
      ["a string instead of an envelope", "ciphertext"],
      ["another connection's envelope (same user)", other],
      ["another user's envelope", bobEnvelope],
    ];
    const myselfCalls = () => w.jira.jira.requests.filter((r) => r.path.endsWith("/myself")).length;
    const before = w.jira.jira.requests.length;
    const myself = myselfCalls();
    for (const [name, envelope] of cases) {
      await kv.set(kvKeys.secret(id), envelope);
      const verify = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
        token: w.alice.token,
      });
      assert.equal(verify.status, 500, name);
      assert.equal(verify.body.error.code, "unexpected_error", name);
      assert.match(verify.body.error.message, /cannot be decrypted/, name);
      const list = toolError(
        await mcp.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-1" }),
      );
      assert.match(list.message, /cannot be decrypted/, name);
    }
    assert.equal(myselfCalls(), myself, "no Jira call with a tampered envelope");
    assert.equal(w.jira.jira.requests.length, before);
    const failed = (await w.server.services.events.list({ type: "decrypt_failed", limit: 1000 }))
      .filter((e) => e.connection_id === id);
    assert.equal(failed.length, cases.length * 2, "one decrypt_failed per use");
    assert.ok(!w.server.logs.some((l) => l.includes(good.ct)), "no ciphertext in the log");

    await kv.set(kvKeys.secret(id), good);
    const restored = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: w.alice.token,
    });
    assert.equal(restored.status, 200, "the untouched envelope still works");
  } finally {
    await mcp.close();
    await w.close();
  }
});

Deno.test("a tampered vault sentinel stops sosvault serve before it listens (exit 78)", async () => {
  const dir = await freshDir("sentinel");
  const env = childEnv(dir);
  assert.equal((await runSosvault(dir, ["users", "add", "alice"], env)).code, 0);
  const kv = await Deno.openKv(env.SOSVAULT_KV_PATH);
  try {
    const sentinel = (await kv.get<Envelope>(kvKeys.vaultSentinel())).value!;
    await kv.set(kvKeys.vaultSentinel(), { ...sentinel, ct: flip(sentinel.ct, 9) });
  } finally {
    kv.close();
  }
  const r = await runSosvault(dir, ["serve"], { ...env, SOSVAULT_LISTEN: "127.0.0.1:0" });
  assert.equal(r.code, 78);
  assert.match(r.stderr, /sentinel does not decrypt/);
  assert.doesNotMatch(r.stdout + r.stderr, /"msg":"listening"/);
  assert.ok(!r.stderr.includes(env.TOKEN_VAULT_MASTER_KEY), "the key is never printed");
});
