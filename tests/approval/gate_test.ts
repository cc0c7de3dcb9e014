/**
 * The change-approval gate (SOSVAULT_APPROVAL=cr) over the real server, the real MCP client
 * and the fake Jira on HTTPS: every refusal names exactly what is missing, and nothing runs.
 * Refusals come after sosvault's own sos/sudo checks, so these tests need sos and sudo too.
 */
import assert from "node:assert/strict";
import { toolError } from "../helpers/mcp.ts";
import { canRunGated, END_FIELD, HOST, START_FIELD, startApprovalWorld } from "./_world.ts";
import { startWorld } from "../helpers/world.ts";
import { connectMcp } from "../helpers/mcp.ts";
import { parseConfig } from "../../src/config.ts";
import { ConfigError } from "../../src/config.ts";

const canRun = canRunGated("approval gate tests");
const t = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: !canRun, fn });

async function refused(
  s: Awaited<ReturnType<typeof startApprovalWorld>>,
  args: Record<string, unknown>,
): Promise<string> {
  const err = toolError(await s.generate(args));
  assert.equal(err.code, "approval_required", err.message);
  return err.message;
}

async function noJobs(s: Awaited<ReturnType<typeof startApprovalWorld>>) {
  const jobs = await Array.fromAsync(s.w.server.services.kv.list({ prefix: ["sos_job"] }));
  assert.equal(jobs.length, 0, "no sosreport was started");
}

t(
  "approval on: every missing requirement is refused with approval_required, naming it, and runs nothing",
  async () => {
    const s = await startApprovalWorld();
    const j = s.w.jira.jira;
    const id = s.connectionId;
    try {
      let m = await refused(s, {});
      assert.match(m, /missing change_request .*ask the user.* and connection_id/);
      m = await refused(s, { change_request: "CR-1" });
      assert.match(m, /missing connection_id/);
      m = await refused(s, { change_request: "not a key", connection_id: id });
      assert.match(m, /must be a Jira issue key/);
      m = await refused(s, { change_request: "CR-404", connection_id: id });
      assert.match(m, /CR-404 does not exist in Jira, or your Jira account cannot see it/);

      // Wrong project.
      j.addChangeRequest({ key: "OPS-7", labels: [HOST] });
      j.transition("OPS-7", "Approved", "carol");
      m = await refused(s, { change_request: "ops-7", connection_id: id });
      assert.match(m, /OPS-7 is in project OPS, not the change project CR/);

      // Status not Approved.
      j.addChangeRequest({ key: "CR-2", labels: [HOST] });
      j.transition("CR-2", "In Review", "carol");
      m = await refused(s, { change_request: "CR-2", connection_id: id });
      assert.match(m, /its status is In Review, not Approved/);
      assert.match(m, /no one moved it into Approved/);

      // Approver without the role (dave is only a Developer).
      s.approvedCr("CR-3", { approver: "dave" });
      m = await refused(s, { change_request: "CR-3", connection_id: id });
      assert.match(m, /its approver dave does not hold the role Change Manager/);
      assert.doesNotMatch(m, /status/);

      // Host not named.
      s.approvedCr("CR-4", { labels: ["some-other-host"] });
      m = await refused(s, { change_request: "CR-4", connection_id: id });
      assert.equal(
        m,
        `change request CR-4 is not a valid approval: it does not name this host ${HOST} in its labels`,
      );

      // Outside the planned window: ended yesterday, or starting tomorrow.
      const day = 86_400_000;
      s.approvedCr("CR-5", {
        fields: {
          [START_FIELD]: new Date(Date.now() - 2 * day).toISOString(),
          [END_FIELD]: new Date(Date.now() - day).toISOString(),
        },
      });
      m = await refused(s, { change_request: "CR-5", connection_id: id });
      assert.match(m, /its planned end .* has passed/);
      s.approvedCr("CR-6", {
        fields: { [START_FIELD]: "2999-01-01T09:00:00.000+0100", [END_FIELD]: null },
      });
      m = await refused(s, { change_request: "CR-6", connection_id: id });
      assert.match(m, /its planned start 2999-01-01T08:00:00.000Z has not come yet/);

      // Self-approval: alice's own Jira account approved it.
      j.addProjectRole("CR", "Change Manager", {
        users: ["carol", "alice.jira"],
        groups: ["change-board"],
      });
      s.approvedCr("CR-8", { approver: "alice.jira" });
      m = await refused(s, { change_request: "CR-8", connection_id: id });
      assert.match(m, /it was approved by you \(alice\.jira\); someone else must approve it/);

      // The newest move into Approved counts: re-approved later by dave, who lacks the role.
      s.approvedCr("CR-9");
      j.transition("CR-9", "In Review", "dave");
      j.transition("CR-9", "Approved", "dave");
      m = await refused(s, { change_request: "CR-9", connection_id: id });
      assert.match(m, /its approver dave does not hold the role/);

      // A role held through a group actor counts (erin is in change-board): only the host fails.
      s.approvedCr("CR-10", { approver: "erin", labels: [] });
      m = await refused(s, { change_request: "CR-10", connection_id: id });
      assert.doesNotMatch(m, /role/);
      assert.match(m, /does not name this host/);

      // Another user's connection is not found, like any reference that is not the caller's.
      const bob = await connectMcp(s.w.server.url, s.w.bob.token);
      try {
        const err = toolError(
          await bob.call("generate_sosreport", { change_request: "CR-10", connection_id: id }),
        );
        assert.equal(err.code, "not_found");
      } finally {
        await bob.close();
      }

      await noJobs(s);
      const events = await s.w.server.services.events.list({ type: "sos_generate", cr: "CR-3" });
      assert.ok(events.length >= 1, "the refusal is in the audit trail under its CR");
      assert.ok(events.every((e) => e.error_code === "approval_required"));
      // Security: only issue-key-shaped input reaches the audit trail.
      const all = await s.w.server.services.events.list({ type: "sos_generate" });
      assert.ok(!all.some((e) => e.change_request && !/^[A-Z]+-\d+$/.test(e.change_request)));
      // The gate read the CR with alice's own PAT, through the documented endpoints.
      const paths = j.requests.map((r) => `${r.method} ${r.path}`);
      assert.ok(paths.includes("GET /rest/api/2/issue/CR-3"));
      assert.ok(paths.includes("GET /rest/api/2/project/CR/role"));
      assert.ok(paths.some((p) => /^GET \/rest\/api\/2\/project\/CR\/role\/\d+$/.test(p)));
      assert.ok(paths.includes("GET /rest/api/2/user"));
      const cr3 = j.requests.find((r) => r.path === "/rest/api/2/issue/CR-3")!;
      assert.match(cr3.query, /expand=changelog/);
      assert.equal(cr3.headers.authorization, `Bearer ${s.w.alice.pat}`);
    } finally {
      await s.close();
    }
  },
);

t("SOSVAULT_APPROVAL_ALLOW_SELF=1 lets the caller's own approval count", async () => {
  const s = await startApprovalWorld({ SOSVAULT_APPROVAL_ALLOW_SELF: "1" });
  try {
    s.w.jira.jira.addProjectRole("CR", "Change Manager", { users: ["alice.jira"] });
    s.approvedCr("CR-1", { approver: "alice.jira", labels: [] });
    const m = await refused(s, { change_request: "CR-1", connection_id: s.connectionId });
    assert.doesNotMatch(m, /approved by you/);
    assert.match(m, /does not name this host/);
  } finally {
    await s.close();
  }
});

t("a host custom field can name the host instead of labels (text or select option)", async () => {
  const s = await startApprovalWorld({ SOSVAULT_APPROVAL_HOST_FIELD: "customfield_10500" });
  try {
    s.approvedCr("CR-1", { labels: [HOST], fields: { customfield_10500: "db01, db02" } });
    const m = await refused(s, { change_request: "CR-1", connection_id: s.connectionId });
    assert.match(m, new RegExp(`does not name this host ${HOST} in customfield_10500`));
    s.approvedCr("CR-2", {
      approver: "dave",
      labels: [],
      fields: { customfield_10500: [{ value: HOST.toUpperCase(), id: "10600" }] },
    });
    const m2 = await refused(s, { change_request: "CR-2", connection_id: s.connectionId });
    assert.doesNotMatch(m2, /host/, "a select option naming the host (any case) binds it");
  } finally {
    await s.close();
  }
});

Deno.test("approval off (the default): generate_sosreport's input has only new optional fields", async () => {
  const w = await startWorld();
  const mcp = await connectMcp(w.server.url, w.alice.token);
  try {
    const tool = (await mcp.client.listTools()).tools.find((t: { name: string }) =>
      t.name === "generate_sosreport"
    )!;
    assert.deepEqual(Object.keys(tool.inputSchema.properties ?? {}).sort(), [
      "change_request",
      "connection_id",
      "consent_token",
    ]);
    assert.deepEqual(tool.inputSchema.required ?? [], []);
    assert.match(tool.description!, /Ask the user for the change request key; never invent/);
    assert.equal(w.server.services.approval.enabled, false);
  } finally {
    await mcp.close();
    await w.close();
  }
});

Deno.test("approval configuration: a mode without its project or signature settings is refused by name", () => {
  const base = { TOKEN_VAULT_MASTER_KEY: "a".repeat(64) };
  const problems = (env: Record<string, string>) => {
    try {
      parseConfig({ ...base, ...env });
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems;
    }
  };
  assert.deepEqual(problems({ SOSVAULT_APPROVAL: "cr" }), [
    "SOSVAULT_APPROVAL=cr needs SOSVAULT_APPROVAL_PROJECT (the CR project key)",
  ]);
  assert.deepEqual(
    problems({ SOSVAULT_APPROVAL: "cr+signature", SOSVAULT_APPROVAL_PROJECT: "CR" }),
    [
      "SOSVAULT_APPROVAL=cr+signature needs SOSVAULT_APPROVAL_SIGNATURE_FIELD",
      "SOSVAULT_APPROVAL=cr+signature needs SOSVAULT_APPROVAL_TRUST_DIR",
    ],
  );
  assert.match(problems({ SOSVAULT_APPROVAL: "yes" })[0], /^SOSVAULT_APPROVAL /);
  assert.match(
    problems({ SOSVAULT_APPROVAL_WINDOW_FIELDS: "customfield_1" })[0],
    /^SOSVAULT_APPROVAL_WINDOW_FIELDS must be two field ids/,
  );
  const c = parseConfig(base);
  assert.equal(c.approval.mode, "off");
  assert.equal(c.approval.status, "Approved");
  assert.equal(c.approval.role, "Change Manager");
});
