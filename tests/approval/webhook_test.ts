/**
 * POST /jira/webhook: deliveries signed by the fake Jira with HMAC-SHA256 over the raw body.
 * Forged, unsigned, replayed, stale, oversized and malformed deliveries are refused; a signed
 * status change is cached and makes the next gated call fail at once.
 */
import assert from "node:assert/strict";
import { registerCanary } from "../helpers/canary.ts";
import { toolError } from "../helpers/mcp.ts";
import { startWorld } from "../helpers/world.ts";
import { canRunGated, HOST, startApprovalWorld } from "./_world.ts";

// A canary for the suite's sweep; its file lives outside .test-out, which the sweep reads.
const SECRET = await registerCanary(`whsec-${crypto.randomUUID()}`);

async function webhookWorld() {
  const dir = await Deno.makeTempDir({ prefix: "sosvault-webhook-" });
  await Deno.writeTextFile(`${dir}/secret`, SECRET + "\n", { mode: 0o600 });
  const s = await startApprovalWorld({ SOSVAULT_WEBHOOK_SECRET_FILE: `${dir}/secret` });
  const close = s.close;
  s.close = async () => {
    await close();
    await Deno.remove(dir, { recursive: true });
  };
  return { s, url: `${s.w.server.url}/jira/webhook` };
}

Deno.test("without SOSVAULT_WEBHOOK_SECRET_FILE the webhook endpoint does not exist", async () => {
  const w = await startWorld();
  try {
    const res = await w.server.call("POST", "/jira/webhook", { json: { timestamp: 1 } });
    assert.equal(res.status, 404);
  } finally {
    await w.close();
  }
});

Deno.test("webhooks: signed deliveries are accepted; forged, unsigned, replayed, stale, oversized and malformed ones are refused", async () => {
  const { s, url } = await webhookWorld();
  const j = s.w.jira.jira;
  const events = () => s.w.server.services.events.list({ type: "webhook" });
  try {
    s.approvedCr("CR-1");
    j.transition("CR-1", "Rejected", "carol");

    const forged = await j.sendWebhook(url, { secret: "not-the-secret-at-all" });
    assert.equal(forged.status, 401);
    assert.equal((await forged.json()).error.code, "unauthenticated");
    const unsigned = await j.sendWebhook(url, {});
    assert.equal(unsigned.status, 401);
    await unsigned.body?.cancel();
    assert.equal((await events()).filter((e) => e.error_code === "unauthenticated").length, 2);
    assert.equal(
      (await s.w.server.services.kv.get(["approval_cr", "CR-1"])).value,
      null,
      "nothing unsigned is believed",
    );

    const good = await j.sendWebhook(url, { secret: SECRET, identifier: "delivery-1" });
    assert.equal(good.status, 200);
    assert.deepEqual(await good.json(), {
      accepted: true,
      change_request: "CR-1",
      status: "Rejected",
      stopped_runs: 0,
    });
    const cached = (await s.w.server.services.kv.get<{ status: string }>(["approval_cr", "CR-1"]))
      .value;
    assert.equal(cached?.status, "Rejected");

    const replayed = await j.sendWebhook(url, { secret: SECRET, identifier: "delivery-1" });
    assert.equal(replayed.status, 409);
    assert.match((await replayed.json()).error.message, /already received/);
    const sameBody = new TextEncoder().encode(JSON.stringify({
      timestamp: Date.now(),
      webhookEvent: "jira:issue_updated",
      issue: { key: "CR-1", fields: { status: { name: "Approved" } } },
    }));
    const first = await j.sendWebhook(url, { secret: SECRET, rawBody: sameBody });
    assert.equal(first.status, 200);
    await first.body?.cancel();
    const newId = await j.sendWebhook(url, { secret: SECRET, rawBody: sameBody });
    assert.equal(newId.status, 409, "a replay under a new delivery id is still a replay");
    await newId.body?.cancel();
    // Put the cache back to what the newest genuine delivery said.
    const again = await j.sendWebhook(url, { secret: SECRET });
    assert.equal(again.status, 200);
    await again.body?.cancel();
    const stale = await j.sendWebhook(url, {
      secret: SECRET,
      timestamp: Date.now() - 10 * 60_000,
    });
    assert.equal(stale.status, 409);
    assert.match((await stale.json()).error.message, /outside the replay window/);

    const other = await j.sendWebhook(url, {
      secret: SECRET,
      header: "X-Webhook-Signature",
    });
    assert.equal(other.status, 200, "X-Webhook-Signature is accepted too");
    await other.body?.cancel();

    const big = new TextEncoder().encode(JSON.stringify({ pad: "x".repeat(300 * 1024) }));
    const oversized = await j.sendWebhook(url, { secret: SECRET, rawBody: big });
    assert.equal(oversized.status, 413);
    await oversized.body?.cancel();
    const malformed = await j.sendWebhook(url, {
      secret: SECRET,
      rawBody: new TextEncoder().encode("{not json"),
    });
    assert.equal(malformed.status, 400);
    await malformed.body?.cancel();

    // Another project's issue is accepted and ignored.
    j.addChangeRequest({ key: "OPS-1" });
    j.transition("OPS-1", "Rejected", "carol");
    const ops = await j.sendWebhook(url, { secret: SECRET });
    assert.deepEqual(await ops.json(), { accepted: true });
    assert.equal((await s.w.server.services.kv.get(["approval_cr", "OPS-1"])).value, null);

    const health = await s.w.server.call("GET", "/health");
    assert.equal(health.status, 200);
    assert.equal(health.body.version, s.w.server.services.version);

    // Security: the secret is in no log line and no response.
    assert.ok(!s.w.server.logs.some((l) => l.includes(SECRET)));
    const responses = await Deno.readTextFile(`${s.w.server.dir}/responses.log`);
    assert.ok(!responses.includes(SECRET));
    const all = JSON.stringify(await events());
    assert.ok(!all.includes(SECRET));
  } finally {
    await s.close();
  }
});

const canRun = canRunGated("gated webhook tests");

Deno.test({
  name:
    "a signed webhook saying the CR left Approved makes the next gated call fail at once, even before Jira's own answer changes",
  ignore: !canRun,
  fn: async () => {
    const { s, url } = await webhookWorld();
    const j = s.w.jira.jira;
    try {
      // A CR that passes every check but the host, so its refusal lists only what the webhook adds.
      s.approvedCr("CR-2", { labels: ["db99"] });
      const before = toolError(
        await s.generate({ change_request: "CR-2", connection_id: s.connectionId }),
      );
      assert.doesNotMatch(before.message, /moved/);
      const body = new TextEncoder().encode(JSON.stringify({
        timestamp: Date.now(),
        webhookEvent: "jira:issue_updated",
        issue: { key: "CR-2", fields: { status: { name: "Rejected" } } },
        changelog: { items: [{ field: "status", fromString: "Approved", toString: "Rejected" }] },
      }));
      const res = await j.sendWebhook(url, { secret: SECRET, rawBody: body });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const after = toolError(
        await s.generate({ change_request: "CR-2", connection_id: s.connectionId }),
      );
      assert.equal(after.code, "approval_required");
      assert.match(after.message, /Jira reported it moved to Rejected at /);
      assert.match(after.message, new RegExp(`does not name this host ${HOST}`));
    } finally {
      await s.close();
    }
  },
});
