/**
 * Load (SECURITY_TESTS T26, bounded): 200 MCP clients — 200 users, one Streamable HTTP session
 * each, through the official SDK client — call jira_connection_status back to back for 10
 * seconds against one `sosvault serve` child process. Every call must succeed, and the server's
 * resident memory after the run and a settle period must stay within a generous bound of its
 * warmed-up baseline. Durations bound the run; nothing asserts on how long anything took.
 */
import assert from "node:assert/strict";
import { connectMcp, type McpTestClient } from "../helpers/mcp.ts";
import { freshDir } from "../helpers/paths.ts";
import { serveProcess } from "../helpers/process.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { addUsersDirect, childEnv, rssKiB } from "./_helpers.ts";

const CLIENTS = 200;
const RUN_MS = 10_000;
/** As long as the run: V8 sizes its heap for this load before the baseline is read. */
const WARM_UP_MS = RUN_MS;
const SETTLE_MS = 3_000;
const RSS_GROWTH_LIMIT_KIB = 64 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over `items`, at most `width` at a time. */
async function inBatches<T, R>(items: T[], width: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) {
    out.push(...await Promise.all(items.slice(i, i + width).map(fn)));
  }
  return out;
}

Deno.test(`${CLIENTS} concurrent MCP sessions calling jira_connection_status for ${RUN_MS / 1000} s: no errors, and the server's memory settles`, async () => {
  const dir = await freshDir("load");
  // The per-user tool budget stays on (every call still pays its KV write) but out of reach.
  const env = childEnv(dir, { SOSVAULT_RATE_TOOLS: "1000000/60" });
  const names = Array.from({ length: CLIENTS }, (_, i) => `load${String(i).padStart(3, "0")}`);
  const tokens = await addUsersDirect(env.SOSVAULT_KV_PATH, names);
  // One Jira account for everyone: a canary like every PAT the suite stores.
  const pat = await newCanaryPat();
  const jira = await startFakeJira();
  jira.jira.addUser({ name: "load.jira", displayName: "Load" });
  jira.jira.addPat("load.jira", pat);
  const server = await serveProcess(dir, env);
  const clients: McpTestClient[] = [];
  try {
    const ids = await inBatches(names, 20, async (name) => {
      const res = await fetch(`${server.url}/api/jira/connections`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens[name]}`, "content-type": "application/json" },
        body: JSON.stringify({ base_url: jira.url, pat }),
      });
      const body = await res.json();
      assert.equal(res.status, 201, JSON.stringify(body));
      return body.connection_id as string;
    });
    clients.push(...await inBatches(names, 20, (name) => connectMcp(server.url, tokens[name])));

    const errors: string[] = [];
    let calls = 0;
    const loop = async (i: number, until: () => boolean) => {
      while (!until()) {
        try {
          const r = await clients[i].call("jira_connection_status", { connection_id: ids[i] });
          if (r.isError || r.structuredContent?.status !== "connected") {
            errors.push(r.content?.[0]?.text ?? "no content");
          }
        } catch (err) {
          errors.push(String(err));
        }
        calls++;
      }
    };

    // RSS moves with V8's heap sizing, not only with live data (with --trace-gc, the heap
    // after each full GC stays near 27 MiB through 50,000 of these calls). So the baseline is
    // the highest RSS of a warm-up under the same load, and what is compared is what stays.
    const samples: number[] = [];
    const sampler = setInterval(() => {
      rssKiB(server.child.pid).then((kib) => samples.push(kib), () => {});
    }, 1000);
    let baseline = 0;
    let peak = 0;
    let settled = 0;
    let runCalls = 0;
    let elapsed = 0;
    try {
      const warmUntil = Date.now() + WARM_UP_MS;
      await Promise.all(clients.map((_, i) => loop(i, () => Date.now() >= warmUntil)));
      await sleep(SETTLE_MS);
      baseline = Math.max(...samples.splice(0), await rssKiB(server.child.pid));
      const warmCalls = calls;

      const started = Date.now();
      const deadline = started + RUN_MS;
      await Promise.all(clients.map((_, i) => loop(i, () => Date.now() >= deadline)));
      elapsed = (Date.now() - started) / 1000;
      runCalls = calls - warmCalls;
      await sleep(SETTLE_MS);
      settled = await rssKiB(server.child.pid);
      peak = Math.max(...samples, settled);
    } finally {
      clearInterval(sampler);
    }

    const summary = {
      clients: CLIENTS,
      calls: runCalls,
      calls_per_second: Math.round(runCalls / elapsed),
      errors: errors.length,
      rss_kib: { baseline, peak, settled, growth: settled - baseline },
    };
    await Deno.writeTextFile(`${dir}/load-summary.json`, JSON.stringify(summary, null, 2) + "\n");
    console.log(`load: ${JSON.stringify(summary)}`);

    assert.deepEqual(errors.slice(0, 5), [], `${errors.length} of ${calls} calls failed`);
    assert.ok(runCalls >= CLIENTS, `only ${runCalls} calls in the run`);
    assert.ok(
      settled - baseline < RSS_GROWTH_LIMIT_KIB,
      `RSS grew from ${baseline} KiB to ${settled} KiB after the run settled`,
    );
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    await Promise.all(clients.map(async (c) => {
      await c.transport.terminateSession().catch(() => {});
      await c.close();
    }));
    await server.stop();
    await jira.close();
  }
});
