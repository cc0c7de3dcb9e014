/**
 * Key rotation (SECURITY_TESTS T7, T8): `sosvault rotate-key` re-encrypts every stored PAT from
 * TOKEN_VAULT_MASTER_KEY_PREVIOUS into TOKEN_VAULT_MASTER_KEY, record by record, so that it can
 * be interrupted (even by SIGKILL) and run again, changes nothing once done, and never gives a
 * revoked connection its ciphertext back. Real servers, real KV on disk, the fake Jira on HTTPS,
 * and the real `main.ts` as a child process.
 */
import { rotationDeps } from "../../src/cli/rotate_key.ts";
import assert from "node:assert/strict";
import { startWorld, type World } from "../helpers/world.ts";
import { randomMasterKey, startServer, type TestServer } from "../helpers/server.ts";
import { TestClock } from "../helpers/clock.ts";
import { runSosvault, sosvaultArgs } from "../helpers/process.ts";
import { ConfigError, parseConfig, parseMasterKey } from "../../src/config.ts";
import { openServices } from "../../src/runtime.ts";
import { kvKeys } from "../../src/kv_keys.ts";
import { type ConnectionRecord, ConnectionStore } from "../../src/connections/store.ts";
import {
  createKeyring,
  type Envelope,
  fingerprint,
  type Keyring,
  open,
  patAad,
  seal,
} from "../../src/vault/cipher.ts";
import { rotateKey } from "../../src/vault/rotate.ts";

const NO_LIMIT = { SOSVAULT_RATE_CONNECT: "0/60", SOSVAULT_RATE_TOOLS: "0/60" };
type Who = { token: string; pat: string };

function keyring(current: string, previous?: string): Promise<Keyring> {
  return createKeyring(parseMasterKey(current)!, previous ? parseMasterKey(previous)! : undefined);
}

async function connect(server: TestServer, who: Who, baseUrl: string): Promise<string> {
  const res = await server.call("POST", "/api/jira/connections", {
    token: who.token,
    json: { base_url: baseUrl, pat: who.pat },
  });
  assert.equal(res.status, 201, res.text);
  return res.body.connection_id;
}

async function revoke(server: TestServer, who: Who, id: string) {
  const res = await server.call("DELETE", `/api/jira/connections/${id}`, { token: who.token });
  assert.equal(res.status, 200, res.text);
}

interface Snapshot {
  records: Map<string, Deno.KvEntry<ConnectionRecord>>;
  secrets: Map<string, Deno.KvEntry<Envelope>>;
  sentinel: Deno.KvEntryMaybe<Envelope>;
}

async function snapshot(kv: Deno.Kv): Promise<Snapshot> {
  const records = new Map<string, Deno.KvEntry<ConnectionRecord>>();
  for await (const e of kv.list<ConnectionRecord>({ prefix: kvKeys.allConnections() })) {
    records.set(String(e.key[1]), e);
  }
  const secrets = new Map<string, Deno.KvEntry<Envelope>>();
  for await (const e of kv.list<Envelope>({ prefix: kvKeys.allSecrets() })) {
    secrets.set(String(e.key[1]), e);
  }
  return { records, secrets, sentinel: await kv.get<Envelope>(kvKeys.vaultSentinel()) };
}

async function withKv<T>(path: string, f: (kv: Deno.Kv) => Promise<T>): Promise<T> {
  const kv = await Deno.openKv(path);
  try {
    return await f(kv);
  } finally {
    kv.close();
  }
}

/**
 * The invariants a rotation keeps at every instant: no connection lost, every connected one
 * decrypts (under `ring`) to its owner's PAT, and no ciphertext exists without a connected
 * record (so a revoked connection never has one).
 */
async function assertInvariants(
  snap: Snapshot,
  ring: Keyring,
  expected: { ids: Set<string>; revoked: Set<string>; patOf: (user: string) => string },
) {
  assert.deepEqual(new Set(snap.records.keys()), expected.ids, "no connection lost or added");
  for (const [id, secret] of snap.secrets) {
    assert.equal(snap.records.get(id)?.value.status, "connected", `ciphertext of ${id} orphaned`);
    const r = snap.records.get(id)!.value;
    assert.equal(await open(ring, secret.value, patAad(r.user, id)), expected.patOf(r.user));
  }
  for (const [id, r] of snap.records) {
    if (expected.revoked.has(id)) {
      assert.equal(r.value.status, "revoked", `${id} stays revoked`);
      assert.ok(!snap.secrets.has(id), `revoked ${id} has no ciphertext`);
    } else if (r.value.status === "connected") {
      assert.ok(snap.secrets.has(id), `connected ${id} keeps its ciphertext`);
    }
  }
}

/** Opens the vault as a server would at start (the sentinel check), then closes it. */
async function openVault(v: { dir: string; kvPath: string }, env: Record<string, string>) {
  const s = await openServices(
    parseConfig({
      SOSVAULT_KV_PATH: v.kvPath,
      SOSVAULT_ARTIFACT_DIR: `${v.dir}/artifacts`,
      ...env,
    }),
    { logSink: () => {} },
  );
  s.kv.close();
}

interface Vault {
  w: World;
  dir: string;
  kvPath: string;
  keyA: string;
  keyB: string;
  ids: Set<string>;
  connected: string[];
  revoked: Set<string>;
  patOf: (user: string) => string;
  whoOf: (user: string) => Who;
  /** Restarts the server on the same KV file with these keys (and the fake Jira kept). */
  restart(env: Record<string, string>, clock?: TestClock): Promise<TestServer>;
  /** Stops the server (the KV file is then free for a child process). */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/** Connections of alice and bob written under key A; one of alice's revoked. */
async function vaultUnderKeyA(counts = { alice: 3, bob: 2 }): Promise<Vault> {
  const keyA = randomMasterKey();
  const keyB = randomMasterKey();
  const w = await startWorld({ env: { TOKEN_VAULT_MASTER_KEY: keyA, ...NO_LIMIT } });
  let server: TestServer | null = w.server;
  const ids = new Set<string>();
  const connected: string[] = [];
  const revoked = new Set<string>();
  for (const [user, n] of Object.entries(counts) as ["alice" | "bob", number][]) {
    const made = await Promise.all(
      Array.from({ length: n }, () => connect(w.server, w[user], w.jira.url)),
    );
    for (const id of made) ids.add(id);
    connected.push(...made);
  }
  const gone = connected.shift()!;
  await revoke(w.server, w.alice, gone);
  revoked.add(gone);
  const dir = w.server.dir;
  const stop = async () => {
    await server?.close();
    server = null;
  };
  return {
    w,
    dir,
    kvPath: `${dir}/sosvault.kv`,
    keyA,
    keyB,
    ids,
    connected,
    revoked,
    patOf: (user) => (user === "alice" ? w.alice.pat : w.bob.pat),
    whoOf: (user) => (user === "alice" ? w.alice : w.bob),
    async restart(env, clock) {
      await stop();
      server = await startServer({ dir, clock, env: { ...NO_LIMIT, ...env } });
      return server;
    },
    stop,
    async close() {
      await stop();
      await w.jira.close();
    },
  };
}

async function assertAllVerifyWithOnlyKeyB(v: Vault) {
  const server = await v.restart({ TOKEN_VAULT_MASTER_KEY: v.keyB });
  const kidB = server.services.keyring.current.kid;
  for (const id of v.connected) {
    const owner = (await server.services.kv.get<ConnectionRecord>(kvKeys.connection(id))).value!
      .user;
    const res = await server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: v.whoOf(owner).token,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.key_version, kidB);
  }
  for (const id of v.revoked) {
    const res = await server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: v.w.alice.token,
    });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, "connection_revoked");
  }
  return server;
}

Deno.test("rotateKey() re-encrypts every PAT under the new key; with only the new key every connection verifies", async () => {
  const v = await vaultUnderKeyA();
  try {
    const before = await withKv(v.kvPath, snapshot);
    const kidA = (await keyring(v.keyA)).current.kid;
    const clock = new TestClock(Date.now());
    const server = await v.restart(
      { TOKEN_VAULT_MASTER_KEY: v.keyB, TOKEN_VAULT_MASTER_KEY_PREVIOUS: v.keyA },
      clock,
    );
    const kidB = server.services.keyring.current.kid;
    assert.notEqual(kidA, kidB);

    // Before the rotation, status names the old key; a new connection already uses the new one.
    const [first] = v.connected;
    const owner = before.records.get(first)!.value.user;
    const status = await server.call("GET", `/api/jira/connections/${first}`, {
      token: v.whoOf(owner).token,
    });
    assert.equal(status.body.key_version, kidA);
    const fresh = await connect(server, v.w.bob, v.w.jira.url);
    v.ids.add(fresh);
    v.connected.push(fresh);

    const report = await rotateKey(rotationDeps(server.services));
    assert.equal(report.rotated, 4);
    assert.equal(report.alreadyCurrent, 1);
    assert.equal(report.skipped, 1);
    assert.deepEqual(report.undecryptable, []);
    assert.equal(report.sentinelResealed, true);
    assert.equal(report.complete, true);

    // Status shows the new key version at once.
    const after = await server.call("GET", `/api/jira/connections/${first}`, {
      token: v.whoOf(owner).token,
    });
    assert.equal(after.body.key_version, kidB);

    const snap = await snapshot(server.services.kv);
    await assertInvariants(snap, await keyring(v.keyB), v);
    assert.equal(snap.sentinel.value?.kid, kidB);
    for (const [id, secret] of snap.secrets) {
      assert.equal(secret.value.kid, kidB);
      const r = snap.records.get(id)!.value;
      assert.equal(r.key_version, kidB);
      assert.equal(r.pat_fp, await fingerprint(server.services.keyring.current, v.patOf(r.user)));
      const old = before.secrets.get(id);
      if (old) {
        assert.notEqual(secret.value.ct, old.value.ct, "a new ciphertext");
        assert.notEqual(secret.value.iv, old.value.iv, "a fresh IV");
        assert.notEqual(r.pat_fp, before.records.get(id)!.value.pat_fp);
      }
    }
    const text = await Deno.readTextFile(`${v.dir}/server.log`);
    assert.ok(!text.includes(v.w.alice.pat) && !text.includes(v.w.bob.pat));

    await assertAllVerifyWithOnlyKeyB(v);
    await v.stop();
    // Security: the retired key no longer opens this vault.
    await assert.rejects(
      openVault(v, { TOKEN_VAULT_MASTER_KEY: v.keyA }),
      (err) =>
        err instanceof ConfigError && /not the key this vault was written with/.test(err.message),
    );
  } finally {
    await v.close();
  }
});

Deno.test("sosvault rotate-key: rotates, says so; run again it changes nothing and says so; without the previous key it refuses (78)", async () => {
  const v = await vaultUnderKeyA();
  try {
    await v.stop();
    const kidA = (await keyring(v.keyA)).current.kid;
    const kidB = (await keyring(v.keyB)).current.kid;
    const env = {
      SOSVAULT_KV_PATH: v.kvPath,
      TOKEN_VAULT_MASTER_KEY: v.keyB,
      TOKEN_VAULT_MASTER_KEY_PREVIOUS: v.keyA,
    };
    const first = await runSosvault(v.dir, ["rotate-key"], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      new RegExp(
        `Rotated from key ${kidA} to ${kidB}: rotated 4, already current 0, skipped \\(revoked/expired\\) 1\\.`,
      ),
    );
    assert.match(first.stdout, /TOKEN_VAULT_MASTER_KEY_PREVIOUS is no longer needed/);

    const done = await withKv(v.kvPath, snapshot);
    await assertInvariants(done, await keyring(v.keyB), v);
    const again = await runSosvault(v.dir, ["rotate-key"], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      new RegExp(
        `Nothing to rotate: every stored PAT is already under the current key ${kidB} \\(rotated 0, already current 4, skipped \\(revoked/expired\\) 1\\)\\.`,
      ),
    );
    const unchanged = await withKv(v.kvPath, snapshot);
    const stamps = (s: Snapshot) =>
      JSON.stringify([
        [...s.records].map(([id, e]) => [id, e.versionstamp]),
        [...s.secrets].map(([id, e]) => [id, e.versionstamp]),
        s.sentinel.versionstamp,
      ]);
    assert.equal(stamps(unchanged), stamps(done), "a second run writes nothing");

    const refused = await runSosvault(v.dir, ["rotate-key"], {
      SOSVAULT_KV_PATH: v.kvPath,
      TOKEN_VAULT_MASTER_KEY: v.keyB,
    });
    assert.equal(refused.code, 78);
    assert.match(refused.stderr, /TOKEN_VAULT_MASTER_KEY_PREVIOUS is not set/);
    const same = await runSosvault(v.dir, ["rotate-key"], {
      ...env,
      TOKEN_VAULT_MASTER_KEY_PREVIOUS: v.keyB,
    });
    assert.equal(same.code, 78);
    assert.match(same.stderr, /TOKEN_VAULT_MASTER_KEY_PREVIOUS is the same key/);
    assert.equal((await runSosvault(v.dir, ["rotate-key", "now"], env)).code, 64);

    for (const r of [first, again, refused, same]) {
      const out = r.stdout + r.stderr;
      for (const secret of [v.keyA, v.keyB, v.w.alice.pat, v.w.bob.pat]) {
        assert.ok(!out.includes(secret), "no key or PAT in the output");
      }
    }
    await assertAllVerifyWithOnlyKeyB(v);
  } finally {
    await v.close();
  }
});

Deno.test("rotate-key fails (exit 1) naming only the ids of envelopes that decrypt under neither key, and finishes once they are revoked", async () => {
  const v = await vaultUnderKeyA();
  try {
    const [tampered, foreign] = v.connected;
    const keyC = await keyring(randomMasterKey());
    const server = await v.restart({ TOKEN_VAULT_MASTER_KEY: v.keyA });
    const kv = server.services.kv;
    const recs = await snapshot(kv);
    // One envelope with a flipped ciphertext bit; one written under a third key.
    const t = recs.secrets.get(tampered)!.value;
    const ct = atob(t.ct);
    const flipped = String.fromCharCode(ct.charCodeAt(0) ^ 1) + ct.slice(1);
    await kv.set(kvKeys.secret(tampered), { ...t, ct: btoa(flipped) });
    const fr = recs.records.get(foreign)!.value;
    await kv.set(
      kvKeys.secret(foreign),
      await seal(keyC.current, v.patOf(fr.user), patAad(fr.user, foreign)),
    );
    await v.stop();

    const env = {
      SOSVAULT_KV_PATH: v.kvPath,
      TOKEN_VAULT_MASTER_KEY: v.keyB,
      TOKEN_VAULT_MASTER_KEY_PREVIOUS: v.keyA,
    };
    const r = await runSosvault(v.dir, ["rotate-key"], env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /2 stored PATs decrypt under neither the current nor the previous key/);
    assert.ok(r.stderr.includes(tampered) && r.stderr.includes(foreign));
    assert.match(r.stdout, /is not complete: rotated 2, already current 0, skipped .* 1\./);
    for (const secret of [v.keyA, v.keyB, v.w.alice.pat, v.w.bob.pat, t.ct]) {
      assert.ok(!(r.stdout + r.stderr).includes(secret));
    }
    // The sentinel stays under the old key, so the old key is still needed to start.
    await assert.rejects(openVault(v, { TOKEN_VAULT_MASTER_KEY: v.keyB }), ConfigError);

    const both = await v.restart(env);
    for (const id of [tampered, foreign]) {
      const owner = recs.records.get(id)!.value.user;
      await revoke(both, v.whoOf(owner), id);
      v.connected.splice(v.connected.indexOf(id), 1);
      v.revoked.add(id);
    }
    await v.stop();
    const rerun = await runSosvault(v.dir, ["rotate-key"], env);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stdout, /rotated 0, already current 2, skipped \(revoked\/expired\) 3/);
    await assertAllVerifyWithOnlyKeyB(v);
  } finally {
    await v.close();
  }
});

Deno.test("a revoke racing the rotation wins: a revoked connection never gets its ciphertext back", async () => {
  const v = await vaultUnderKeyA({ alice: 40, bob: 20 });
  try {
    const clock = new TestClock(Date.now());
    const server = await v.restart(
      { TOKEN_VAULT_MASTER_KEY: v.keyB, TOKEN_VAULT_MASTER_KEY_PREVIOUS: v.keyA },
      clock,
    );
    const s = server.services;
    const owners = await snapshot(s.kv);
    const userOf = (id: string) => owners.records.get(id)!.value.user;

    // Deterministic: the rotation read the record and envelope, then a revoke landed.
    const id = v.connected[0];
    const store = new ConnectionStore(s.kv);
    const { record, envelope } = await store.getWithEnvelope(id);
    await revoke(server, v.whoOf(userOf(id)), id);
    v.connected.shift();
    v.revoked.add(id);
    const pat = await open(s.keyring, envelope!.value, patAad(userOf(id), id));
    const resealed = await seal(s.keyring.current, pat, patAad(userOf(id), id));
    const written = await store.rewrap(record!, envelope!, resealed, {
      key_version: s.keyring.current.kid,
      pat_fp: "x",
    }, clock.now().getTime());
    assert.equal(written, null, "the stale rewrap is refused");
    assert.equal(await store.getEnvelope(id), null);

    // Concurrent: revokes through the API while the rotation runs over the same records.
    const victims = v.connected.filter((_, i) => i % 2 === 0);
    const [report] = await Promise.all([
      rotateKey(rotationDeps(s)),
      ...victims.map(async (vid) => {
        await revoke(server, v.whoOf(userOf(vid)), vid);
        v.revoked.add(vid);
      }),
    ]);
    v.connected = v.connected.filter((c) => !v.revoked.has(c));
    assert.equal(report.complete, true);
    assert.equal(report.rotated + report.alreadyCurrent + report.skipped, v.ids.size);
    const snap = await snapshot(s.kv);
    await assertInvariants(snap, await keyring(v.keyB), v);
    for (const c of v.connected) {
      assert.equal(snap.records.get(c)!.value.key_version, report.currentKid);
    }
  } finally {
    await v.close();
  }
});

Deno.test("an expired connection under the old key is closed by the rotation, not re-encrypted", async () => {
  const v = await vaultUnderKeyA({ alice: 2, bob: 1 });
  try {
    const clock = new TestClock(Date.now() + 9 * 3600_000);
    const server = await v.restart(
      { TOKEN_VAULT_MASTER_KEY: v.keyB, TOKEN_VAULT_MASTER_KEY_PREVIOUS: v.keyA },
      clock,
    );
    const report = await rotateKey(rotationDeps(server.services));
    assert.deepEqual(
      [report.rotated, report.alreadyCurrent, report.skipped, report.complete],
      [0, 0, 3, true],
    );
    const snap = await snapshot(server.services.kv);
    assert.equal(snap.secrets.size, 0);
    for (const id of v.connected) assert.equal(snap.records.get(id)!.value.status, "expired");
    const events = await server.services.events.list({ type: "expire" });
    assert.deepEqual(new Set(events.map((e) => e.connection_id)), new Set(v.connected));
  } finally {
    await v.close();
  }
});

Deno.test("rotate-key killed (SIGKILL) at random moments loses nothing, and a last run completes it", async () => {
  const v = await vaultUnderKeyA({ alice: 150, bob: 150 });
  try {
    // A few more revoked, so the rotation meets both kinds throughout.
    const server = await v.restart({ TOKEN_VAULT_MASTER_KEY: v.keyA });
    const owners = await snapshot(server.services.kv);
    for (const id of v.connected.filter((_, i) => i % 7 === 3)) {
      await revoke(server, v.whoOf(owners.records.get(id)!.value.user), id);
      v.revoked.add(id);
    }
    v.connected = v.connected.filter((c) => !v.revoked.has(c));
    await v.stop();

    const env = {
      SOSVAULT_KV_PATH: v.kvPath,
      TOKEN_VAULT_MASTER_KEY: v.keyB,
      TOKEN_VAULT_MASTER_KEY_PREVIOUS: v.keyA,
    };
    const both = await keyring(v.keyB, v.keyA);
    const kidB = both.current.kid;
    const childEnv: Record<string, string> = { ...env, NO_COLOR: "1" };
    for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "NPM_CONFIG_REGISTRY"]) {
      const value = Deno.env.get(name);
      if (value) childEnv[name] = value;
    }
    const observer = await Deno.openKv(v.kvPath);
    const countUnderB = async () => {
      let n = 0;
      for await (const e of observer.list<Envelope>({ prefix: kvKeys.allSecrets() })) {
        if (e.value.kid === kidB) n++;
      }
      return n;
    };

    let partial = 0;
    let finishedEarly = false;
    for (let kill = 0; kill < 5 && !finishedEarly; kill++) {
      const startCount = await countUnderB();
      const child = new Deno.Command("deno", {
        args: [...sosvaultArgs(v.dir), "rotate-key"],
        env: childEnv,
        clearEnv: true,
        cwd: v.dir,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      let exited = false;
      child.status.then(() => (exited = true));
      // Wait until this run has re-encrypted something, then kill it 5–60 ms later.
      const deadline = Date.now() + 30_000;
      while (!exited && Date.now() < deadline && await countUnderB() === startCount) {
        await new Promise((r) => setTimeout(r, 2));
      }
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 55));
      try {
        child.kill("SIGKILL");
      } catch { /* it had already exited */ }
      const { code, signal } = await child.status;
      if (code === 0 && signal === null) finishedEarly = true;

      const snap = await withKv(v.kvPath, snapshot);
      await assertInvariants(snap, both, v);
      const underB = [...snap.secrets.values()].filter((e) => e.value.kid === kidB).length;
      if (underB > 0 && underB < snap.secrets.size) partial++;
      if (snap.sentinel.value?.kid === kidB) {
        assert.equal(underB, snap.secrets.size, "the sentinel moves only after every envelope");
      }
    }
    observer.close();
    assert.ok(partial > 0, "at least one kill landed in the middle of a rotation");

    const last = await runSosvault(v.dir, ["rotate-key"], env);
    assert.equal(last.code, 0, last.stderr);
    assert.match(last.stdout, /already current \d+, skipped \(revoked\/expired\) \d+\)?\./);
    const done = await withKv(v.kvPath, snapshot);
    await assertInvariants(done, await keyring(v.keyB), v);
    assert.equal(done.secrets.size, v.connected.length);
    for (const e of done.secrets.values()) assert.equal(e.value.kid, kidB);
    for (const id of v.connected) assert.equal(done.records.get(id)!.value.key_version, kidB);
    assert.equal(done.sentinel.value?.kid, kidB);

    const again = await runSosvault(v.dir, ["rotate-key"], env);
    assert.match(again.stdout, /Nothing to rotate/);
    assert.match(
      again.stdout,
      new RegExp(
        `already current ${v.connected.length}, skipped \\(revoked/expired\\) ${v.revoked.size}\\)`,
      ),
    );
  } finally {
    await v.close();
  }
});
