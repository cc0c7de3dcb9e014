/**
 * Secret rejection on every tool argument (DESIGN.md 7.4), over MCP: secret-shaped inputs are
 * refused with secret_rejected and never echoed; ordinary values pass through to the tool.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { makeDcPat } from "../helpers/canary.ts";

const rnd = (
  n: number,
  alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
) =>
  Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => alphabet[b % alphabet.length]).join(
    "",
  );
const hex = (n: number) => rnd(n, "0123456789abcdef");
const b64url = (s: string) => btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function secrets(ownPat: string): Array<[string, string]> {
  const dc = makeDcPat();
  return [
    ["Jira DC PAT", dc],
    ["Jira DC PAT in a sentence", `please use ${dc} for this`],
    ["Jira DC PAT URL-encoded", encodeURIComponent(dc)],
    [
      "Jira DC PAT with zero-width spaces",
      dc.slice(0, 10) + "\u200b" + dc.slice(10, 30) + "\u200d" + dc.slice(30),
    ],
    ["the caller's own PAT", ownPat],
    ["the caller's own PAT as Bearer", `Bearer ${ownPat}`],
    ["Atlassian API token", "ATATT3xFfGF0" + rnd(170) + "=" + hex(8).toUpperCase()],
    ["Atlassian access token", "ATCTT3xFfGF0" + rnd(120)],
    ["Bitbucket app password", "ATBB" + rnd(32)],
    ["Bitbucket DC token", "BBDC-" + rnd(44)],
    ["GitHub classic token", "ghp_" + rnd(36)],
    ["GitHub OAuth token", "gho_" + rnd(36)],
    ["GitHub fine-grained token", "github_pat_" + rnd(22) + "_" + rnd(59)],
    ["GitLab token", "glpat-" + rnd(20)],
    [
      "Slack bot token",
      "xoxb-" + rnd(12, "0123456789") + "-" + rnd(12, "0123456789") + "-" + rnd(24),
    ],
    ["AWS access key id", "AKIA" + rnd(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")],
    ["OpenAI project key", "sk-proj-" + rnd(48)],
    ["Anthropic key", "sk-ant-api03-" + rnd(80)],
    [
      "JWT",
      `eyJ${b64url('{"alg":"HS256"}').slice(3)}.eyJ${b64url('{"sub":"alice"}').slice(3)}.${
        rnd(43)
      }`,
    ],
    [
      "PEM private key",
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEow" + rnd(60) + "\n-----END RSA PRIVATE KEY-----",
    ],
    ["Authorization header", `Authorization: Bearer ${rnd(40)}`],
    ["Basic credentials", `Basic ${btoa("alice@example.com:" + rnd(24))}`],
  ];
}

const ORDINARY: string[] = [
  "SUP-123",
  "sup-123",
  "ABC_DEF-1",
  "10001",
  "/var/tmp/sosreport-myhost-linux-mcp-sos-2026-11-24-abcdefg.tar.xz",
  "/tmp/sosvault/alice/sosreport-web01-linux-mcp-sos-2026-11-24-qwerty.tar.xz",
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "d41d8cd98f00b204e9800998ecf8427e",
  "6f1ed002-ab5d-42f0-a58c-9ee1e43b7a1b",
  "https://jira.example.com/jira",
  "https://jira.example.com/browse/SUP-123",
  "jc_" + "Ab3_-".repeat(6) + "xy",
  "req_0123456789abcdef",
  "2026-11-24T12:00:00.000Z",
  "sosreport.tar.xz",
  "notes – é.txt",
  "alice@example.com",
  "v1.2.3-rc.1",
  "The web server crashed at midnight after the kernel upgrade; see the attached logs.",
  btoa("This is ordinary prose encoded in base64, nothing secret."),
  "mock-100000000001",
  "2.9.6",
];

Deno.test("at least 20 secret-shaped inputs are rejected in any field, never echoed, with a pointer to jira_connect", async () => {
  const w = await startWorld();
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  try {
    const id = await w.connect(w.alice);
    const table = secrets(w.alice.pat);
    assert.ok(table.length >= 20);
    const fields: Array<(v: string) => [string, Record<string, unknown>]> = [
      (v) => ["jira_list_attachments", { connection_id: id, issue_key: v }],
      (
        v,
      ) => ["jira_attach_artifact", {
        connection_id: id,
        issue_key: "SUP-1",
        artifact_ref: "/tmp/x",
        filename: v,
      }],
      (v) => ["jira_connect", { base_url: v }],
      (v) => ["jira_connection_status", { connection_id: id, [v]: 1 }],
    ];
    let i = 0;
    for (const [name, value] of table) {
      const [tool, args] = fields[i++ % fields.length](value);
      const result = await mcp.call(tool, args);
      const err = toolError(result);
      assert.equal(err.code, "secret_rejected", `${name} via ${tool}`);
      assert.match(err.message, /jira_connect/);
      const text = JSON.stringify(result);
      for (const piece of [value, value.slice(4, 20)]) {
        assert.ok(!text.includes(piece), `${name} is not echoed`);
      }
    }
    const own = toolError(
      await mcp.call("jira_list_attachments", { connection_id: id, issue_key: w.alice.pat }),
    );
    assert.match(own.message, /revoke it in Jira/);
    const events = await w.server.services.events.list({ type: "secret_rejected", user: "alice" });
    assert.equal(events.length, table.length + 1);
    assert.equal(
      w.jira.jira.requests.filter((r) => !r.path.endsWith("/myself")).length,
      0,
      "no rejected call reached Jira",
    );
  } finally {
    await mcp.close();
    await w.close();
  }
});

Deno.test("at least 20 ordinary values never trip secret rejection", async () => {
  const w = await startWorld();
  const mcp = await connectMcp(w.server.url, w.alice.token);
  try {
    const id = await w.connect(w.alice);
    assert.ok(ORDINARY.length >= 20);
    for (const value of ORDINARY) {
      for (
        const [tool, args] of [
          ["jira_list_attachments", { connection_id: id, issue_key: value }],
          ["jira_attach_artifact", {
            connection_id: id,
            issue_key: "SUP-1",
            artifact_ref: value,
            filename: "x.txt",
          }],
        ] as const
      ) {
        const result = await mcp.call(tool, args);
        if (result.isError) {
          assert.notEqual(toolError(result).code, "secret_rejected", `${value} via ${tool}`);
        }
      }
    }
    assert.equal((await w.server.services.events.list({ type: "secret_rejected" })).length, 0);
  } finally {
    await mcp.close();
    await w.close();
  }
});
