/**
 * SOSVAULT_KEY_SOURCE=vault against the fake Vault on loopback HTTPS (tests/helpers/
 * fake_vault/, which follows Vault's documented API): start, renew, max TTL and re-login,
 * expiry, a revoked token, rotation across KV versions, a policy that is too narrow, a
 * wrapping token someone else unwrapped, and Vault down at start. The clock is injected into
 * both sosvault and the fake, so nothing sleeps.
 */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../src/config.ts";
import { openServices } from "../../src/runtime.ts";
import { rotateKey } from "../../src/vault/rotate.ts";
import { rotationDeps } from "../../src/cli/rotate_key.ts";
import { FakeVault, startFakeVault } from "../helpers/fake_vault/mod.ts";
import { TestClock } from "../helpers/clock.ts";
import { randomMasterKey, startServer } from "../helpers/server.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanary, newCanaryPat } from "../helpers/canary.ts";
import { freshDir, TEST_CA_FILE } from "../helpers/paths.ts";
import { runSosvault } from "../helpers/process.ts";
import { doctorCommand } from "../../src/cli/doctor.ts";

const KEY_PATH = "secret/data/sosvault/master-key";

interface VaultSetup {
  clock: TestClock;
  fake: FakeVault;
  url: string;
  roleId: string;
  secretIdFile: string;
  secretDir: string;
  key: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

async function vaultSetup(
  options: {
    namespace?: string;
    policy?: Record<string, string[]>;
    tokenTtl?: number;
    tokenMaxTtl?: number;
    dir?: string;
  } = {},
): Promise<VaultSetup> {
  const clock = new TestClock();
  const fake = new FakeVault(() => clock.now().getTime(), options.namespace ?? "");
  fake.policies.set(
    "sosvault",
    options.policy ?? {
      [KEY_PATH]: ["read"],
      "secret/metadata/sosvault/master-key": ["read"],
    },
  );
  const roleId = crypto.randomUUID();
  fake.addRole("sosvault", {
    roleId,
    policies: ["sosvault"],
    secretIdNumUses: 1,
    secretIdTtl: 600,
    tokenTtl: options.tokenTtl ?? 3600,
    tokenMaxTtl: options.tokenMaxTtl ?? 4 * 3600,
  });
  const key = await newCanary("hex32");
  fake.putKv("sosvault/master-key", { key });
  const running = await startFakeVault(fake);
  // Secret IDs live outside .test-out unless a test removes them (VAULT_SECRET_ID_REMOVE).
  const secretDir = options.dir ?? await Deno.makeTempDir({ prefix: "sosvault-vault-" });
  const secretIdFile = `${secretDir}/secret-id`;
  await Deno.writeTextFile(
    secretIdFile,
    fake.newSecretId(
      "sosvault",
      // A file under .test-out is swept: no canary there.
      options.dir ? crypto.randomUUID() : await newCanary("uuid"),
    ),
    {
      mode: 0o600,
    },
  );
  const env: Record<string, string> = {
    TOKEN_VAULT_MASTER_KEY: "",
    SOSVAULT_KEY_SOURCE: "vault",
    VAULT_ADDR: running.url,
    VAULT_CACERT: TEST_CA_FILE,
    VAULT_ROLE_ID: roleId,
    VAULT_SECRET_ID_FILE: secretIdFile,
    SOSVAULT_VAULT_KEY_PATH: KEY_PATH,
  };
  if (options.namespace) env.VAULT_NAMESPACE = options.namespace;
  return {
    clock,
    fake,
    url: running.url,
    roleId,
    secretIdFile,
    secretDir,
    key,
    env,
    async close() {
      await running.close();
      if (!options.dir) await Deno.remove(secretDir, { recursive: true }).catch(() => {});
    },
  };
}

async function registerIssued(fake: FakeVault) {
  const { OUT_DIR } = await import("../helpers/paths.ts");
  await Deno.writeTextFile(`${OUT_DIR}/canaries.txt`, fake.issued.map((t) => t + "\n").join(""), {
    append: true,
  });
}

function assertNothingOf(text: string, secrets: string[], where: string) {
  for (const s of secrets) assert.ok(!text.includes(s), `${where} holds a Vault secret`);
}

Deno.test("start: AppRole login wrapped, unwrapped in memory, key read from KV v2 in a namespace; serves and hides every secret", async () => {
  const v = await vaultSetup({ namespace: "team-a" });
  const jira = await startFakeJira();
  const server = await startServer({
    clock: v.clock,
    env: { ...v.env, VAULT_SECRET_ID_REMOVE: "1" },
  });
  try {
    const secretId = v.fake.requests.length > 0; // the login happened during start
    assert.ok(secretId);
    const paths = v.fake.requests.map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(paths, [
      "POST /v1/auth/approle/login",
      "POST /v1/sys/wrapping/unwrap",
      `GET /v1/${KEY_PATH}`,
      "GET /v1/secret/metadata/sosvault/master-key",
    ]);
    assert.ok(v.fake.requests.every((r) => r.namespace === "team-a"), "X-Vault-Namespace sent");
    assert.equal(v.fake.requests[0].wrapTtl, "60s");
    assert.equal(v.fake.requests[0].hasToken, false);
    await assert.rejects(Deno.stat(v.secretIdFile), Deno.errors.NotFound, "secret ID removed");

    // The server works with the key from Vault.
    const token = await server.addUser("alice");
    const pat = await newCanaryPat();
    jira.jira.addUser({ name: "alice.jira", displayName: "Alice" });
    jira.jira.addPat("alice.jira", pat);
    const res = await server.call("POST", "/api/jira/connections", {
      token,
      json: { base_url: jira.url, pat },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.key_version, server.services.keyring.current.kid);
    assert.equal(server.services.keyring.previous, undefined, "first version: no previous key");

    const logs = server.logs.join("\n");
    assert.match(logs, /"msg":"vault_key_loaded"/);
    await registerIssued(v.fake);
    assertNothingOf(logs, [...v.fake.issued, v.key], "the log");
    // The key never touches disk: no key file next to the KV store.
    for await (const e of Deno.readDir(server.dir)) assert.ok(!e.name.includes("key"), e.name);
    // The token and key are masked if anything prints them.
    assert.equal(
      server.services.secrets.mask(`x ${v.key} ${v.fake.issued.at(-1)}`),
      "x [redacted] [redacted]",
    );

    const lines: string[] = [];
    await doctorCommand(server.services, {
      out: (l) => lines.push(l),
      err: (l) => lines.push(l),
      usage: () => 64,
    }, { sosPath: null, run: () => Promise.resolve({ code: 1, stdout: "", stderr: "" }) });
    const doctor = lines.join("\n");
    assert.match(
      doctor,
      /ok {3}Vault: AppRole login, wrapped: wrapping TTL 60s, unwrapped in memory/,
    );
    assert.match(
      doctor,
      /ok {3}Vault: read the master key: secret\/data\/sosvault\/master-key version 1/,
    );
    assert.match(
      doctor,
      /path "secret\/metadata\/sosvault\/master-key" \{\n {2}capabilities = \["read"\]/,
    );
    assertNothingOf(doctor, [...v.fake.issued, v.key], "doctor's output");
  } finally {
    await server.close();
    await jira.close();
    await v.close();
  }
});

Deno.test("renew at two thirds of the TTL, re-login with a new secret ID at the max TTL, then expiry raises the alert and the server keeps serving", async () => {
  const v = await vaultSetup({ tokenTtl: 3600, tokenMaxTtl: 3 * 3600 });
  const server = await startServer({ clock: v.clock, env: v.env });
  try {
    const vault = server.services.vault!;
    const start = v.clock.now().getTime();
    assert.equal(vault.nextStepAt, start + 2400_000, "two thirds of 3600 s");
    v.clock.set(vault.nextStepAt!);
    assert.equal(await vault.step(), "renewed");
    assert.equal(v.fake.requests.at(-1)!.path, "/v1/auth/token/renew-self");
    assert.equal(vault.tokenExpiresAt, v.clock.now().getTime() + 3600_000);
    // Renew until Vault caps the lease at the max TTL (3 h after login).
    let steps = 0;
    while (!vault.atMaxTtl && steps++ < 10) {
      v.clock.set(vault.nextStepAt!);
      assert.equal(await vault.step(), "renewed");
    }
    assert.equal(vault.tokenExpiresAt, start + 3 * 3600_000, "capped at the max TTL");

    // At the max TTL a renewal cannot help: the next step logs in again with a new secret ID.
    v.clock.set(vault.nextStepAt!);
    // Placed just in time: the secret ID has its own TTL (600 s).
    await Deno.writeTextFile(
      v.secretIdFile,
      v.fake.newSecretId("sosvault", await newCanary("uuid")),
    );
    const logins = v.fake.requests.filter((r) => r.path === "/v1/auth/approle/login").length;
    assert.equal(await vault.step(), "relogged");
    assert.equal(
      v.fake.requests.filter((r) => r.path === "/v1/auth/approle/login").length,
      logins + 1,
    );
    assert.equal(v.fake.requests.at(-1)!.path, "/v1/sys/wrapping/unwrap", "wrapped again");

    // No new secret ID this time: renew to the max, then it expires.
    for (let i = 0; i < 20 && vault.nextStepAt !== null; i++) {
      v.clock.set(vault.nextStepAt!);
      await vault.step();
    }
    assert.equal(vault.nextStepAt, null);
    assert.ok(v.clock.now().getTime() >= vault.tokenExpiresAt);
    const alerts = server.logs.filter((l) => l.includes('"msg":"secrets_bootstrap_token_expired"'));
    assert.equal(alerts.length, 1);
    assert.match(alerts[0], /"level":"error"/);
    const [event] = await server.services.events.list({ type: "secrets_bootstrap_token_expired" });
    assert.deepEqual([event.outcome, event.source], ["failure", "system"]);

    // Still serving with the key it holds.
    const token = await server.addUser("bob");
    assert.equal((await server.call("GET", "/api/jira/connections", { token })).status, 200);
    assert.equal((await server.services.events.verify()).ok, true);
    await registerIssued(v.fake);
    assertNothingOf(server.logs.join("\n"), v.fake.issued, "the log");
  } finally {
    await server.close();
    await v.close();
  }
});

Deno.test("a 403 on renew (token revoked in Vault) raises secrets_bootstrap_token_expired at once", async () => {
  const v = await vaultSetup();
  const server = await startServer({ clock: v.clock, env: v.env });
  try {
    v.fake.revokeAllTokens();
    v.clock.set(server.services.vault!.nextStepAt!);
    assert.equal(await server.services.vault!.step(), "expired");
    assert.ok(
      server.logs.some((l) => /secrets_bootstrap_token_expired.*permission denied/.test(l)),
    );
    assert.equal(
      (await server.services.events.list({ type: "secrets_bootstrap_token_expired" })).length,
      1,
    );
    await registerIssued(v.fake);
  } finally {
    await server.close();
    await v.close();
  }
});

Deno.test("rotation: the previous KV version is the previous key, and rotate-key completes against Vault", async () => {
  const v = await vaultSetup();
  const dir = await freshDir("vault-rotate");
  const jira = await startFakeJira();
  try {
    // Version 1 serves first.
    let server = await startServer({ dir, clock: v.clock, env: v.env });
    const token = await server.addUser("alice");
    const pat = await newCanaryPat();
    jira.jira.addUser({ name: "alice.jira", displayName: "Alice" });
    jira.jira.addPat("alice.jira", pat);
    const made = await server.call("POST", "/api/jira/connections", {
      token,
      json: { base_url: jira.url, pat },
    });
    assert.equal(made.status, 201);
    const oldKid = server.services.keyring.current.kid;
    await server.close();

    // The operator writes version 2 (vault kv put), and a new secret ID.
    v.fake.putKv("sosvault/master-key", { key: await newCanary("hex32") });
    await Deno.writeTextFile(
      v.secretIdFile,
      v.fake.newSecretId("sosvault", await newCanary("uuid")),
    );
    server = await startServer({ dir, clock: v.clock, env: v.env });
    assert.equal(server.services.keyring.previous?.kid, oldKid, "version 1 is the previous key");
    assert.notEqual(server.services.keyring.current.kid, oldKid);
    const report = await rotateKey(rotationDeps(server.services));
    assert.equal(report.rotated, 1);
    assert.equal(report.complete, true);
    assert.equal(report.events.broken, false);
    const res = await server.call(
      "GET",
      `/api/jira/connections/${made.body.connection_id}?verify=1`,
      {
        token,
      },
    );
    assert.equal(res.status, 200, res.text);
    await server.close();

    // Version 1 deleted in Vault: the next start has only version 2, and everything verifies.
    v.fake.deleteKvVersion("sosvault/master-key", 1);
    await Deno.writeTextFile(
      v.secretIdFile,
      v.fake.newSecretId("sosvault", await newCanary("uuid")),
    );
    server = await startServer({ dir, clock: v.clock, env: v.env });
    assert.equal(server.services.keyring.previous, undefined);
    const chain = await server.services.events.verify();
    assert.equal(chain.ok, true, JSON.stringify(chain.problem));
    await server.close();
    await registerIssued(v.fake);
  } finally {
    await jira.close();
    await v.close();
  }
});

Deno.test("a policy that does not allow reading the key's metadata stops the start with a clear error", async () => {
  const v = await vaultSetup({ policy: { [KEY_PATH]: ["read"] } });
  try {
    const err = await openServices(
      parseConfig({ ...v.env, SOSVAULT_KV_PATH: `${v.secretDir}/kv` }),
      {
        clock: v.clock.now,
        logSink: () => {},
        vaultAutoRenew: false,
      },
    ).then(() => null, (e) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /read the key's versions: Vault answered 403 \(permission denied\)/);
    assert.match(err.message, /sosvault doctor` prints the policy/);
    await registerIssued(v.fake);
    assertNothingOf(err.message, v.fake.issued, "the error");
  } finally {
    await v.close();
  }
});

Deno.test("a secret ID already used (num_uses 1) is refused with Vault's answer", async () => {
  const v = await vaultSetup();
  try {
    const config = parseConfig({ ...v.env, SOSVAULT_KV_PATH: `${v.secretDir}/kv` });
    const s = await openServices(config, {
      clock: v.clock.now,
      logSink: () => {},
      vaultAutoRenew: false,
    });
    s.vault!.close();
    s.kv.close();
    const err = await openServices(config, {
      clock: v.clock.now,
      logSink: () => {},
      vaultAutoRenew: false,
    })
      .then(() => null, (e) => e);
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /AppRole login: Vault answered 400 \(invalid role or secret ID\)/);
    await registerIssued(v.fake);
  } finally {
    await v.close();
  }
});

Deno.test("a wrapping token someone else unwrapped first is a hard stop with a loud security event (exit 78)", async () => {
  const dir = await freshDir("vault-reused");
  const v = await vaultSetup({ dir });
  try {
    v.fake.stealWrapped = true;
    const lines: string[] = [];
    const err = await openServices(parseConfig({ ...v.env, SOSVAULT_KV_PATH: `${dir}/kv/a.kv` }), {
      clock: v.clock.now,
      logSink: (l) => lines.push(l),
      vaultAutoRenew: false,
    }).then(() => null, (e) => e);
    assert.ok(err instanceof ConfigError);
    assert.match(
      err.message,
      /^Invalid configuration:\n {2}- SECURITY: the response-wrapped Vault token was already unwrapped/,
    );
    const event = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "security_event");
    assert.equal(event.event.type, "secrets_bootstrap_wrapping_reused");
    assert.equal(event.level, "error");

    // The same as a process: exit 78, and the secret ID file is not left behind.
    await Deno.writeTextFile(v.secretIdFile, v.fake.newSecretId("sosvault", crypto.randomUUID()));
    const r = await runSosvault(dir, ["users", "list"], {
      ...v.env,
      SOSVAULT_KV_PATH: `${dir}/kv/b.kv`,
      VAULT_SECRET_ID_REMOVE: "1",
    });
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /SECURITY: the response-wrapped Vault token was already unwrapped/);
    assert.match(r.stderr, /"type":"secrets_bootstrap_wrapping_reused"/);
    await registerIssued(v.fake);
    assertNothingOf(r.stderr + r.stdout, v.fake.issued, "the output");
  } finally {
    await v.close();
  }
});

Deno.test("Vault down at start: exit 78 with a clear error naming VAULT_ADDR", async () => {
  const dir = await freshDir("vault-down");
  const v = await vaultSetup({ dir });
  await v.close();
  const r = await runSosvault(dir, ["users", "list"], {
    ...v.env,
    SOSVAULT_KV_PATH: `${dir}/sosvault.kv`,
  });
  assert.equal(r.code, 78, r.stderr);
  assert.match(
    r.stderr,
    /AppRole login: Vault is unreachable .*check VAULT_ADDR \(https:\/\/127\.0\.0\.1:\d+\)/,
  );
  await Deno.remove(v.secretIdFile).catch(() => {});
});

Deno.test("vault mode configuration: https only off loopback, no static key beside it, role ID required", () => {
  const base = {
    SOSVAULT_KEY_SOURCE: "vault",
    VAULT_ADDR: "https://vault.example.com:8200",
    VAULT_ROLE_ID: "r",
    VAULT_SECRET_ID_FILE: "/run/sosvault/secret-id",
  } as const;
  const c = parseConfig(base);
  assert.equal(c.masterKey.kind, "vault");
  const problems = (env: Record<string, string>) => {
    try {
      parseConfig(env);
      return "";
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.match(
    problems({ ...base, VAULT_ADDR: "http://vault.example.com:8200" }),
    /VAULT_ADDR must be https/,
  );
  assert.equal(problems({ ...base, VAULT_ADDR: "http://127.0.0.1:8200" }), "");
  assert.match(
    problems({ ...base, TOKEN_VAULT_MASTER_KEY: randomMasterKey() }),
    /unset TOKEN_VAULT_MASTER_KEY/,
  );
  assert.match(
    problems({ ...base, VAULT_ROLE_ID: "" }),
    /exactly one of VAULT_ROLE_ID and VAULT_ROLE_ID_FILE/,
  );
  assert.match(
    problems({ ...base, SOSVAULT_VAULT_KEY_PATH: "secret/sosvault" }),
    /KV v2 data path/,
  );
  assert.match(problems({ SOSVAULT_KEY_SOURCE: "vault" }), /VAULT_ADDR is missing/);
});

Deno.test("Vault down during a renewal: retried 30 s later, not in a loop; the alert comes at expiry", async () => {
  const v = await vaultSetup({ tokenTtl: 600, tokenMaxTtl: 3600 });
  const server = await startServer({ clock: v.clock, env: v.env });
  const vault = server.services.vault!;
  try {
    await v.close();
    v.clock.set(vault.nextStepAt!);
    await assert.rejects(vault.step(), /renew the token: Vault is unreachable/);
    assert.equal(vault.nextStepAt, v.clock.now().getTime() + 30_000);
    v.clock.set(vault.tokenExpiresAt);
    assert.equal(await vault.step(), "expired");
    assert.equal(vault.nextStepAt, null);
    assert.ok(server.logs.some((l) => l.includes('"msg":"secrets_bootstrap_token_expired"')));
    await registerIssued(v.fake);
  } finally {
    await server.close();
  }
});
