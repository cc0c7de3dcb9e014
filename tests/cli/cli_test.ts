/**
 * The `sosvault` command itself, run as a child process with narrow permissions.
 */
import assert from "node:assert/strict";
import { freshDir, TEST_CA_FILE } from "../helpers/paths.ts";
import { runSosvault, serveProcess } from "../helpers/process.ts";
import { randomMasterKey } from "../helpers/server.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanaryPat } from "../helpers/canary.ts";

async function setup() {
  const dir = await freshDir("cli");
  const env = {
    TOKEN_VAULT_MASTER_KEY: randomMasterKey(),
    SOSVAULT_KV_PATH: `${dir}/kv/sosvault.kv`,
  };
  return { dir, env };
}

Deno.test("sosvault without a master key exits 78 naming TOKEN_VAULT_MASTER_KEY", async () => {
  const dir = await freshDir("cli");
  const r = await runSosvault(dir, ["serve"], { SOSVAULT_KV_PATH: `${dir}/kv` });
  assert.equal(r.code, 78);
  assert.match(r.stderr, /TOKEN_VAULT_MASTER_KEY is missing/);
});

Deno.test("sosvault with a malformed master key exits 78 and never prints the value", async () => {
  const dir = await freshDir("cli");
  for (const value of ["s3cr3t-but-short", "Z".repeat(43) + "?", "g".repeat(64)]) {
    const r = await runSosvault(dir, ["users", "list"], {
      TOKEN_VAULT_MASTER_KEY: value,
      SOSVAULT_KV_PATH: `${dir}/kv`,
    });
    assert.equal(r.code, 78);
    assert.match(r.stderr, /TOKEN_VAULT_MASTER_KEY is (too short|malformed)/);
    assert.ok(!r.stderr.includes(value) && !r.stdout.includes(value));
  }
});

Deno.test("sosvault refuses to start on a vault written with another master key (exit 78)", async () => {
  const { dir, env } = await setup();
  assert.equal((await runSosvault(dir, ["users", "list"], env)).code, 0);
  const wrong = randomMasterKey();
  const r = await runSosvault(dir, ["users", "list"], { ...env, TOKEN_VAULT_MASTER_KEY: wrong });
  assert.equal(r.code, 78);
  assert.match(r.stderr, /not the key this vault was written with/);
  assert.ok(!r.stderr.includes(wrong) && !r.stderr.includes(env.TOKEN_VAULT_MASTER_KEY));
});

Deno.test("sosvault reads the key from TOKEN_VAULT_MASTER_KEY_FILE", async () => {
  const { dir, env } = await setup();
  await Deno.writeTextFile(`${dir}/master.key`, env.TOKEN_VAULT_MASTER_KEY + "\n", { mode: 0o600 });
  const r = await runSosvault(dir, ["users", "list"], {
    SOSVAULT_KV_PATH: env.SOSVAULT_KV_PATH,
    TOKEN_VAULT_MASTER_KEY_FILE: `${dir}/master.key`,
  });
  assert.equal(r.code, 0, r.stderr);
  await Deno.writeTextFile(`${dir}/bad.key`, "nope\n");
  const bad = await runSosvault(dir, ["users", "list"], {
    SOSVAULT_KV_PATH: env.SOSVAULT_KV_PATH,
    TOKEN_VAULT_MASTER_KEY_FILE: `${dir}/bad.key`,
  });
  assert.equal(bad.code, 78);
  assert.match(bad.stderr, /TOKEN_VAULT_MASTER_KEY_FILE does not hold a valid key/);
});

Deno.test("users add prints the token once; list shows no token; remove revokes access", async () => {
  const { dir, env } = await setup();
  const add = await runSosvault(dir, ["users", "add", "alice", "--admin", "--json"], env);
  assert.equal(add.code, 0, add.stderr);
  const created = JSON.parse(add.stdout);
  assert.deepEqual(Object.keys(created).sort(), ["admin", "token", "user"]);
  assert.equal(created.user, "alice");
  assert.equal(created.admin, true);
  assert.match(created.token, /^svt_[A-Za-z0-9_-]{43}$/);

  const dup = await runSosvault(dir, ["users", "add", "alice"], env);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /already exists/);
  const badName = await runSosvault(dir, ["users", "add", "Alice Smith"], env);
  assert.equal(badName.code, 64);

  const list = await runSosvault(dir, ["users", "list", "--json"], env);
  assert.equal(list.code, 0);
  assert.deepEqual(JSON.parse(list.stdout).users.map((u: { user: string }) => u.user), ["alice"]);
  assert.ok(!list.stdout.includes(created.token));

  const server = await serveProcess(dir, env);
  try {
    const ok = await fetch(`${server.url}/api/jira/connections`, {
      headers: { authorization: `Bearer ${created.token}` },
    });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  } finally {
    assert.equal(await server.stop(), 0, "SIGTERM stops the server cleanly");
  }
  const rm = await runSosvault(dir, ["users", "remove", "alice"], env);
  assert.equal(rm.code, 0, rm.stderr);
  const server2 = await serveProcess(dir, env);
  try {
    const gone = await fetch(`${server2.url}/api/jira/connections`, {
      headers: { authorization: `Bearer ${created.token}` },
    });
    assert.equal(gone.status, 401);
    await gone.body?.cancel();
  } finally {
    await server2.stop();
  }
});

Deno.test("unknown commands and flags exit 64 with usage", async () => {
  const { dir, env } = await setup();
  assert.equal((await runSosvault(dir, ["frobnicate"], env)).code, 64);
  assert.equal((await runSosvault(dir, ["users", "list", "--bogus"], env)).code, 64);
  const help = await runSosvault(dir, ["--help"], {});
  assert.equal(help.code, 0);
  assert.match(help.stdout, /sosvault users add NAME/);
});

Deno.test("serve as a process: connect over HTTPS to Jira, revoke-all, events; no canary in its output", async () => {
  const { dir, env } = await setup();
  const jira = await startFakeJira();
  const pat = await newCanaryPat();
  jira.jira.addUser({ name: "carol", displayName: "Carol" });
  jira.jira.addPat("carol", pat);
  const token =
    JSON.parse((await runSosvault(dir, ["users", "add", "carol", "--json"], env)).stdout).token;
  const fullEnv = { ...env, JIRA_CA_FILE: TEST_CA_FILE, JIRA_ALLOWED_HOSTS: "127.0.0.1" };
  const server = await serveProcess(dir, fullEnv);
  let id: string;
  try {
    const res = await fetch(`${server.url}/api/jira/connections`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ base_url: jira.url, pat }),
    });
    const body = await res.json();
    assert.equal(res.status, 201, JSON.stringify(body));
    id = body.connection_id;
  } finally {
    await server.stop();
    await jira.close();
  }
  const revoke = await runSosvault(dir, ["connections", "revoke-all", "--user", "carol"], fullEnv);
  assert.equal(revoke.code, 0, revoke.stderr);
  assert.match(revoke.stdout, /Revoked 1 connection of carol/);
  const events = await runSosvault(dir, ["events", "--user", "carol", "--json"], fullEnv);
  const types = JSON.parse(events.stdout).events.map((e: { type: string; connection_id: string }) =>
    `${e.type}:${e.connection_id}`
  );
  assert.deepEqual(types, [`revoke:${id}`, `connect:${id}`]);
  const text = await runSosvault(dir, ["events", "--type", "connect"], fullEnv);
  assert.match(text.stdout, /connect\s+success\s+user=carol/);
  assert.ok(!server.lines.join("\n").includes(pat));
});
