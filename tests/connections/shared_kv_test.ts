/**
 * Two sosvault instances on one local KV file (our stand-in for a shared store). SQLite lets
 * one writer at a time, and Deno KV answers a contended write with `database is locked`;
 * sosvault retries those, so concurrent connects and revokes through both instances never
 * fail with a 500 and leave the store consistent.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { startServer } from "../helpers/server.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { freshDir, TEST_CA_FILE } from "../helpers/paths.ts";
import { randomMasterKey } from "../helpers/server.ts";
import { runSosvault, serveProcess } from "../helpers/process.ts";
import { kvKeys } from "../../src/kv_keys.ts";
import type { ConnectionRecord } from "../../src/connections/store.ts";

type Call = (
  method: string,
  path: string,
  token: string,
  json?: unknown,
) => Promise<{ status: number; body: { connection_id?: string } }>;

/** Each worker connects, then revokes every other connection it made, through alternating instances. */
async function churn(
  instances: Call[],
  users: { token: string; pat: string }[],
  baseUrl: string,
  perWorker: number,
): Promise<{ statuses: number[]; connected: Set<string>; revoked: Set<string> }> {
  const statuses: number[] = [];
  const connected = new Set<string>();
  const revoked = new Set<string>();
  await Promise.all(users.flatMap((u, ui) =>
    [0, 1].map(async (wi) => {
      for (let i = 0; i < perWorker; i++) {
        const call = instances[(ui + wi + i) % instances.length];
        const res = await call("POST", "/api/jira/connections", u.token, {
          base_url: baseUrl,
          pat: u.pat,
        });
        statuses.push(res.status);
        const id = res.body.connection_id;
        if (res.status !== 201 || !id) continue;
        connected.add(id);
        if (i % 2 === 1) {
          const other = instances[(ui + wi + i + 1) % instances.length];
          const del = await other("DELETE", `/api/jira/connections/${id}`, u.token);
          statuses.push(del.status);
          if (del.status === 200) {
            connected.delete(id);
            revoked.add(id);
          }
        }
      }
    })
  ));
  return { statuses, connected, revoked };
}

async function assertConsistent(
  kv: Deno.Kv,
  connected: Set<string>,
  revoked: Set<string>,
) {
  const records = new Map<string, ConnectionRecord>();
  for await (const e of kv.list<ConnectionRecord>({ prefix: kvKeys.allConnections() })) {
    records.set(String(e.key[1]), e.value);
  }
  const secrets = new Set<string>();
  for await (const e of kv.list({ prefix: kvKeys.allSecrets() })) secrets.add(String(e.key[1]));
  assert.equal(records.size, connected.size + revoked.size, "no connection lost or duplicated");
  for (const id of connected) {
    assert.equal(records.get(id)?.status, "connected", id);
    assert.ok(secrets.has(id), `connected ${id} keeps its ciphertext`);
  }
  for (const id of revoked) {
    assert.equal(records.get(id)?.status, "revoked", id);
    assert.ok(!secrets.has(id), `revoked ${id} has no ciphertext`);
  }
}

Deno.test("two in-process instances on one KV file: concurrent connects and revokes, no 500", async () => {
  const w = await startWorld({ env: { SOSVAULT_RATE_CONNECT: "0/60" } });
  const second = await startServer({
    dir: w.server.dir,
    env: { ...w.server.env, SOSVAULT_LISTEN: "127.0.0.1:0" },
  });
  try {
    const instances: Call[] = [w.server, second].map((s) => (method, path, token, json) =>
      s.call(method, path, { token, json })
    );
    const { statuses, connected, revoked } = await churn(
      instances,
      [w.alice, w.bob],
      w.jira.url,
      20,
    );
    assert.deepEqual(new Set(statuses), new Set([200, 201]), `statuses: ${statuses}`);
    assert.equal(connected.size + revoked.size, 80);
    await assertConsistent(w.server.services.kv, connected, revoked);
  } finally {
    await second.close();
    await w.close();
  }
});

Deno.test("two sosvault processes on one KV file: concurrent connects and revokes, no 500", async () => {
  const dir = await freshDir("shared-kv");
  const jira = await startFakeJira();
  const env = {
    TOKEN_VAULT_MASTER_KEY: randomMasterKey(),
    SOSVAULT_KV_PATH: `${dir}/kv/sosvault.kv`,
    JIRA_CA_FILE: TEST_CA_FILE,
    JIRA_ALLOWED_HOSTS: "127.0.0.1",
    SOSVAULT_RATE_CONNECT: "0/60",
  };
  const users: { token: string; pat: string }[] = [];
  for (const name of ["carol", "dave"]) {
    const add = await runSosvault(dir, ["users", "add", name, "--json"], env);
    assert.equal(add.code, 0, add.stderr);
    const pat = await newCanaryPat();
    jira.jira.addUser({ name, displayName: name });
    jira.jira.addPat(name, pat);
    users.push({ token: JSON.parse(add.stdout).token, pat });
  }
  const a = await serveProcess(dir, env);
  const b = await serveProcess(dir, env);
  let running = true;
  const stopBoth = async () => {
    if (!running) return;
    running = false;
    await Promise.all([a.stop(), b.stop()]);
  };
  try {
    const instances: Call[] = [a, b].map((p) => async (method, path, token, json) => {
      const res = await fetch(p.url + path, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(json ? { "content-type": "application/json" } : {}),
        },
        body: json ? JSON.stringify(json) : undefined,
      });
      return { status: res.status, body: await res.json() };
    });
    const { statuses, connected, revoked } = await churn(instances, users, jira.url, 25);
    assert.deepEqual(new Set(statuses), new Set([200, 201]), `statuses: ${statuses}`);
    assert.equal(connected.size + revoked.size, 100);
    const logs = [...a.lines, ...b.lines].join("\n");
    assert.doesNotMatch(logs, /unexpected_error|database is locked/);
    for (const u of users) assert.ok(!logs.includes(u.pat));
    await stopBoth();
    const kv = await Deno.openKv(env.SOSVAULT_KV_PATH);
    try {
      await assertConsistent(kv, connected, revoked);
    } finally {
      kv.close();
    }
    // Both processes appended to one signed event chain: no seq shared, none skipped.
    const verify = await runSosvault(dir, ["events", "verify", "--json"], env);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const report = JSON.parse(verify.stdout);
    assert.equal(report.first_seq, 1);
    assert.ok(report.verified >= 100 + revoked.size, `verified ${report.verified}`);
  } finally {
    await stopBoth();
    await jira.close();
  }
});
