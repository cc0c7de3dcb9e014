/**
 * Issue 14 item 2: one poisoned Jira answer does not lock an issue for good. An attachment
 * whose file name holds the caller's own PAT (put there in Jira by anyone) is listed with the
 * PAT replaced by `[redacted]`, the result tells the user to rotate the token, a
 * `secret_in_upstream` event names the connection and issue, and the PAT appears in no answer,
 * event or log line: listing and attaching, a URL-encoded PAT and the events API, Jira Cloud's
 * three secret forms, and an upload answer that quotes the token.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { connectMcp } from "../helpers/mcp.ts";
import { startCloudWorld } from "../helpers/cloud_world.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { assertNoLeak, needlesOf, overrideFake } from "../hardening/_helpers.ts";

Deno.test("jira_list_attachments and jira_attach_artifact redact the caller's PAT from Jira's answer and warn to rotate it", async () => {
  const w = await startWorld();
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const pat = w.alice.pat;
  const needles = needlesOf([pat]);
  try {
    const id = await w.connect(w.alice);
    w.jira.jira.addIssue({
      key: "SUP-3",
      browsers: ["alice.jira"],
      attachments: [
        { filename: "sosreport.tar.xz", size: 10, author: "alice.jira" },
        { filename: `notes-${pat}.txt`, size: 5, author: "alice.jira" },
        { filename: `${pat}`, size: 6, author: "alice.jira" },
      ],
    });

    // Listed twice: the second listing works as well as the first (nothing is locked).
    for (let round = 0; round < 2; round++) {
      const result = await mcp.call("jira_list_attachments", {
        connection_id: id,
        issue_key: "sup-3",
      });
      assert.ok(!result.isError, `round ${round}: ${JSON.stringify(result).slice(0, 300)}`);
      const out = result.structuredContent;
      assert.equal(out.issue_key, "SUP-3");
      assert.deepEqual(
        out.attachments.map((a: { filename: string }) => a.filename),
        ["sosreport.tar.xz", "notes-[redacted].txt", "[redacted]"],
      );
      assert.equal(out.warnings.length, 1);
      assert.equal(out.warnings[0].code, "secret_in_upstream");
      assert.match(out.warnings[0].message, /Revoke that token in Jira/);
      assert.match(result.content[0].text, /secret_in_upstream/, "text-only clients see it too");
      assertNoLeak(JSON.stringify(result), needles, `listing round ${round}`);
    }

    // Attaching to the poisoned issue: the pre-flight listing is redacted, the upload happens.
    const dir = `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(`${dir}/report.txt`, "hello\n", { mode: 0o600 });
    const attached = await mcp.call("jira_attach_artifact", {
      connection_id: id,
      issue_key: "SUP-3",
      artifact_ref: `${dir}/report.txt`,
    });
    assert.ok(!attached.isError, JSON.stringify(attached).slice(0, 300));
    assert.equal(attached.structuredContent.attachment.filename, "report.txt");
    assert.deepEqual(attached.structuredContent.existing_same_name, []);
    assert.equal(attached.structuredContent.warnings[0].code, "secret_in_upstream");
    assertNoLeak(JSON.stringify(attached), needles, "attach result");
    assert.equal(
      w.jira.jira.issue("SUP-3")?.attachments.at(-1)?.filename,
      "report.txt",
      "the upload reached Jira",
    );

    // A clean issue carries no warning at all.
    const clean = await mcp.call("jira_list_attachments", {
      connection_id: id,
      issue_key: "SUP-1",
    });
    assert.ok(!clean.isError);
    assert.equal("warnings" in clean.structuredContent, false);

    const events = await w.server.services.events.list({ type: "secret_in_upstream" });
    assert.equal(events.length, 3, "one per poisoned answer: two listings, one pre-flight");
    for (const e of events) {
      assert.equal(e.connection_id, id);
      assert.equal(e.issue_key, "SUP-3");
      assert.equal(e.user, "alice");
      assert.equal(e.source, "mcp");
    }
    assertNoLeak(JSON.stringify(events), needles, "the events");
    assert.equal(
      (await w.server.services.events.verify()).ok,
      true,
      "the new events are in the signed chain",
    );
    assertNoLeak(w.server.logs.join("\n"), needles, "the server log");
  } finally {
    await mcp.close();
    await w.close();
  }
});

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

Deno.test("Jira Cloud: the API token, email:token and its base64 in file names are redacted, with the warning", async () => {
  const w = await startCloudWorld();
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const { api, email } = w.alice;
  const basic = btoa(`${email}:${api}`);
  const needles = needlesOf([api, basic]);
  try {
    const id = await w.connect(w.alice);
    w.cloud.addIssue({
      key: "SUP-9",
      browsers: [email],
      attachments: [
        { filename: `t-${api}.txt`, size: 1, author: w.alice.accountId },
        { filename: `pair ${email}:${api}`, size: 2, author: w.alice.accountId },
        { filename: `basic-${basic}.log`, size: 3, author: w.alice.accountId },
      ],
    });
    const result = await mcp.call("jira_list_attachments", {
      connection_id: id,
      issue_key: "SUP-9",
    });
    assert.ok(!result.isError, JSON.stringify(result).slice(0, 300));
    const names = result.structuredContent.attachments.map((a: { filename: string }) => a.filename);
    assert.equal(names.length, 3);
    for (const n of names) assert.match(n, /\[redacted\]/);
    assert.equal(names[0], "t-[redacted].txt");
    assert.equal(result.structuredContent.warnings[0].code, "secret_in_upstream");
    assert.match(result.structuredContent.warnings[0].message, /Revoke that token/);
    assertNoLeak(JSON.stringify(result), needles, "the Cloud listing");
    const events = await w.server.services.events.list({ type: "secret_in_upstream" });
    assert.equal(events.length, 1);
    assert.equal(events[0].connection_id, id);
    assertNoLeak(JSON.stringify(events), needles, "the events");
    assertNoLeak(w.server.logs.join("\n"), needles, "the server log");
  } finally {
    await mcp.close();
    await w.close();
  }
});

Deno.test("an upload answer naming the stored file after the PAT is redacted; the upload is reported, with the warning", async () => {
  const w = await startWorld();
  let poison = false;
  const jira = await startFakeJira({
    jira: overrideFake(w.jira.jira, async (req) => {
      if (!poison || req.method !== "POST") return undefined;
      const pat = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1] ?? "";
      const real = await w.jira.jira.fetch(req);
      const beans = await real.json() as Array<{ filename: string }>;
      return Response.json(beans.map((b) => ({ ...b, filename: `${pat}-${b.filename}` })));
    }),
  });
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const needles = needlesOf([w.alice.pat]);
  try {
    const id = (await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: { base_url: jira.url, pat: w.alice.pat },
    })).body.connection_id;
    const dir = `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(`${dir}/r.txt`, "hello\n", { mode: 0o600 });
    poison = true;
    const result = await mcp.call("jira_attach_artifact", {
      connection_id: id,
      issue_key: "SUP-1",
      artifact_ref: `${dir}/r.txt`,
    });
    assert.ok(!result.isError, JSON.stringify(result).slice(0, 300));
    assert.equal(result.structuredContent.attachment.filename, "[redacted]-r.txt");
    assert.equal(result.structuredContent.warnings[0].code, "secret_in_upstream");
    assertNoLeak(JSON.stringify(result), needles, "attach result");
    const events = await w.server.services.events.list({ type: "secret_in_upstream" });
    assert.deepEqual(events.map((e) => [e.issue_key, e.connection_id]), [["SUP-1", id]]);
    assertNoLeak(w.server.logs.join("\n"), needles, "the server log");
  } finally {
    await mcp.close();
    await jira.close();
    await w.close();
  }
});
