/**
 * The newcomer's path: `deno task dev` — dev auth, the embedded fake Jira, and a dev master key
 * generated once with mode 0600 — and the README's curl walk-through against it.
 */
import assert from "node:assert/strict";
import { freshDir } from "../helpers/paths.ts";
import { serveProcess } from "../helpers/process.ts";

/** The demo PAT of the README: Data Center-shaped, accepted only by the embedded fake Jira. */
const DEMO_PAT = "MTAwMDAwMDAwMDAxOnNvc3ZhdWx0LWRlbW8tb25seSEh";

Deno.test("dev mode generates its master key once (0600) and serves the README walk-through", async () => {
  const dir = await freshDir("dev");
  const env = {
    SOSVAULT_AUTH: "dev",
    JIRA_MOCK_MODE: "1",
    SOSVAULT_KV_PATH: `${dir}/.data/sosvault.kv`,
  };
  const server = await serveProcess(dir, env);
  let id: string;
  try {
    assert.ok(
      server.lines.some((l) => /JIRA_MOCK_MODE=1/.test(l) && /"level":"warn"/.test(l)),
      "mock mode warns at start",
    );
    const health = await (await fetch(`${server.url}/health`)).json();
    assert.equal(health.status, "healthy");

    const created = await fetch(`${server.url}/api/jira/connections`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ base_url: "https://jira.example.com", pat: DEMO_PAT }),
    });
    const c = await created.json();
    assert.equal(created.status, 201, JSON.stringify(c));
    assert.equal(c.jira_user.name, "mock-100000000001");
    id = c.connection_id;

    const status = await (await fetch(`${server.url}/api/jira/connections/${id}?verify=1`)).json();
    assert.equal(status.status, "connected");
    const revoked =
      await (await fetch(`${server.url}/api/jira/connections/${id}`, { method: "DELETE" })).json();
    assert.equal(revoked.status, "revoked");
  } finally {
    assert.equal(await server.stop(), 0);
  }
  const key = await Deno.stat(`${dir}/.data/dev-master.key`);
  assert.equal(key.mode! & 0o777, 0o600);
  const first = await Deno.readTextFile(`${dir}/.data/dev-master.key`);

  // A restart reuses the same key, so the vault still opens and the connection is still revoked.
  const again = await serveProcess(dir, env);
  try {
    const status = await (await fetch(`${again.url}/api/jira/connections/${id}`)).json();
    assert.equal(status.status, "revoked");
  } finally {
    await again.stop();
  }
  assert.equal(await Deno.readTextFile(`${dir}/.data/dev-master.key`), first);
  assert.ok(!server.lines.join("\n").includes(DEMO_PAT));
});

Deno.test("dev auth refuses a non-loopback listener and production mode (exit 78)", async () => {
  const dir = await freshDir("dev");
  const { runSosvault } = await import("../helpers/process.ts");
  const wide = await runSosvault(dir, ["serve"], {
    SOSVAULT_AUTH: "dev",
    SOSVAULT_LISTEN: "0.0.0.0:0",
    SOSVAULT_KV_PATH: `${dir}/kv`,
  });
  assert.equal(wide.code, 78);
  assert.match(wide.stderr, /loopback/);
  const prod = await runSosvault(dir, ["serve"], {
    SOSVAULT_AUTH: "dev",
    SOSVAULT_ENV: "production",
    JIRA_MOCK_MODE: "1",
    SOSVAULT_KV_PATH: `${dir}/kv`,
  });
  assert.equal(prod.code, 78);
  assert.match(prod.stderr, /refused when SOSVAULT_ENV=production/);
});
