/**
 * The same end-to-end suite for both kinds of Jira (issue 12), one test per kind so CI time
 * stays bounded: connect (HTTP intake) → status → list → attach 1 GiB → revoke (MCP), against
 * the fake Data Center server and the fake Cloud site over loopback HTTPS. The 1 GiB artifact is
 * a sparse file in /tmp, streamed with its exact Content-Length; the fake hashes what it got.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startWorld } from "../helpers/world.ts";
import { startCloudWorld } from "../helpers/cloud_world.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import type { TestServer } from "../helpers/server.ts";
import type { RecordedRequest } from "../../src/jira/fake/mod.ts";

const GIB = 1024 ** 3;

interface Kind {
  deployment: "data_center" | "cloud";
  server: TestServer;
  user: { token: string };
  connect(): Promise<string>;
  requests(): RecordedRequest[];
  authorization: string;
  secrets: string[];
}

/** sha256 of `size` zero bytes, hashed in memory (what a sparse file reads as). */
function zeroSha256(size: number): string {
  const chunk = new Uint8Array(1024 * 1024);
  const h = createHash("sha256");
  for (let left = size; left > 0; left -= chunk.length) {
    h.update(left >= chunk.length ? chunk : chunk.subarray(0, left));
  }
  return h.digest("hex");
}

async function suite(kind: Kind, dir: string) {
  const path = `${dir}/sosreport-1gib.tar.xz`;
  const file = await Deno.open(path, { create: true, write: true, mode: 0o600 });
  await file.truncate(GIB);
  file.close();

  const id = await kind.connect();
  const mcp = await connectMcp(kind.server.url, kind.user.token, {
    recordFile: `${kind.server.dir}/mcp.log`,
  });
  try {
    const status = await mcp.call("jira_connection_status", { connection_id: id });
    assert.ok(!status.isError, JSON.stringify(status));
    assert.equal(status.structuredContent.status, "connected");
    assert.equal(status.structuredContent.deployment, kind.deployment);

    const list = await mcp.call("jira_list_attachments", { connection_id: id, issue_key: "sup-1" });
    assert.ok(!list.isError, JSON.stringify(list));
    assert.equal(list.structuredContent.issue_key, "SUP-1");
    assert.deepEqual(list.structuredContent.attachments, []);

    let last = 0;
    const attached = await mcp.call("jira_attach_artifact", {
      connection_id: id,
      issue_key: "SUP-1",
      artifact_ref: path,
    }, (p) => (last = p.progress));
    assert.ok(!attached.isError, JSON.stringify(attached));
    assert.equal(attached.structuredContent.attachment.size, GIB);
    assert.equal(last, GIB, "progress reached the whole file");
    const post = kind.requests().find((r) => r.method === "POST" && r.fileBytes === GIB)!;
    assert.ok(post, "the fake received the upload");
    assert.equal(post.fileSha256, zeroSha256(GIB), "the fake got exactly the file's bytes");
    assert.equal(post.contentLength, post.bodyBytes, "exact Content-Length, not chunked");
    assert.equal(post.transferEncoding ?? null, null);
    assert.equal(post.headers["authorization"], kind.authorization);
    assert.equal(post.headers["x-atlassian-token"], "no-check");
    assert.ok((post.maxHeldBytes ?? 0) < 16 * 1024 * 1024, "the fake streamed it too");

    const again = await mcp.call("jira_list_attachments", {
      connection_id: id,
      issue_key: "SUP-1",
    });
    assert.equal(again.structuredContent.attachments.length, 1);

    const revoked = await mcp.call("jira_revoke_connection", { connection_id: id });
    assert.equal(revoked.structuredContent.status, "revoked");
    const after = toolError(
      await mcp.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-1" }),
    );
    assert.equal(after.code, "connection_revoked");

    const seen = JSON.stringify([status, list, attached, again, revoked]) +
      kind.server.logs.join("\n");
    for (const s of kind.secrets) assert.ok(!seen.includes(s), "a secret reached MCP or the log");
  } finally {
    await mcp.close();
  }
}

async function withTmp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "sosvault-e2e-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The sparse file's directory is the one artifact root; the limit leaves room for 1 GiB. */
function env(artifactRoot: string): Record<string, string> {
  return { JIRA_ATTACHMENT_MAX_BYTES: String(2 * GIB), SOSVAULT_ARTIFACT_ROOTS: artifactRoot };
}

Deno.test("Data Center end to end: connect, status, list, attach 1 GiB, revoke", async () => {
  await withTmp(async (dir) => {
    const e = env(dir);
    const w = await startWorld({ env: e });
    try {
      w.jira.jira.setOptions({ uploadLimit: 2 * GIB });
      await suite({
        deployment: "data_center",
        server: w.server,
        user: w.alice,
        connect: () => w.connect(w.alice),
        requests: () => w.jira.jira.requests,
        authorization: `Bearer ${w.alice.pat}`,
        secrets: [w.alice.pat],
      }, dir);
    } finally {
      await w.close();
    }
  });
});

Deno.test("Jira Cloud end to end: connect, status, list, attach 1 GiB, revoke", async () => {
  await withTmp(async (dir) => {
    const e = env(dir);
    const w = await startCloudWorld({ env: e, uploadLimit: 2 * GIB });
    try {
      await suite({
        deployment: "cloud",
        server: w.server,
        user: w.alice,
        connect: () => w.connect(w.alice),
        requests: () => w.cloud.requests,
        authorization: `Basic ${btoa(`${w.alice.email}:${w.alice.api}`)}`,
        secrets: [w.alice.api, w.alice.email, btoa(`${w.alice.email}:${w.alice.api}`)],
      }, dir);
    } finally {
      await w.close();
    }
  });
});
