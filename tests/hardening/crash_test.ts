/**
 * Crash safety (SECURITY_TESTS T8, bounded; key-rotation crashes are tested with rotate-key):
 * `sosvault serve` runs as a child process and is killed with SIGKILL in the middle of
 * concurrent connect and revoke loops, then restarted on the same KV file. After every kill the
 * vault is read straight from KV and must be consistent (see `vaultViolations`): no connected
 * record without its ciphertext, no ciphertext without a connected record, every secret
 * decrypting under the current key. Every answered connect is still there and every answered
 * revoke still holds, read from KV and through the API.
 */
import assert from "node:assert/strict";
import { freshDir } from "../helpers/paths.ts";
import { serveProcess } from "../helpers/process.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { kvKeys } from "../../src/kv_keys.ts";
import type { ConnectionRecord } from "../../src/connections/store.ts";
import { startWorld } from "../helpers/world.ts";
import { addUsersDirect, childEnv, readVault, vaultViolations } from "./_helpers.ts";

const KILLS = 8;
const USERS = ["ann", "ben", "cyd", "dee"];
const WORKERS_PER_USER = 2;

/** A small seeded generator, so a failing run names the seed that reproduces its choices. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test(`SIGKILL in the middle of connect and revoke loops, ${KILLS} times: after each restart the vault is consistent and every answered write holds`, async () => {
  const seed = crypto.getRandomValues(new Uint32Array(1))[0];
  const random = prng(seed);
  const dir = await freshDir("crash");
  const env = childEnv(dir);
  const tokens = await addUsersDirect(env.SOSVAULT_KV_PATH, USERS);
  const pats: Record<string, string> = {};
  const jira = await startFakeJira();
  for (const u of USERS) {
    pats[u] = await newCanaryPat();
    jira.jira.addUser({ name: `${u}.jira`, displayName: u });
    jira.jira.addPat(`${u}.jira`, pats[u]);
  }
  /** What a server answered, so must survive any later crash. */
  const created = new Map<string, string>();
  const revoked = new Set<string>();
  const revokeSent = new Set<string>();
  const open = (u: string) =>
    [...created].filter(([id, owner]) => owner === u && !revoked.has(id)).map(([id]) => id);
  let interrupted = 0;

  try {
    for (let kill = 0; kill < KILLS; kill++) {
      const server = await serveProcess(dir, env);
      const killAfter = 8 + Math.floor(random() * 32);
      let done = 0;
      let killed = false;
      const api = (method: string, path: string, user: string, body?: unknown) =>
        fetch(server.url + path, {
          method,
          headers: {
            authorization: `Bearer ${tokens[user]}`,
            ...(body ? { "content-type": "application/json" } : {}),
          },
          body: body ? JSON.stringify(body) : undefined,
        });
      const worker = async (user: string) => {
        while (!killed) {
          const ids = open(user);
          const revoking = ids.length > 0 && random() < 0.45;
          const id = revoking ? ids[Math.floor(random() * ids.length)] : "";
          // A revoke cut by the kill may still have committed: its outcome is unknown.
          if (revoking) revokeSent.add(id);
          try {
            const res = revoking
              ? await api("DELETE", `/api/jira/connections/${id}`, user)
              : await api("POST", "/api/jira/connections", user, {
                base_url: jira.url,
                pat: pats[user],
              });
            const body = await res.json();
            if (revoking) {
              assert.equal(res.status, 200, JSON.stringify(body));
              revoked.add(id);
            } else {
              assert.equal(res.status, 201, JSON.stringify(body));
              created.set(body.connection_id, user);
            }
          } catch (err) {
            // Only a request cut by the kill may fail; its outcome is unknown, by design.
            if (!killed) throw err;
            interrupted++;
            return;
          }
          if (++done >= killAfter && !killed) {
            killed = true;
            // Security: the other workers' requests are in flight at this moment.
            server.child.kill("SIGKILL");
          }
        }
      };
      await Promise.all(
        USERS.flatMap((u) => Array.from({ length: WORKERS_PER_USER }, () => u)).map(worker),
      );
      await server.stop();

      const kv = await Deno.openKv(env.SOSVAULT_KV_PATH);
      try {
        const where = `after kill ${kill + 1} (seed ${seed})`;
        assert.deepEqual(
          await vaultViolations(kv, env.TOKEN_VAULT_MASTER_KEY, (u) => new Set([pats[u]])),
          [],
          where,
        );
        const { records, envelopes } = await readVault(kv);
        for (const [id, user] of created) {
          const r = records.get(id);
          assert.ok(r, `${where}: an answered connect is gone`);
          assert.equal(r.user, user);
          if (revoked.has(id)) assert.equal(r.status, "revoked", `${where}: a revoke was undone`);
        }
        // At rest, the same PAT sealed many times never gives the same IV or ciphertext (T2).
        const ivs = [...envelopes.values()].map((e) => e.iv);
        const cts = [...envelopes.values()].map((e) => e.ct);
        assert.equal(new Set(ivs).size, ivs.length, `${where}: an IV was reused`);
        assert.equal(new Set(cts).size, cts.length, `${where}: a ciphertext repeats`);
        for (const id of revoked) {
          const secret = await kv.get(kvKeys.secret(id));
          assert.equal(secret.versionstamp, null, `${where}: a revoked ciphertext survived`);
        }
      } finally {
        kv.close();
      }
    }

    // After the last crash, a clean start serves exactly what KV says.
    const server = await serveProcess(dir, env);
    try {
      assert.ok(created.size >= KILLS, `only ${created.size} connects were answered`);
      assert.ok(revoked.size >= 1, "no revoke was answered");
      for (const [id, user] of created) {
        const res = await fetch(`${server.url}/api/jira/connections/${id}?verify=1`, {
          headers: { authorization: `Bearer ${tokens[user]}` },
        });
        const body = await res.json();
        if (revoked.has(id)) {
          assert.equal(res.status, 409, `a revoked connection was usable after a crash`);
          assert.equal(body.error.code, "connection_revoked");
        } else {
          assert.ok([200, 409].includes(res.status), JSON.stringify(body));
        }
      }
      const kv = await Deno.openKv(env.SOSVAULT_KV_PATH);
      try {
        const records = (await readVault(kv)).records;
        const connected = [...records.values()].filter((r: ConnectionRecord) =>
          r.status === "connected"
        );
        // Unanswered connects may or may not have landed; answered ones all did.
        assert.ok(
          connected.length >= [...created.keys()].filter((id) => !revokeSent.has(id)).length,
        );
      } finally {
        kv.close();
      }
    } finally {
      await server.stop();
    }
    assert.ok(interrupted >= 1, "no kill landed while requests were in flight");
  } finally {
    await jira.close();
  }
});

Deno.test("the vault checker itself finds a connected record without ciphertext, an orphan ciphertext and a foreign envelope", async () => {
  const w = await startWorld({ env: { SOSVAULT_RATE_CONNECT: "0/60" } });
  try {
    const kv = w.server.services.kv;
    const key = w.server.env.TOKEN_VAULT_MASTER_KEY!;
    const patsOf = (u: string) => new Set([u === "alice" ? w.alice.pat : w.bob.pat]);
    const [a1, a2, b1] = [
      await w.connect(w.alice),
      await w.connect(w.alice),
      await w.connect(w.bob),
    ];
    assert.deepEqual(await vaultViolations(kv, key, patsOf), []);
    const a2Envelope = (await kv.get(kvKeys.secret(a2))).value;
    await kv.delete(kvKeys.secret(a1));
    await kv.set(kvKeys.secret("jc_orphan"), a2Envelope);
    await kv.set(kvKeys.secret(b1), a2Envelope);
    const found = await vaultViolations(kv, key, patsOf);
    assert.ok(found.some((v) => v.startsWith(`${a1}: connected without`)), found.join("; "));
    assert.ok(found.some((v) => v.startsWith("jc_orphan: ciphertext without a record")));
    assert.ok(found.some((v) => v.startsWith(`${b1}: ciphertext does not decrypt`)));
  } finally {
    await w.close();
  }
});
