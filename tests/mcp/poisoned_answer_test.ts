/**
 * One poisoned Jira answer does not lock an issue (issue 14, item 2): when Jira's answer quotes
 * the caller's own PAT (someone attached a file whose name carries it), jira_list_attachments
 * still answers, with [redacted] in the token's place, a warning telling the user to rotate the
 * token, and a `secret_in_upstream` security event, and the PAT appears in no response, no MCP
 * payload, no event and no log line.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { connectMcp } from "../helpers/mcp.ts";

Deno.test("a listing whose file names quote the caller's PAT is redacted, warned about and recorded, never refused", async () => {
  const w = await startWorld();
  const mcpLog = `${w.server.dir}/mcp.log`;
  const alice = await connectMcp(w.server.url, w.alice.token, { recordFile: mcpLog });
  try {
    const pat = w.alice.pat;
    w.jira.jira.addIssue({
      key: "SUP-9",
      browsers: ["alice.jira"],
      attachments: [
        { filename: `notes-${pat}.txt`, size: 5, author: "alice.jira" },
        { filename: `url-${encodeURIComponent(pat)}.log`, size: 6 },
        { filename: "sosreport-a.tar.xz", size: 1234 },
      ],
    });
    const id = await w.connect(w.alice);

    // Twice: the second listing is not locked out by the first.
    for (let round = 0; round < 2; round++) {
      const r = await alice.call("jira_list_attachments", {
        connection_id: id,
        issue_key: "SUP-9",
      });
      assert.ok(!r.isError, JSON.stringify(r));
      const s = r.structuredContent;
      assert.equal(s.issue_key, "SUP-9");
      assert.deepEqual(s.attachments.map((a: { filename: string }) => a.filename), [
        "notes-[redacted].txt",
        "url-[redacted].log",
        "sosreport-a.tar.xz",
      ]);
      assert.equal(s.warnings?.length, 1);
      assert.equal(s.warnings[0].code, "secret_in_upstream");
      assert.match(s.warnings[0].message, /token/i);
      assert.match(s.warnings[0].message, /revoke/i);
      // The text fallback carries the warning too, for clients that show only text.
      assert.match(r.content[0].text, /warnings\.0\.code: secret_in_upstream/);
      assert.ok(!JSON.stringify(r).includes(pat));
      assert.ok(!JSON.stringify(r).includes(encodeURIComponent(pat)));
    }

    const res = await w.server.call("GET", "/api/security-events?type=secret_in_upstream", {
      token: w.alice.token,
    });
    assert.equal(res.status, 200);
    const events = res.body.events as Array<Record<string, unknown>>;
    assert.equal(events.length, 2, "one event per poisoned answer");
    for (const e of events) {
      assert.equal(e.user, "alice");
      assert.equal(e.connection_id, id);
      assert.equal(e.issue_key, "SUP-9");
      assert.equal(e.source, "mcp");
    }
    // The listing itself still counts as a successful list.
    const lists = await w.server.services.events.list({ type: "list" });
    assert.ok(lists.some((e) => e.issue_key === "SUP-9" && e.outcome === "success"));

    // Security: the canary is nowhere it must not be.
    assert.ok(!res.text.includes(pat), "events API");
    assert.ok(!w.server.logs.join("\n").includes(pat), "server log");
    assert.ok(!(await Deno.readTextFile(mcpLog)).includes(pat), "MCP payloads");
    assert.ok(!JSON.stringify(await w.server.services.events.list({})).includes(pat), "events");
  } finally {
    await alice.close();
    await w.close();
  }
});

Deno.test("an answer without the caller's token carries no warning and records no secret_in_upstream", async () => {
  const w = await startWorld();
  const alice = await connectMcp(w.server.url, w.alice.token);
  try {
    w.jira.jira.addIssue({
      key: "SUP-8",
      browsers: ["alice.jira"],
      attachments: [{ filename: "plain.txt", size: 1 }],
    });
    const id = await w.connect(w.alice);
    const r = await alice.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-8" });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(r.structuredContent.warnings, undefined);
    assert.equal((await w.server.services.events.list({ type: "secret_in_upstream" })).length, 0);
  } finally {
    await alice.close();
    await w.close();
  }
});

Deno.test("attaching to an issue whose listing quotes the caller's PAT: uploaded, warned about and recorded", async () => {
  const w = await startWorld();
  const alice = await connectMcp(w.server.url, w.alice.token);
  try {
    const pat = w.alice.pat;
    w.jira.jira.addIssue({
      key: "SUP-7",
      browsers: ["alice.jira"],
      attachments: [{ filename: `notes-${pat}.txt`, size: 5 }],
    });
    const id = await w.connect(w.alice);
    const dir = `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(`${dir}/report.txt`, "a report\n", { mode: 0o600 });
    const r = await alice.call("jira_attach_artifact", {
      connection_id: id,
      issue_key: "SUP-7",
      artifact_ref: `${dir}/report.txt`,
    });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(r.structuredContent.attachment.filename, "report.txt");
    assert.deepEqual(r.structuredContent.warnings?.map((x: { code: string }) => x.code), [
      "secret_in_upstream",
    ]);
    assert.ok(!JSON.stringify(r).includes(pat));
    const events = await w.server.services.events.list({ type: "secret_in_upstream" });
    assert.equal(events.length, 1);
    assert.equal(events[0].connection_id, id);
    assert.equal(events[0].issue_key, "SUP-7");
    assert.ok(!JSON.stringify(events).includes(pat));
  } finally {
    await alice.close();
    await w.close();
  }
});
