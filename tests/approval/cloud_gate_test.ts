/**
 * The change-approval gate with Jira Cloud connections (issues 12 and 13) over the real server,
 * the real MCP client and the fake Jira Cloud on HTTPS: the CR is read on REST v3 by accountId,
 * on the connection's own route (the site URL for a classic token, the gateway for a scoped
 * one) with Basic e-mail:token; every refusal names what is missing; a long changelog is read
 * page by page; an approved CR runs the real sos. Like the other gate tests, refusals come
 * after sosvault's own sos/sudo checks, so these tests need sos and root (sudo).
 */
import assert from "node:assert/strict";
import { toolError } from "../helpers/mcp.ts";
import { type CloudApprovalWorld, HOST, startCloudApprovalWorld } from "./_cloud_world.ts";
import { approvalCli, canRunGated, SIGNATURE_FIELD } from "./_world.ts";
import { keygen } from "./_keys.ts";
import { freshDir } from "../helpers/paths.ts";

const canRun = canRunGated("Cloud approval gate tests");
const t = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: !canRun, fn });

type Who = "alice" | "bob";

async function refused(s: CloudApprovalWorld, who: Who, cr: string): Promise<string> {
  const connection_id = who === "alice" ? s.classicId : s.scopedId;
  const err = toolError(
    await s[who].call("generate_sosreport", { change_request: cr, connection_id }),
  );
  assert.equal(err.code, "approval_required", err.message);
  return err.message;
}

/**
 * Passes the gate without running sos: a consent token that does not exist is refused after
 * the gate (consent comes after approval), so consent_required proves the approval held.
 */
async function passesGate(s: CloudApprovalWorld, who: Who, cr: string) {
  const connection_id = who === "alice" ? s.classicId : s.scopedId;
  const err = toolError(
    await s[who].call("generate_sosreport", {
      change_request: cr,
      connection_id,
      consent_token: "sc_" + "0".repeat(32),
    }),
  );
  assert.equal(err.code, "consent_required", err.message);
}

async function noJobs(s: CloudApprovalWorld) {
  const jobs = await Array.fromAsync(s.w.server.services.kv.list({ prefix: ["sos_job"] }));
  assert.equal(jobs.length, 0, "no sosreport was started");
}

t(
  "Cloud classic token: the gate reads the CR on the site's REST v3 by accountId, and refuses by name",
  async () => {
    const s = await startCloudApprovalWorld();
    const c = s.w.cloud;
    const { carol, dave, erin } = s.people;
    // Only the gate's reads from here on (connecting made its own calls).
    c.clearRequests();
    try {
      // Approved by carol, who holds the role directly: the gate passes.
      s.approvedCr("CR-1");
      await passesGate(s, "alice", "CR-1");
      const passed = (await s.w.server.services.events.list({ cr: "CR-1", type: "sos_generate" }))
        .find((e) => e.error_code === "consent_required");
      assert.ok(passed, "the gated attempt is in the audit trail");
      assert.equal(
        passed.approver,
        carol.accountId,
        "the audit trail names the approver's accountId",
      );

      // Status not Approved.
      c.addChangeRequest({ key: "CR-2", labels: [HOST] });
      c.transition("CR-2", "In Review", carol.email);
      let m = await refused(s, "alice", "CR-2");
      assert.match(m, /its status is In Review, not Approved/);
      assert.match(m, /no one moved it into Approved/);

      // Approver without the role (dave is only a Developer): named by display name and accountId.
      s.approvedCr("CR-3", { approver: dave.email });
      m = await refused(s, "alice", "CR-3");
      assert.equal(
        m,
        `change request CR-3 is not a valid approval: its approver Dave Developer (accountId ${dave.accountId}) does not hold the role Change Manager`,
      );

      // A role held through a group actor counts (erin is in change-board): only the host fails.
      s.approvedCr("CR-4", { approver: erin.email, labels: [] });
      m = await refused(s, "alice", "CR-4");
      assert.doesNotMatch(m, /role/);
      assert.match(m, /does not name this host/);

      // Self-approval: alice's own account (the accountId stored at connect) approved it.
      c.addProjectRole("CR", "Change Manager", {
        users: [carol.email, s.w.alice.email],
        groups: ["change-board"],
      });
      s.approvedCr("CR-5", { approver: s.w.alice.email });
      m = await refused(s, "alice", "CR-5");
      assert.match(
        m,
        new RegExp(
          `it was approved by you \\(alice Cloud \\(accountId ${s.w.alice.accountId}\\)\\); someone else must approve it`,
        ),
      );
      assert.doesNotMatch(m, /does not hold the role/, "alice holds the role now: only self fails");

      await noJobs(s);
      // Security: the caller's credentials and e-mail never reach the model.
      for (
        const secret of [
          s.w.alice.api,
          s.w.alice.email,
          btoa(`${s.w.alice.email}:${s.w.alice.api}`),
        ]
      ) {
        assert.ok(!m.includes(secret));
      }

      // Every read went to the site's REST v3 with alice's Basic credential; nothing to v2 or
      // the gateway (a classic token), and no Data Center call (name, username) at all.
      const cr = c.requests.filter((r) =>
        r.path.startsWith("/rest/api/") && r.path !== "/rest/api/2/serverInfo"
      );
      assert.ok(cr.length > 0);
      for (const r of cr) {
        assert.match(r.path, /^\/rest\/api\/3\//, `${r.method} ${r.path}`);
        assert.equal(
          r.headers.authorization,
          `Basic ${btoa(`${s.w.alice.email}:${s.w.alice.api}`)}`,
        );
      }
      const paths = cr.map((r) => `${r.method} ${r.path}`);
      assert.ok(paths.includes("GET /rest/api/3/issue/CR-3"));
      assert.ok(paths.includes("GET /rest/api/3/project/CR/role"));
      assert.ok(paths.some((p) => /^GET \/rest\/api\/3\/project\/CR\/role\/\d+$/.test(p)));
      const groups = cr.find((r) => r.path === "/rest/api/3/user/groups")!;
      assert.equal(groups.query, `accountId=${encodeURIComponent(dave.accountId)}`);
      assert.match(cr.find((r) => r.path === "/rest/api/3/issue/CR-3")!.query, /expand=changelog/);
      assert.ok(!c.requests.some((r) => r.path.startsWith("/ex/jira/")), "no gateway call");
    } finally {
      await s.close();
    }
  },
);

t(
  "Cloud: a changelog longer than the embedded part is read page by page, and its newest approval counts",
  async () => {
    // Cloud embeds part of a long changelog; here 3 histories, so the approval is outside it.
    const s = await startCloudApprovalWorld({}, { changelogEmbedLimit: 3 });
    const c = s.w.cloud;
    const { carol, dave } = s.people;
    try {
      const busy = (key: string) => {
        c.addChangeRequest({ key, labels: [HOST] });
        // 230 status changes: three pages of the changelog endpoint (100, 100, 30).
        for (let i = 0; i < 115; i++) {
          c.transition(key, "In Review", dave.email);
          c.transition(key, "Open", dave.email);
        }
      };
      busy("CR-10");
      c.transition("CR-10", "Approved", carol.email);
      c.clearRequests();
      await passesGate(s, "alice", "CR-10");
      const pages = c.requests.filter((r) => r.path === "/rest/api/3/issue/CR-10/changelog");
      assert.deepEqual(
        pages.map((r) => r.query),
        ["startAt=0&maxResults=100", "startAt=100&maxResults=100", "startAt=200&maxResults=100"],
      );

      // Approved by carol early, re-approved by dave on the last page: dave's approval is the one.
      busy("CR-11");
      c.transition("CR-11", "Approved", carol.email);
      c.transition("CR-11", "In Review", dave.email);
      c.transition("CR-11", "Approved", dave.email);
      const m = await refused(s, "alice", "CR-11");
      assert.match(m, /its approver Dave Developer .* does not hold the role Change Manager/);
      await noJobs(s);
    } finally {
      await s.close();
    }
  },
);

t(
  "Cloud scoped token: the gate reads through the gateway with the cloudId, refuses by name, and a missing scope is named",
  async () => {
    const s = await startCloudApprovalWorld();
    const c = s.w.cloud;
    const { dave, erin } = s.people;
    try {
      s.approvedCr("CR-20", { approver: dave.email });
      const m = await refused(s, "bob", "CR-20");
      assert.match(m, /its approver Dave Developer \(accountId .*\) does not hold the role/);
      s.approvedCr("CR-21");
      await passesGate(s, "bob", "CR-21");
      const gw = `/ex/jira/${c.cloudId}/rest/api/3`;
      const paths = c.requests.filter((r) => r.user === s.w.bob.accountId).map((r) => r.path);
      assert.ok(paths.includes(`${gw}/issue/CR-20`));
      assert.ok(paths.includes(`${gw}/project/CR/role`));
      assert.ok(paths.includes(`${gw}/user/groups`));
      assert.ok(
        !paths.some((p) => p.startsWith("/rest/")),
        "a scoped token never goes to the site URL",
      );

      // A token whose scopes do not cover a read the gate needs: the refusal names the scope.
      c.addToken(s.w.bob.email, s.w.bob.api, {
        scoped: true,
        scopes: ["read:jira-work", "write:jira-work"],
      });
      s.approvedCr("CR-22", { approver: erin.email });
      const err = toolError(
        await s.bob.call("generate_sosreport", {
          change_request: "CR-22",
          connection_id: s.scopedId,
        }),
      );
      assert.equal(err.code, "forbidden");
      assert.match(err.message, /lacks a scope sosvault needs \(read:jira-user\)/);
      await noJobs(s);
    } finally {
      await s.close();
    }
  },
);

t(
  "Cloud scoped token approved path: generate_sosreport runs the real sos under the CR",
  async () => {
    const before = new Set(await Array.fromAsync(Deno.readDir("/var/tmp"), (e) => e.name));
    const s = await startCloudApprovalWorld({}, { sosWaitMs: 100 });
    try {
      s.approvedCr("CR-30");
      const gen = await s.bob.call("generate_sosreport", {
        change_request: "CR-30",
        connection_id: s.scopedId,
        consent_token: await s.consent(s.w.bob),
      });
      assert.ok(!(gen as { isError?: boolean }).isError, JSON.stringify(gen));
      await s.w.server.services.sos.settle();
      const jobId = (gen as { structuredContent: { job_id: string } }).structuredContent.job_id;
      const job = (await s.bob.call("sosreport_status", { job_id: jobId })).structuredContent;
      assert.equal(job.status, "succeeded", JSON.stringify(job));
      const ok = (await s.w.server.services.events.list({ cr: "CR-30" })).find((e) =>
        e.type === "sos_generate" && e.outcome === "success"
      );
      assert.ok(ok);
      assert.equal(ok.approver, s.people.carol.accountId);
      await Deno.remove(job.archive_path).catch(() => {});
    } finally {
      await s.close();
      for await (const e of Deno.readDir("/var/tmp")) {
        if (!before.has(e.name) && /^(sos\.|sosreport-)/.test(e.name)) {
          await Deno.remove(`/var/tmp/${e.name}`, { recursive: true }).catch(() => {});
        }
      }
    }
  },
);

t(
  "Cloud cr+signature: the signed statement names the approver's accountId, and a user name does not match",
  async () => {
    const dir = await freshDir("approval-cloud-sig");
    const { key, cert } = await keygen(dir);
    await Deno.mkdir(`${dir}/trust`);
    await Deno.copyFile(cert, `${dir}/trust/change-manager.pem`);
    const s = await startCloudApprovalWorld({
      SOSVAULT_APPROVAL: "cr+signature",
      SOSVAULT_APPROVAL_SIGNATURE_FIELD: SIGNATURE_FIELD,
      SOSVAULT_APPROVAL_TRUST_DIR: `${dir}/trust`,
    });
    const signAs = async (cr: string, approver: string) => {
      const r = await approvalCli(dir, [
        ...["sign", "--cr", cr, "--approver", approver, "--key", key],
        ...["--passphrase-file", `${dir}/pass`, "--host", HOST],
      ]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    try {
      s.approvedCr("CR-40");
      s.w.cloud.setField("CR-40", SIGNATURE_FIELD, await signAs("CR-40", s.people.carol.accountId));
      await passesGate(s, "alice", "CR-40");

      s.approvedCr("CR-41");
      s.w.cloud.setField("CR-41", SIGNATURE_FIELD, await signAs("CR-41", "carol"));
      const m = await refused(s, "alice", "CR-41");
      assert.match(m, /its signature is for another approval \(approver carol\)/);
      await noJobs(s);
    } finally {
      await s.close();
    }
  },
);
