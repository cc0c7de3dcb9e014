/** SOSVAULT_AUTH=oidc refuses to start on a configuration it cannot run safely. */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../src/config.ts";
import { freshDir } from "../helpers/paths.ts";
import { runSosvault } from "../helpers/process.ts";
import { randomMasterKey } from "../helpers/server.ts";

const KEY = "11".repeat(32);

function problems(env: Record<string, string>): string[] {
  try {
    parseConfig({ TOKEN_VAULT_MASTER_KEY: KEY, SOSVAULT_AUTH: "oidc", ...env });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("oidc mode: defaults, and the audience follows the public URL", () => {
  const c = parseConfig({
    TOKEN_VAULT_MASTER_KEY: KEY,
    SOSVAULT_AUTH: "oidc",
    SOSVAULT_OIDC_ISSUER: "https://idp.example.com/realms/acme",
    SOSVAULT_PUBLIC_URL: "https://sosvault.example.com",
  });
  assert.deepEqual(c.oidc, {
    issuer: "https://idp.example.com/realms/acme",
    audience: undefined,
    scope: "sosvault",
    userClaim: "preferred_username",
    groupsClaim: "groups",
    adminGroup: undefined,
    clientId: undefined,
    clientSecretFile: undefined,
  });
  assert.equal(parseConfig({ TOKEN_VAULT_MASTER_KEY: KEY }).oidc, undefined, "tokens mode");
});

Deno.test("oidc mode refuses: no issuer, plain-HTTP issuer off loopback, no derivable audience", () => {
  assert.match(problems({}).join("\n"), /SOSVAULT_OIDC_ISSUER is missing/);
  assert.match(
    problems({ SOSVAULT_OIDC_ISSUER: "http://idp.example.com" }).join("\n"),
    /must be https:\/\/ \(plain http is allowed on loopback only\)/,
  );
  // Loopback HTTP is fine (a local IdP in development).
  parseConfig({
    TOKEN_VAULT_MASTER_KEY: KEY,
    SOSVAULT_AUTH: "oidc",
    SOSVAULT_OIDC_ISSUER: "http://127.0.0.1:9000",
  });
  const prod = problems({
    SOSVAULT_ENV: "production",
    SOSVAULT_OIDC_ISSUER: "https://idp.example.com",
  }).join("\n");
  assert.match(prod, /needs an audience: set SOSVAULT_PUBLIC_URL/);
  const wide = problems({
    SOSVAULT_LISTEN: "0.0.0.0:8080",
    SOSVAULT_OIDC_ISSUER: "https://idp.example.com",
  }).join("\n");
  assert.match(wide, /needs an audience/);
  assert.match(
    problems({ SOSVAULT_OIDC_ISSUER: "https://idp.example.com", SOSVAULT_OIDC_CLIENT_ID: "x" })
      .join("\n"),
    /go together/,
  );
  assert.match(
    problems({ SOSVAULT_OIDC_ISSUER: "https://idp.example.com", SOSVAULT_OIDC_SCOPE: "a b" })
      .join("\n"),
    /SOSVAULT_OIDC_SCOPE must be one OAuth scope/,
  );
});

Deno.test("sosvault serve exits 78 with a plain-HTTP issuer outside loopback", async () => {
  const dir = await freshDir("oidc-cli");
  const r = await runSosvault(dir, ["serve"], {
    TOKEN_VAULT_MASTER_KEY: randomMasterKey(),
    SOSVAULT_KV_PATH: `${dir}/kv/sosvault.kv`,
    SOSVAULT_AUTH: "oidc",
    SOSVAULT_OIDC_ISSUER: "http://idp.example.com",
    SOSVAULT_PUBLIC_URL: "https://sosvault.example.com",
  });
  assert.equal(r.code, 78);
  assert.match(r.stderr, /SOSVAULT_OIDC_ISSUER must be https:\/\//);
});

Deno.test("sosvault serve exits 78 in production when no audience can be derived", async () => {
  const dir = await freshDir("oidc-cli");
  const r = await runSosvault(dir, ["serve"], {
    TOKEN_VAULT_MASTER_KEY: randomMasterKey(),
    SOSVAULT_KV_PATH: `${dir}/kv/sosvault.kv`,
    SOSVAULT_ENV: "production",
    SOSVAULT_AUTH: "oidc",
    SOSVAULT_OIDC_ISSUER: "https://idp.example.com",
  });
  assert.equal(r.code, 78);
  assert.match(r.stderr, /needs an audience/);
});
