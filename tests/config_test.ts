import assert from "node:assert/strict";
import { ConfigError, parseConfig, parseMasterKey } from "../src/config.ts";

const KEY_HEX = "11".repeat(32);
const KEY_B64 = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));

function problems(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("parseConfig() applies the documented defaults", () => {
  const c = parseConfig({ TOKEN_VAULT_MASTER_KEY: KEY_HEX });
  assert.equal(c.env, "development");
  assert.deepEqual(c.listen, { hostname: "127.0.0.1", port: 8080 });
  assert.equal(c.publicUrl, "http://127.0.0.1:8080");
  assert.equal(c.kvPath, "./.data/sosvault.kv");
  assert.equal(c.auth, "tokens");
  assert.equal(c.connectionTtlSeconds, 28800);
  assert.equal(c.attachmentMaxBytes, 536870912);
  assert.equal(c.mockMode, false);
  assert.deepEqual(c.allowedHosts, []);
  assert.equal(c.jiraTimeoutMs, 30000);
  assert.equal(c.artifactDir, "/tmp/sosvault");
  assert.deepEqual(c.artifactRoots, ["/tmp/sosvault"]);
  assert.equal(c.sosTimeoutSeconds, 1800);
  assert.equal(c.eventRetentionDays, 90);
  assert.equal(c.artifactTtlSeconds, 86400);
});

Deno.test("parseMasterKey() accepts 32 bytes as hex or base64 and nothing else", () => {
  assert.equal(parseMasterKey(KEY_HEX)?.length, 32);
  assert.equal(parseMasterKey(KEY_B64)?.length, 32);
  assert.equal(parseMasterKey("11".repeat(31)), null);
  assert.equal(parseMasterKey(KEY_B64.slice(0, 40)), null);
  assert.equal(parseMasterKey("zz".repeat(32)), null);
  assert.equal(parseMasterKey(btoa("x".repeat(33))), null);
});

Deno.test("parseConfig() names a missing master key and how to make one", () => {
  const [p] = problems({});
  assert.match(p, /^TOKEN_VAULT_MASTER_KEY is missing/);
  assert.match(p, /openssl rand -base64 32/);
});

Deno.test("parseConfig() calls a short or malformed master key by its name and never echoes it", () => {
  const short = "c2VjcmV0LXNob3J0LWtleQ==";
  const bad = "Q".repeat(44) + "!!!!";
  for (const [value, word] of [[short, "too short"], [bad, "malformed"]]) {
    const all = problems({ TOKEN_VAULT_MASTER_KEY: value }).join("\n");
    assert.match(all, new RegExp(`TOKEN_VAULT_MASTER_KEY is ${word}`));
    assert.ok(!all.includes(value), "the key value must not be echoed");
  }
  const prev = problems({
    TOKEN_VAULT_MASTER_KEY: KEY_HEX,
    TOKEN_VAULT_MASTER_KEY_PREVIOUS: "abc123",
  });
  assert.match(prev.join(), /TOKEN_VAULT_MASTER_KEY_PREVIOUS is malformed/);
  assert.ok(!prev.join().includes("abc123"));
});

Deno.test("parseConfig() refuses dev auth and mock mode in production", () => {
  const all = problems({
    TOKEN_VAULT_MASTER_KEY: KEY_HEX,
    SOSVAULT_ENV: "production",
    SOSVAULT_AUTH: "dev",
    JIRA_MOCK_MODE: "1",
  }).join("\n");
  assert.match(all, /SOSVAULT_AUTH=dev is refused when SOSVAULT_ENV=production/);
  assert.match(all, /JIRA_MOCK_MODE=1 is refused when SOSVAULT_ENV=production/);
});

Deno.test("parseConfig() allows dev auth only on a loopback listener", () => {
  assert.match(
    problems({ SOSVAULT_AUTH: "dev", SOSVAULT_LISTEN: "0.0.0.0:8080" }).join(),
    /loopback/,
  );
  const ok = parseConfig({ SOSVAULT_AUTH: "dev", SOSVAULT_LISTEN: "[::1]:9000" });
  assert.equal(ok.masterKey.kind, "dev-generated");
  assert.equal(ok.publicUrl, "http://[::1]:9000");
});

Deno.test("parseConfig() reports every bad variable at once, by name", () => {
  const all = problems({
    TOKEN_VAULT_MASTER_KEY: KEY_HEX,
    JIRA_CONNECTION_TTL_SECONDS: "59",
    JIRA_TIMEOUT_SECONDS: "soon",
    SOSVAULT_LISTEN: "nowhere",
    SOSVAULT_AUTH: "ldap",
    JIRA_MOCK_MODE: "yes",
  });
  for (
    const name of [
      "JIRA_CONNECTION_TTL_SECONDS",
      "JIRA_TIMEOUT_SECONDS",
      "SOSVAULT_LISTEN",
      "SOSVAULT_AUTH",
      "JIRA_MOCK_MODE",
    ]
  ) {
    assert.ok(all.some((p) => p.startsWith(name)), `${name} should be reported: ${all.join("; ")}`);
  }
  assert.match(
    problems({ TOKEN_VAULT_MASTER_KEY: KEY_HEX, JIRA_CONNECTION_TTL_SECONDS: "2592001" }).join(),
    /at most 2592000/,
  );
});

Deno.test("parseConfig() parses host lists, roots and a key file source", () => {
  const c = parseConfig({
    TOKEN_VAULT_MASTER_KEY_FILE: "/run/credentials/sosvault/master.key",
    JIRA_ALLOWED_HOSTS: " Jira.Example.com, jira2.example.com ,",
    SOSVAULT_ARTIFACT_DIR: "/srv/art/",
    SOSVAULT_ARTIFACT_ROOTS: "/srv/art:/var/log/app",
    SOSVAULT_PUBLIC_URL: "https://sosvault.example.com/",
  });
  assert.deepEqual(c.masterKey, { kind: "file", path: "/run/credentials/sosvault/master.key" });
  assert.deepEqual(c.allowedHosts, ["jira.example.com", "jira2.example.com"]);
  assert.equal(c.artifactDir, "/srv/art");
  assert.deepEqual(c.artifactRoots, ["/srv/art", "/var/log/app"]);
  assert.equal(c.publicUrl, "https://sosvault.example.com");
  assert.match(
    problems({ TOKEN_VAULT_MASTER_KEY: KEY_HEX, TOKEN_VAULT_MASTER_KEY_FILE: "/x" }).join(),
    /both set/,
  );
});
