/**
 * Load (SECURITY_TESTS T26, bounded): 200 MCP clients — 200 users, one Streamable HTTP session
 * each, through the official SDK client — call jira_connection_status back to back for 10
 * seconds against one `sosvault serve` child process. Every call must succeed, and the server's
 * resident memory after the run and a settle period must stay within a generous bound of its
 * warmed-up baseline (or, when V8 sized up once more on a loaded machine, of the run before:
 * a leak keeps growing, sizing stops). Durations bound the runs; nothing asserts on how long
 * anything took.
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
/** Runs of RUN_MS at most: the first, and two more only while RSS keeps rising past the bound. */
const MAX_RUNS = 3;

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
    // after each full GC stays near 27-38 MiB through 50,000 of these calls). So the baseline
    // is the highest RSS of a warm-up under the same load, and what is compared is what stays.
    // On a loaded machine V8 and the allocator may still size up once more during the run; a
    // leak grows again in every further run, sizing does not. So a run that ends above the
    // bound is followed by up to MAX_RUNS - 1 more, each judged against the one before.
    const samples: number[] = [];
    const sampler = setInterval(() => {
      rssKiB(server.child.pid).then((kib) => samples.push(kib), () => {});
    }, 1000);
    const runs: Array<{ calls: number; seconds: number; peak: number; settled: number }> = [];
    let baseline = 0;
    try {
      const warmUntil = Date.now() + WARM_UP_MS;
      await Promise.all(clients.map((_, i) => loop(i, () => Date.now() >= warmUntil)));
      await sleep(SETTLE_MS);
      baseline = Math.max(...samples.splice(0), await rssKiB(server.child.pid));

      let before = baseline;
      while (runs.length < MAX_RUNS) {
        const callsBefore = calls;
        const started = Date.now();
        const deadline = started + RUN_MS;
        await Promise.all(clients.map((_, i) => loop(i, () => Date.now() >= deadline)));
        const seconds = (Date.now() - started) / 1000;
        await sleep(SETTLE_MS);
        const settled = await rssKiB(server.child.pid);
        const peak = Math.max(...samples.splice(0), settled);
        runs.push({ calls: calls - callsBefore, seconds, peak, settled });
        if (settled - before < RSS_GROWTH_LIMIT_KIB) break;
        before = Math.max(before, peak);
      }
    } finally {
      clearInterval(sampler);
    }

    const first = runs[0];
    const last = runs[runs.length - 1];
    const previous = runs.length > 1
      ? Math.max(baseline, ...runs.slice(0, -1).map((r) => r.peak))
      : baseline;
    const summary = {
      clients: CLIENTS,
      calls: first.calls,
      calls_per_second: Math.round(first.calls / first.seconds),
      errors: errors.length,
      rss_kib: {
        baseline,
        peak: first.peak,
        settled: first.settled,
        growth: first.settled - baseline,
      },
      runs: runs.map((r) => ({ calls: r.calls, peak_kib: r.peak, settled_kib: r.settled })),
    };
    await Deno.writeTextFile(`${dir}/load-summary.json`, JSON.stringify(summary, null, 2) + "\n");
    console.log(`load: ${JSON.stringify(summary)}`);

    assert.deepEqual(errors.slice(0, 5), [], `${errors.length} of ${calls} calls failed`);
    assert.ok(first.calls >= CLIENTS, `only ${first.calls} calls in the run`);
    assert.ok(
      last.settled - previous < RSS_GROWTH_LIMIT_KIB,
      `RSS grew in each of ${runs.length} runs, last from ${previous} KiB to ${last.settled} KiB after it settled`,
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
