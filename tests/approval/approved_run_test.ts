/**
 * The approved path with the real sos and sudo: a CR approved by a Change Manager, signed with
 * a key from `approval keygen`, runs sos; the audit trail names CR, approver and signature;
 * the signature works once; and a signed webhook moving a CR to Rejected stops its running sos.
 */
import assert from "node:assert/strict";
import { registerCanary } from "../helpers/canary.ts";
import { toolError } from "../helpers/mcp.ts";
import { freshDir } from "../helpers/paths.ts";
import { runSosvault } from "../helpers/process.ts";
import { canRunGated, SIGNATURE_FIELD, startApprovalWorld } from "./_world.ts";
import { keygen, sign } from "./_keys.ts";

const canRun = canRunGated("approved-run tests");

// A canary for the suite's sweep; its file lives outside .test-out, which the sweep reads.
const SECRET = await registerCanary(`whsec-${crypto.randomUUID()}`);

async function sosPids(): Promise<string[]> {
  const out = await new Deno.Command("pgrep", { args: ["-f", "sos report --batch"] }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
}

async function removeSosLeftovers(before: Set<string>) {
  for await (const e of Deno.readDir("/var/tmp")) {
    if (!before.has(e.name) && /^(sos\.|sosreport-)/.test(e.name)) {
      await Deno.remove(`/var/tmp/${e.name}`, { recursive: true }).catch(() => {});
    }
  }
}

Deno.test({
  name:
    "cr+signature approved path: real sos runs, the audit trail and `events --cr` name CR, approver and signature, the signature works once, and a webhook to Rejected stops a running sos",
  ignore: !canRun,
  fn: async () => {
    const before = new Set(await Array.fromAsync(Deno.readDir("/var/tmp"), (e) => e.name));
    const dir = await freshDir("approval-run");
    const { key, cert } = await keygen(dir);
    await Deno.mkdir(`${dir}/trust`);
    await Deno.copyFile(cert, `${dir}/trust/change-manager.pem`);
    const secretDir = await Deno.makeTempDir({ prefix: "sosvault-webhook-" });
    await Deno.writeTextFile(`${secretDir}/secret`, SECRET, { mode: 0o600 });
    const s = await startApprovalWorld({
      SOSVAULT_APPROVAL: "cr+signature",
      SOSVAULT_APPROVAL_SIGNATURE_FIELD: SIGNATURE_FIELD,
      SOSVAULT_APPROVAL_TRUST_DIR: `${dir}/trust`,
      SOSVAULT_WEBHOOK_SECRET_FILE: `${secretDir}/secret`,
    }, { sosWaitMs: 100 });
    const j = s.w.jira.jira;
    const consent = async () =>
      (await s.w.server.call("POST", "/api/sos/consents", { token: s.w.alice.token })).body
        .consent_token;
    try {
      s.approvedCr("CR-1042", {
        fields: { [SIGNATURE_FIELD]: await sign(dir, key, "CR-1042") },
      });
      const args = { change_request: "CR-1042", connection_id: s.connectionId };
      const gen = await s.generate({ ...args, consent_token: await consent() });
      assert.ok(!(gen as { isError?: boolean }).isError, JSON.stringify(gen));
      // Signature reuse: refused even while the first run goes on (and before any conflict).
      const reused = toolError(await s.generate({ ...args, consent_token: await consent() }));
      assert.equal(reused.code, "approval_required");
      assert.match(reused.message, /its signature was already used for a run/);
      await s.w.server.services.sos.settle();
      const jobId = (gen as { structuredContent: { job_id: string } }).structuredContent.job_id;
      const job = (await s.alice.call("sosreport_status", { job_id: jobId })).structuredContent;
      assert.equal(job.status, "succeeded", JSON.stringify(job));

      const events = await s.w.server.services.events.list({ cr: "CR-1042" });
      const ok = events.find((e) => e.type === "sos_generate" && e.outcome === "success");
      assert.ok(ok, JSON.stringify(events));
      assert.equal(ok.approver, "carol");
      assert.match(ok.signature_fingerprint!, /^[0-9a-f]{64}$/);
      const cli = await runSosvault(s.w.server.dir, ["events", "--cr", "cr-1042", "--json"], {
        TOKEN_VAULT_MASTER_KEY: s.w.server.env.TOKEN_VAULT_MASTER_KEY!,
        SOSVAULT_KV_PATH: s.w.server.env.SOSVAULT_KV_PATH!,
      });
      assert.equal(cli.code, 0, cli.stderr);
      const listed = JSON.parse(cli.stdout).events;
      assert.ok(
        listed.length >= 2 &&
          listed.every((e: { change_request: string }) => e.change_request === "CR-1042"),
      );
      assert.ok(
        listed.some((e: { signature_fingerprint?: string }) =>
          e.signature_fingerprint === ok.signature_fingerprint
        ),
      );
      await Deno.remove(job.archive_path).catch(() => {});

      // A second CR, rejected while its sos runs: the webhook stops it. Other sos processes on
      // this shared host (other test runs) are told apart by pid.
      const sosBefore = new Set(await sosPids());
      s.approvedCr("CR-1043", {
        fields: { [SIGNATURE_FIELD]: await sign(dir, key, "CR-1043") },
      });
      const run = await s.generate({
        change_request: "CR-1043",
        connection_id: s.connectionId,
        consent_token: await consent(),
      }) as { structuredContent: { job_id: string; status: string } };
      assert.equal(run.structuredContent.status, "running");
      const ours = (await sosPids()).filter((p) => !sosBefore.has(p));
      assert.ok(ours.length >= 1, "our sos is running");
      j.transition("CR-1043", "Rejected", "carol");
      const hook = await j.sendWebhook(`${s.w.server.url}/jira/webhook`, { secret: SECRET });
      assert.equal(hook.status, 200);
      assert.equal((await hook.json()).stopped_runs, 1);
      await s.w.server.services.sos.settle();
      const stopped = (await s.alice.call("sosreport_status", {
        job_id: run.structuredContent.job_id,
      })).structuredContent;
      assert.equal(stopped.status, "failed");
      assert.equal(stopped.error.code, "approval_required");
      assert.match(stopped.error.message, /change request CR-1043 moved to Rejected/);
      const left = new Set(await sosPids());
      assert.ok(!ours.some((p) => left.has(p)), "our sos process is gone");
      const next = toolError(
        await s.generate({
          change_request: "CR-1043",
          connection_id: s.connectionId,
          consent_token: await consent(),
        }),
      );
      assert.equal(next.code, "approval_required");
      assert.match(next.message, /its status is Rejected, not Approved/);
      const failed = await s.w.server.services.events.list({ cr: "CR-1043", type: "sos_generate" });
      assert.ok(
        failed.some((e) => e.outcome === "failure" && e.error_code === "approval_required"),
      );
    } finally {
      await s.close();
      await removeSosLeftovers(before);
      await Deno.remove(secretDir, { recursive: true });
    }
  },
});
