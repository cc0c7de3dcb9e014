/**
 * Configured paths against Deno's permissions (issue 14, item 6): a path the process may not
 * use stops the start with exit 78, naming the variable, the path and the directories allowed,
 * before anything is opened — not Deno's raw "Requires write access" later. The child runs
 * exactly as `deno task start` does: main.ts with deno.json's `server` permission set.
 */
import assert from "node:assert/strict";
import { ENV_VARS, parseConfig } from "../../src/config.ts";
import { configuredPaths, pathPermissionProblems } from "../../src/path_permissions.ts";
import { REPO_ROOT } from "../helpers/paths.ts";

const KEY = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

async function startLikeOperator(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--unstable-kv",
      "--no-prompt",
      "--config",
      `${REPO_ROOT}/deno.json`,
      "--permission-set=server",
      `${REPO_ROOT}/main.ts`,
      ...args,
    ],
    cwd: REPO_ROOT,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
      NO_COLOR: "1",
      TOKEN_VAULT_MASTER_KEY: KEY,
      SOSVAULT_LISTEN: "127.0.0.1:0",
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function assertClearRefusal(r: { code: number; stderr: string }, variable: string, path: string) {
  assert.equal(r.code, 78, r.stderr);
  assert.match(r.stderr, new RegExp(`${variable} is ${path.replace(/[.]/g, "\\.")}, which`));
  assert.match(r.stderr, /Allowed \(.*write: [^)]*\/var\/lib\/sosvault/);
  assert.match(r.stderr, /`server` permission set in deno\.json/);
  assert.doesNotMatch(r.stderr, /unexpected failure|Requires (read|write) access|--allow-/);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}

Deno.test("a KV path outside the permissions: users list and serve stop with 78, naming it, and create nothing", async () => {
  // /tmp itself is not granted to the server (only /tmp/sosvault is).
  const dir = await Deno.makeTempDir({ prefix: "sosvault-outside-" });
  try {
    const kv = `${dir}/sosvault.kv`;
    for (const args of [["users", "list"], ["serve"]]) {
      const r = await startLikeOperator(args, { SOSVAULT_KV_PATH: kv });
      assertClearRefusal(r, "SOSVAULT_KV_PATH", kv);
      assert.match(r.stderr, /may not read or write/);
      // One line for the store, not one each for its -wal and -shm files.
      assert.equal(r.stderr.match(/SOSVAULT_KV_PATH is/g)?.length, 1, r.stderr);
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no KV file was created");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve with an artifact directory outside the permissions stops with 78; a CLI command does not need it", async () => {
  const inside = `/tmp/sosvault/path-test-${crypto.randomUUID()}`;
  const outside = await Deno.makeTempDir({ prefix: "sosvault-outside-" });
  await Deno.mkdir(inside, { recursive: true });
  try {
    const env = {
      SOSVAULT_KV_PATH: `${inside}/sosvault.kv`,
      SOSVAULT_ARTIFACT_DIR: `${outside}/artifacts`,
    };
    const served = await startLikeOperator(["serve"], env);
    assertClearRefusal(served, "SOSVAULT_ARTIFACT_DIR", `${outside}/artifacts`);
    assert.doesNotMatch(served.stderr, /SOSVAULT_KV_PATH is/, "the store itself is fine");
    assert.ok(!(await exists(`${outside}/artifacts`)));

    // `users list` never touches artifacts: it runs (and says there are no users).
    const listed = await startLikeOperator(["users", "list"], env);
    assert.equal(listed.code, 0, listed.stderr);
  } finally {
    await Deno.remove(inside, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("every path-valued variable is checked, for the access it needs", () => {
  const env = {
    SOSVAULT_KV_PATH: "/srv/kv/sosvault.kv",
    TOKEN_VAULT_MASTER_KEY_FILE: "/srv/keys/master.key",
    JIRA_CA_FILE: "/srv/ca.pem",
    SOSVAULT_ARTIFACT_DIR: "/srv/artifacts",
    SOSVAULT_ARTIFACT_ROOTS: "/srv/artifacts:/srv/extra",
    SOSVAULT_WEBHOOK_SECRET_FILE: "/srv/webhook.secret",
    SOSVAULT_EVENT_EXPORT: "file:/srv/events.jsonl",
  };
  const needs = configuredPaths(parseConfig(env));
  const by = (variable: string) =>
    needs.filter((n) => n.variable === variable).map((n) => [n.path, n.access.join("+")]);
  assert.deepEqual(by("SOSVAULT_KV_PATH"), [
    ["/srv/kv/sosvault.kv", "read+write"],
    ["/srv/kv/sosvault.kv-wal", "read+write"],
    ["/srv/kv/sosvault.kv-shm", "read+write"],
  ]);
  assert.deepEqual(by("TOKEN_VAULT_MASTER_KEY_FILE"), [["/srv/keys/master.key", "read"]]);
  assert.deepEqual(by("JIRA_CA_FILE"), [["/srv/ca.pem", "read"]]);
  assert.deepEqual(by("SOSVAULT_ARTIFACT_DIR"), [["/srv/artifacts", "read+write"]]);
  assert.deepEqual(by("SOSVAULT_ARTIFACT_ROOTS"), [
    ["/srv/artifacts", "read"],
    ["/srv/extra", "read"],
  ]);
  assert.deepEqual(by("SOSVAULT_WEBHOOK_SECRET_FILE"), [["/srv/webhook.secret", "read"]]);
  assert.deepEqual(by("SOSVAULT_EVENT_EXPORT"), [["/srv/events.jsonl", "write"]]);

  // Every variable named by a check is a real one (or the dev key's note on one).
  for (const n of needs) {
    assert.ok((ENV_VARS as readonly string[]).includes(n.variable.split(" ")[0]), n.variable);
  }

  // A CLI command checks only the store, the keys and the event export.
  const cli = new Set(configuredPaths(parseConfig(env), "cli").map((n) => n.variable));
  assert.deepEqual([...cli].sort(), [
    "SOSVAULT_EVENT_EXPORT",
    "SOSVAULT_KV_PATH",
    "TOKEN_VAULT_MASTER_KEY_FILE",
  ]);

  // With an injected answer from Deno: only the denied access is reported, once per store.
  const granted = (d: Deno.PermissionDescriptor) =>
    ({
      state: d.name === "write" && "path" in d && String(d.path).startsWith("/srv/kv")
        ? "denied"
        : "granted",
    }) as Deno.PermissionStatus;
  const problems = pathPermissionProblems(needs, granted);
  assert.equal(problems.length, 1, problems.join("\n"));
  assert.match(
    problems[0],
    /^SOSVAULT_KV_PATH is \/srv\/kv\/sosvault\.kv, which sosvault may not write/,
  );
});

Deno.test("the Vault, OIDC and approval files are checked too, each for the access it needs", () => {
  const vault = configuredPaths(parseConfig({
    SOSVAULT_KV_PATH: "/srv/kv/sosvault.kv",
    SOSVAULT_KEY_SOURCE: "vault",
    VAULT_ADDR: "https://vault.example:8200",
    VAULT_CACERT: "/srv/vault-ca.pem",
    VAULT_ROLE_ID_FILE: "/srv/role-id",
    VAULT_SECRET_ID_FILE: "/run/sosvault/secret-id",
    SOSVAULT_VAULT_KEY_PATH: "secret/data/sosvault/master-key",
  }));
  const vaultBy = (variable: string) =>
    vault.filter((n) => n.variable === variable).map((n) => [n.path, n.access.join("+")]);
  assert.deepEqual(vaultBy("VAULT_CACERT"), [["/srv/vault-ca.pem", "read"]]);
  assert.deepEqual(vaultBy("VAULT_ROLE_ID_FILE"), [["/srv/role-id", "read"]]);
  assert.equal(vaultBy("VAULT_SECRET_ID_FILE").length, 1);
  assert.equal(vaultBy("VAULT_SECRET_ID_FILE")[0][0], "/run/sosvault/secret-id");
  // The Vault KV path names a secret in Vault, not a file here.
  assert.ok(!vault.some((n) => n.variable === "SOSVAULT_VAULT_KEY_PATH"));

  const oidc = configuredPaths(parseConfig({
    TOKEN_VAULT_MASTER_KEY: KEY,
    SOSVAULT_AUTH: "oidc",
    SOSVAULT_OIDC_ISSUER: "https://idp.example",
    SOSVAULT_PUBLIC_URL: "https://sosvault.example",
    SOSVAULT_OIDC_CLIENT_ID: "sosvault-connect",
    SOSVAULT_OIDC_CLIENT_SECRET_FILE: "/srv/oidc.secret",
    SOSVAULT_APPROVAL: "cr+signature",
    SOSVAULT_APPROVAL_PROJECT: "CR",
    SOSVAULT_APPROVAL_SIGNATURE_FIELD: "customfield_10100",
    SOSVAULT_APPROVAL_TRUST_DIR: "/srv/trust",
  }));
  const oidcBy = (variable: string) =>
    oidc.filter((n) => n.variable === variable).map((n) => [n.path, n.access.join("+")]);
  assert.deepEqual(oidcBy("SOSVAULT_OIDC_CLIENT_SECRET_FILE"), [["/srv/oidc.secret", "read"]]);
  assert.deepEqual(oidcBy("SOSVAULT_APPROVAL_TRUST_DIR"), [["/srv/trust", "read"]]);

  // Each of them, denied, is refused by name with how to widen the set.
  const denyAll = () => ({ state: "denied" }) as Deno.PermissionStatus;
  const problems = pathPermissionProblems([...vault, ...oidc], denyAll);
  for (
    const v of [
      "VAULT_CACERT",
      "VAULT_ROLE_ID_FILE",
      "VAULT_SECRET_ID_FILE",
      "SOSVAULT_OIDC_CLIENT_SECRET_FILE",
      "SOSVAULT_APPROVAL_TRUST_DIR",
    ]
  ) {
    const line = problems.find((p) => p.startsWith(`${v} is `));
    assert.ok(line, `${v} refused:\n${problems.join("\n")}`);
    assert.match(line, /none of the packaged directories/);
    assert.match(line, /deno task compile/);
  }
});

Deno.test("a key file Deno may not read: the CLI stops with 78 naming TOKEN_VAULT_MASTER_KEY_FILE, not Deno's error", async () => {
  const inside = `/tmp/sosvault/path-test-${crypto.randomUUID()}`;
  const outside = await Deno.makeTempDir({ prefix: "sosvault-outside-" });
  await Deno.mkdir(inside, { recursive: true });
  try {
    const keyFile = `${outside}/master.key`;
    await Deno.writeTextFile(keyFile, KEY + "\n", { mode: 0o600 });
    const r = await startLikeOperator(["users", "list"], {
      TOKEN_VAULT_MASTER_KEY: "",
      TOKEN_VAULT_MASTER_KEY_FILE: keyFile,
      SOSVAULT_KV_PATH: `${inside}/sosvault.kv`,
    });
    assert.equal(r.code, 78, r.stderr);
    assert.ok(r.stderr.includes(`TOKEN_VAULT_MASTER_KEY_FILE is ${keyFile}, which`), r.stderr);
    assert.match(r.stderr, /may not read/);
    assert.match(r.stderr, /Allowed \(read: [^)]*\//);
    assert.doesNotMatch(r.stderr, /unexpected failure|Requires (read|write) access|--allow-/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    assert.ok(!r.stderr.includes(KEY), "the key is never printed");
    assert.ok(!(await exists(`${inside}/sosvault.kv`)), "nothing opened before the check");
  } finally {
    await Deno.remove(inside, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});
