/**
 * Every tool over the official SDK client, against the real server and the fake Jira on HTTPS:
 * its success path (structuredContent valid and equal to the text fallback) and its errors.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startWorld, type World } from "../helpers/world.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { TestClock } from "../helpers/clock.ts";
import { keyValueLines } from "../../src/mcp/results.ts";
import { randomBytes, symlink } from "../helpers/files.ts";

// deno-lint-ignore no-explicit-any
function assertFallbackMatches(result: any) {
  assert.ok(!result.isError, JSON.stringify(result));
  const text: string = result.content[0].text;
  assert.deepEqual(text.split("\n"), keyValueLines(result.structuredContent));
  for (const line of text.split("\n")) assert.match(line, /^[a-z_0-9.]+: /);
}

async function setup(options: Parameters<typeof startWorld>[0] = {}) {
  const w = await startWorld(options);
  const alice = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const bob = await connectMcp(w.server.url, w.bob.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const artifacts = `${w.server.env.SOSVAULT_ARTIFACT_DIR}`;
  await Deno.mkdir(`${artifacts}/alice`, { recursive: true, mode: 0o700 });
  await Deno.mkdir(`${artifacts}/bob`, { recursive: true, mode: 0o700 });
  return {
    w,
    alice,
    bob,
    artifacts,
    async close() {
      await alice.close();
      await bob.close();
      await w.close();
    },
  };
}

async function writeArtifact(path: string, bytes: Uint8Array) {
  await Deno.writeFile(path, bytes, { mode: 0o600 });
  return createHash("sha256").update(bytes).digest("hex");
}

async function connectVia(w: World, who: "alice" | "bob") {
  return await w.connect(w[who]);
}

Deno.test("jira_connect returns a one-time connect link for the caller, valid ten minutes", async () => {
  const clock = new TestClock();
  const t = await setup({ clock });
  try {
    const r = await t.alice.call("jira_connect", {});
    assertFallbackMatches(r);
    const { connect_url, expires_at, opened_by_client } = r.structuredContent;
    assert.ok(connect_url.startsWith(`${t.w.server.url}/connect/`), connect_url);
    assert.equal(Date.parse(expires_at) - clock.now().getTime(), 600_000);
    assert.equal(opened_by_client, false, "this client declared no URL elicitation");
    const page = await fetch(connect_url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /alice/);

    const prefilled = await t.alice.call("jira_connect", { base_url: t.w.jira.url });
    assert.ok(!prefilled.isError);
    assert.equal(
      toolError(await t.alice.call("jira_connect", { base_url: "http://jira.example.com" })).code,
      "invalid_input",
    );
    assert.equal(
      toolError(await t.alice.call("jira_connect", { base_url: "https://jira.elsewhere.example" }))
        .code,
      "forbidden",
    );
  } finally {
    await t.close();
  }
});

Deno.test("jira_connect asks a client that supports URL elicitation to open the link", async () => {
  const w = await startWorld();
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    capabilities: { elicitation: { url: {} } },
  });
  const asked: string[] = [];
  const { ElicitRequestSchema } = await import("@modelcontextprotocol/sdk/types.js");
  mcp.client.setRequestHandler(ElicitRequestSchema, (req: { params: unknown }) => {
    asked.push((req.params as { url: string }).url);
    return { action: "accept" };
  });
  try {
    const r = await mcp.call("jira_connect", {});
    assert.equal(r.structuredContent.opened_by_client, true);
    assert.deepEqual(asked, [r.structuredContent.connect_url]);
  } finally {
    await mcp.close();
    await w.close();
  }
});

Deno.test("jira_connection_status and jira_revoke_connection: success, idempotence, and their errors", async () => {
  const t = await setup();
  try {
    const id = await connectVia(t.w, "alice");
    const status = await t.alice.call("jira_connection_status", { connection_id: id });
    assertFallbackMatches(status);
    assert.equal(status.structuredContent.status, "connected");
    assert.equal(status.structuredContent.jira_user.name, "alice.jira");

    assert.equal(
      toolError(await t.alice.call("jira_connection_status", { connection_id: "nope" })).code,
      "invalid_input",
    );
    assert.equal(
      toolError(
        await t.alice.call("jira_connection_status", { connection_id: "jc_" + "Z".repeat(32) }),
      ).code,
      "not_found",
    );

    const revoked = await t.alice.call("jira_revoke_connection", { connection_id: id });
    assertFallbackMatches(revoked);
    assert.equal(revoked.structuredContent.status, "revoked");
    const again = await t.alice.call("jira_revoke_connection", { connection_id: id });
    assert.equal(again.structuredContent.revoked_at, revoked.structuredContent.revoked_at);
    assert.equal(
      (await t.alice.call("jira_connection_status", { connection_id: id })).structuredContent
        .status,
      "revoked",
    );
    assert.equal(
      toolError(
        await t.alice.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-1" }),
      ).code,
      "connection_revoked",
    );
  } finally {
    await t.close();
  }
});

Deno.test("a tool error's request_id is the X-Request-Id of the HTTP answer that carried it, new for every call", async () => {
  const w = await startWorld();
  const seen: string[] = [];
  const alice = await connectMcp(w.server.url, w.alice.token, {
    onResponse: (res) => seen.push(res.headers.get("x-request-id") ?? ""),
  });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      seen.length = 0;
      const err = toolError(
        await alice.call("jira_connection_status", { connection_id: "jc_" + "Z".repeat(32) }),
      );
      assert.equal(err.code, "not_found");
      assert.match(err.request_id, /^req_[A-Za-z0-9_-]{16}$/);
      // The client may open its GET stream meanwhile: that is another request with its own id.
      assert.ok(seen.includes(err.request_id), `${err.request_id} not among ${seen}`);
      ids.push(err.request_id);
    }
    assert.notEqual(ids[0], ids[1]);
  } finally {
    await alice.close();
    await w.close();
  }
});

Deno.test("jira_list_attachments lists an issue's files, and maps Jira's answers to contract codes", async () => {
  const clock = new TestClock();
  const t = await setup({ clock, env: { JIRA_CONNECTION_TTL_SECONDS: "600" } });
  try {
    t.w.jira.jira.addIssue({
      key: "SUP-7",
      attachments: [{ filename: "sosreport-a.tar.xz", size: 1234, author: "alice.jira" }, {
        filename: "notes – é.txt",
        size: 5,
      }],
    });
    const id = await connectVia(t.w, "alice");
    const r = await t.alice.call("jira_list_attachments", {
      connection_id: id,
      issue_key: "sup-7",
    });
    assertFallbackMatches(r);
    assert.equal(r.structuredContent.issue_key, "SUP-7");
    assert.deepEqual(r.structuredContent.attachments.map((a: { filename: string }) => a.filename), [
      "sosreport-a.tar.xz",
      "notes – é.txt",
    ]);
    for (const a of r.structuredContent.attachments) assert.match(a.created, /Z$/);

    assert.equal(
      toolError(
        await t.alice.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-999" }),
      ).code,
      "not_found",
    );
    assert.equal(
      toolError(
        await t.alice.call("jira_list_attachments", { connection_id: id, issue_key: "not a key" }),
      ).code,
      "invalid_input",
    );
    t.w.jira.jira.setMode("server_error");
    assert.equal(
      toolError(
        await t.alice.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-7" }),
      ).code,
      "upstream_unavailable",
    );
    t.w.jira.jira.setMode("normal");
    t.w.jira.jira.revokePat(t.w.alice.pat);
    assert.equal(
      toolError(
        await t.alice.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-7" }),
      ).code,
      "invalid_credentials",
    );
    clock.advance(600_000);
    assert.equal(
      toolError(
        await t.alice.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-7" }),
      ).code,
      "connection_expired",
    );
    const events = await t.w.server.services.events.list({ type: "list" });
    assert.ok(events.some((e) => e.issue_key === "SUP-7" && e.outcome === "success"));
  } finally {
    await t.close();
  }
});

Deno.test("jira_attach_artifact streams the file: Jira receives its exact bytes with the Bearer PAT and the XSRF header", async () => {
  const t = await setup();
  try {
    t.w.jira.jira.addIssue({ key: "SUP-9", attachments: [{ filename: "report.bin", size: 3 }] });
    const id = await connectVia(t.w, "alice");
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const path = `${t.artifacts}/alice/report.bin`;
    const sha = await writeArtifact(path, bytes);
    const progress: number[] = [];
    const r = await t.alice.call("jira_attach_artifact", {
      connection_id: id,
      issue_key: "SUP-9",
      artifact_ref: path,
    }, (p) => progress.push(p.progress));
    assertFallbackMatches(r);
    const out = r.structuredContent;
    assert.equal(out.issue_key, "SUP-9");
    assert.equal(out.attachment.filename, "report.bin");
    assert.equal(out.attachment.size, bytes.length);
    assert.equal(out.replaced_duplicates, false);
    assert.equal(out.existing_same_name.length, 1);

    const upload = t.w.jira.jira.requests.find((q) =>
      q.method === "POST" && q.path.endsWith("/attachments")
    )!;
    assert.equal(upload.fileSha256, sha);
    assert.equal(upload.headers["authorization"], `Bearer ${t.w.alice.pat}`);
    assert.equal(upload.headers["x-atlassian-token"], "no-check");
    assert.equal(upload.contentLength, upload.bodyBytes, "the exact Content-Length was sent");
    assert.equal(upload.transferEncoding ?? null, null);
    assert.deepEqual(upload.violations, []);
    assert.ok(progress.length >= 2, "progress notifications arrived");
    assert.equal(progress.at(-1), bytes.length);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i] >= progress[i - 1]);

    const named = await t.alice.call("jira_attach_artifact", {
      connection_id: id,
      issue_key: "SUP-9",
      artifact_ref: path,
      filename: "renamed.bin",
    });
    assert.equal(named.structuredContent.attachment.filename, "renamed.bin");
    assert.deepEqual(named.structuredContent.existing_same_name, []);
    const [event] = await t.w.server.services.events.list({ type: "attach" });
    assert.equal(event.issue_key, "SUP-9");
  } finally {
    await t.close();
  }
});

Deno.test("jira_attach_artifact refuses bad artifacts before any byte leaves: each with its code", async () => {
  const t = await setup({ env: { JIRA_ATTACHMENT_MAX_BYTES: "1048576" } });
  try {
    const id = await connectVia(t.w, "alice");
    const a = `${t.artifacts}/alice`;
    await writeArtifact(`${a}/ok.txt`, new TextEncoder().encode("hello"));
    await writeArtifact(`${a}/empty.txt`, new Uint8Array());
    await writeArtifact(`${a}/big.bin`, new Uint8Array(1048577));
    await writeArtifact(`${t.artifacts}/bob/bobs.txt`, new TextEncoder().encode("bob's"));
    await symlink("/etc/passwd", `${a}/passwd-link`);
    await symlink(`${t.artifacts}/bob/bobs.txt`, `${a}/bob-link`);
    await Deno.mkdir(`${a}/dir`);
    const cases: Array<[string, string]> = [
      ["/etc/passwd", "artifact_invalid"],
      [`${a}/passwd-link`, "artifact_invalid"],
      [`${a}/../bob/bobs.txt`, "artifact_invalid"],
      [`${t.artifacts}/bob/bobs.txt`, "artifact_invalid"],
      [`${a}/bob-link`, "artifact_invalid"],
      [`${a}/empty.txt`, "artifact_invalid"],
      [`${a}/missing.txt`, "artifact_invalid"],
      [`${a}/dir`, "artifact_invalid"],
      ["relative/path.txt", "artifact_invalid"],
      [`${a}/big.bin`, "payload_too_large"],
    ];
    t.w.jira.jira.clearRequests();
    for (const [ref, code] of cases) {
      const err = toolError(
        await t.alice.call("jira_attach_artifact", {
          connection_id: id,
          issue_key: "SUP-1",
          artifact_ref: ref,
        }),
      );
      assert.equal(err.code, code, ref);
    }
    assert.equal(t.w.jira.jira.requests.length, 0, "Jira received nothing");

    t.w.jira.jira.setOptions({ uploadLimit: 3 });
    const overJira = toolError(
      await t.alice.call("jira_attach_artifact", {
        connection_id: id,
        issue_key: "SUP-1",
        artifact_ref: `${a}/ok.txt`,
      }),
    );
    assert.equal(overJira.code, "payload_too_large");
    assert.match(overJira.message, /Jira's attachment limit of 3 bytes/);
    assert.equal(t.w.jira.jira.requests.filter((q) => q.method === "POST").length, 0);

    t.w.jira.jira.setOptions({ uploadLimit: 10_000_000 });
    t.w.jira.jira.addIssue({ key: "RO-1", attachers: [] });
    assert.equal(
      toolError(
        await t.alice.call("jira_attach_artifact", {
          connection_id: id,
          issue_key: "RO-1",
          artifact_ref: `${a}/ok.txt`,
        }),
      ).code,
      "forbidden",
    );
    assert.equal(
      toolError(
        await t.alice.call("jira_attach_artifact", {
          connection_id: id,
          issue_key: "NOPE-1",
          artifact_ref: `${a}/ok.txt`,
        }),
      ).code,
      "not_found",
    );
    assert.equal(
      toolError(
        await t.alice.call("jira_attach_artifact", {
          connection_id: id,
          issue_key: "SUP-1",
          artifact_ref: `${a}/ok.txt`,
          filename: "../x",
        }),
      ).code,
      "invalid_input",
    );
  } finally {
    await t.close();
  }
});

Deno.test("a revoke while a slow upload is in flight cancels it, and Jira gets no further request with that PAT", async () => {
  const t = await setup();
  try {
    const id = await connectVia(t.w, "alice");
    const path = `${t.artifacts}/alice/slow.bin`;
    await writeArtifact(path, new Uint8Array(8 * 1024 * 1024));
    t.w.jira.jira.setOptions({ uploadBytesPerSecond: 512 * 1024 });
    let sawProgress!: () => void;
    const started = new Promise<void>((r) => (sawProgress = r));
    const pending = t.alice.call("jira_attach_artifact", {
      connection_id: id,
      issue_key: "SUP-1",
      artifact_ref: path,
    }, (p) => {
      if (p.progress > 0) sawProgress();
    });
    await started;
    const revoked = await t.w.server.call("DELETE", `/api/jira/connections/${id}`, {
      token: t.w.alice.token,
    });
    assert.equal(revoked.status, 200);
    const after = t.w.jira.jira.requests.length;
    const err = toolError(await pending);
    assert.equal(err.code, "connection_revoked");
    assert.match(err.message, /cancelled/);
    const upload = t.w.jira.jira.requests.find((q) => q.method === "POST");
    assert.ok(!upload || (upload.bodyBytes ?? 0) < 8 * 1024 * 1024, "the upload did not complete");
    assert.equal(
      t.w.jira.jira.requests.length,
      after,
      "no new request reached Jira after the revoke",
    );
    assert.equal(t.w.jira.jira.issue("SUP-1")!.attachments.length, 0);
  } finally {
    await t.close();
  }
});
