/**
 * The MCP hot path is fast without remembering anything that revocation depends on: a user
 * removed, or a connection revoked, by another process sharing the KV file is refused on the
 * very next call, after the server has already served that user and connection.
 */
import assert from "node:assert/strict";
import { freshDir, TEST_CA_FILE } from "../helpers/paths.ts";
import { runSosvault, serveProcess } from "../helpers/process.ts";
import { randomMasterKey } from "../helpers/server.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";

async function setup() {
  const dir = await freshDir("hot-path");
  const jira = await startFakeJira();
  const pat = await newCanaryPat();
  jira.jira.addUser({ name: "alice.jira", displayName: "Alice Example" });
  jira.jira.addPat("alice.jira", pat);
  const env = {
    TOKEN_VAULT_MASTER_KEY: randomMasterKey(),
    SOSVAULT_KV_PATH: `${dir}/kv/sosvault.kv`,
    JIRA_ALLOWED_HOSTS: "127.0.0.1",
    JIRA_CA_FILE: TEST_CA_FILE,
    // The tool budget on, as in production.
    SOSVAULT_RATE_TOOLS: "1000/60",
  };
  const add = await runSosvault(dir, ["users", "add", "alice", "--json"], env);
  assert.equal(add.code, 0, add.stderr);
  const token: string = JSON.parse(add.stdout).token;
  const server = await serveProcess(dir, env);
  const res = await fetch(`${server.url}/api/jira/connections`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ base_url: jira.url, pat }),
  });
  assert.equal(res.status, 201);
  const { connection_id } = await res.json();
  const mcp = await connectMcp(server.url, token);
  return {
    dir,
    env,
    server,
    mcp,
    connection_id,
    async close() {
      await mcp.close();
      await server.stop();
      await jira.close();
    },
  };
}

Deno.test("a user removed by another process is refused on the very next MCP call", async () => {
  const w = await setup();
  try {
    for (let i = 0; i < 3; i++) {
      const ok = await w.mcp.call("jira_connection_status", { connection_id: w.connection_id });
      assert.ok(!ok.isError, JSON.stringify(ok));
    }
    const rm = await runSosvault(w.dir, ["users", "remove", "alice"], w.env);
    assert.equal(rm.code, 0, rm.stderr);
    await assert.rejects(
      w.mcp.call("jira_connection_status", { connection_id: w.connection_id }),
      /401|unauthenticated|not valid/i,
    );
  } finally {
    await w.close();
  }
});

Deno.test("a connection revoked by another process is refused on the very next MCP call", async () => {
  const w = await setup();
  try {
    const ok = await w.mcp.call("jira_connection_status", { connection_id: w.connection_id });
    assert.equal(ok.structuredContent.status, "connected");
    const rv = await runSosvault(w.dir, ["connections", "revoke-all", "--user", "alice"], w.env);
    assert.equal(rv.code, 0, rv.stderr);
    const after = await w.mcp.call("jira_connection_status", { connection_id: w.connection_id });
    assert.equal(after.structuredContent?.status ?? toolError(after).code, "revoked");
  } finally {
    await w.close();
  }
});
