/**
 * Incident response: `connections revoke-all` and `users remove` revoke connections, and an
 * upload already in flight on one of them is cancelled — when the revoke runs in the serving
 * process, and when it runs as the `sosvault` command in another process on the same KV file.
 */
import assert from "node:assert/strict";
import { startWorld, type World } from "../helpers/world.ts";
import { connectMcp, type McpTestClient, toolError } from "../helpers/mcp.ts";
import { runSosvault } from "../helpers/process.ts";
import { kvKeys } from "../../src/kv_keys.ts";

interface Upload {
  w: World;
  id: string;
  mcp: McpTestClient;
  pending: Promise<unknown>;
}

/** Starts a slow upload on a fresh connection of alice's and waits until bytes are moving. */
async function slowUpload(w: World): Promise<Upload> {
  const id = await w.connect(w.alice);
  const dir = `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.writeFile(`${dir}/slow.bin`, new Uint8Array(8 * 1024 * 1024), { mode: 0o600 });
  w.jira.jira.setOptions({ uploadBytesPerSecond: 512 * 1024 });
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  let moving!: () => void;
  const started = new Promise<void>((r) => (moving = r));
  const pending = mcp.call("jira_attach_artifact", {
    connection_id: id,
    issue_key: "SUP-1",
    artifact_ref: `${dir}/slow.bin`,
  }, (p) => {
    if (p.progress > 0) moving();
  });
  await started;
  return { w, id, mcp, pending };
}

async function assertCancelled(u: Upload) {
  const err = toolError(await u.pending);
  assert.equal(err.code, "connection_revoked");
  assert.match(err.message, /cancelled/);
  assert.equal(u.w.jira.jira.issue("SUP-1")!.attachments.length, 0, "the upload did not complete");
  const record = (await u.w.server.services.kv.get<{ status: string }>(kvKeys.connection(u.id)))
    .value;
  assert.equal(record?.status, "revoked");
  assert.equal((await u.w.server.services.kv.get(kvKeys.secret(u.id))).versionstamp, null);
}

function cliEnv(w: World) {
  return {
    SOSVAULT_KV_PATH: w.server.env.SOSVAULT_KV_PATH!,
    TOKEN_VAULT_MASTER_KEY: w.server.env.TOKEN_VAULT_MASTER_KEY!,
  };
}

Deno.test("revokeAll() cancels an upload in flight on a revoked connection, and leaves other users alone", async () => {
  const w = await startWorld();
  let u: Upload | undefined;
  try {
    const bobs = await w.connect(w.bob);
    u = await slowUpload(w);
    const n = await w.server.services.connections.revokeAll(
      { user: "operator", requestId: "cli", source: "cli" },
      "alice",
    );
    assert.equal(n, 1);
    await assertCancelled(u);
    const bob = await w.server.call("GET", `/api/jira/connections/${bobs}`, { token: w.bob.token });
    assert.equal(bob.body.status, "connected");
  } finally {
    await u?.mcp.close();
    await w.close();
  }
});

Deno.test("sosvault connections revoke-all, run as another process, cancels an upload in flight on the server", async () => {
  const w = await startWorld();
  let u: Upload | undefined;
  try {
    u = await slowUpload(w);
    const r = await runSosvault(w.server.dir, ["connections", "revoke-all"], cliEnv(w));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Revoked 1 connection\./);
    await assertCancelled(u);
  } finally {
    await u?.mcp.close();
    await w.close();
  }
});

Deno.test("sosvault users remove, run as another process, revokes that user's connections and cancels their upload", async () => {
  const w = await startWorld();
  let u: Upload | undefined;
  try {
    const bobs = await w.connect(w.bob);
    const idle = await w.connect(w.alice);
    u = await slowUpload(w);
    const r = await runSosvault(w.server.dir, ["users", "remove", "alice"], cliEnv(w));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed user alice; revoked 2 connections\./);
    await assertCancelled(u);
    const idleRecord = await w.server.services.kv.get<{ status: string }>(kvKeys.connection(idle));
    assert.equal(idleRecord.value?.status, "revoked");
    const gone = await w.server.call("GET", "/api/jira/connections", { token: w.alice.token });
    assert.equal(gone.status, 401);
    const bob = await w.server.call("GET", `/api/jira/connections/${bobs}`, { token: w.bob.token });
    assert.equal(bob.body.status, "connected");
  } finally {
    await u?.mcp.close();
    await w.close();
  }
});
