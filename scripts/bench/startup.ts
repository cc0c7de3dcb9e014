/**
 * Cold start (spawn → first 200 from /health), idle memory (RSS right then, and after a few
 * requests), the first connect after start, and connect latency (POST /api/jira/connections
 * → `connected`) against the fake Jira over HTTPS (served by the sink), beside a direct GET
 * /myself to the same fake.
 */
import { type Child, freePort, startBareMcp, startSosvault, statusKiB } from "./procs.ts";
import { callTool, closeSession, openSession, rpc } from "./mcp_session.ts";
import { alternate } from "./stats.ts";
import { connect, type World } from "./world.ts";

export interface LaunchSample {
  firstOkMs: number;
  listeningMs: number;
  rssStartMiB: number;
  rssIdleMiB: number;
  /** sosvault only: the first POST /api/jira/connections after start. */
  firstConnectMs?: number;
}

export interface ColdStartResult {
  sosvault: LaunchSample[];
  bare: LaunchSample[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls GET url every 2 ms until a 200; returns ms since `t0`. */
async function firstOk(url: string, t0: number, deadlineMs: number): Promise<number> {
  while (performance.now() - t0 < deadlineMs) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.status === 200) return performance.now() - t0;
    } catch {
      // Not listening yet.
    }
    await sleep(2);
  }
  throw new Error(`${url} never answered 200`);
}

async function launch(
  kind: "sosvault" | "bare",
  w: World,
): Promise<LaunchSample> {
  const port = freePort();
  const t0 = performance.now();
  const ok = firstOk(`http://127.0.0.1:${port}/health`, t0, 30_000);
  let child: Child | undefined;
  try {
    child = kind === "sosvault"
      ? await startSosvault(w.dir, w.env, { listen: `127.0.0.1:${port}` })
      : await startBareMcp(w.dir, { port });
    const firstOkMs = await ok;
    const rssStartMiB = statusKiB(child.pid, "VmRSS") / 1024;
    // A few requests, as a client's first minute would make them.
    for (let i = 0; i < 3; i++) await (await fetch(`${child.url}/health`)).body?.cancel();
    let firstConnectMs: number | undefined;
    let args: Record<string, unknown> = { connection_id: "jc_0123456789abcdefghijklmnop" };
    const token = kind === "sosvault" ? w.token : undefined;
    if (kind === "sosvault") {
      const c = await connect(child.url, w.token, w.jiraUrl, w.pat);
      firstConnectMs = c.ms;
      args = { connection_id: c.id };
      const list = await fetch(`${child.url}/api/jira/connections`, {
        headers: { authorization: `Bearer ${w.token}` },
      });
      await list.body?.cancel();
    }
    const session = await openSession(child.url, token);
    await rpc(session, "tools/list", {});
    for (let i = 0; i < 3; i++) await callTool(session, "jira_connection_status", args);
    await closeSession(session);
    await sleep(1000);
    const rssIdleMiB = statusKiB(child.pid, "VmRSS") / 1024;
    return {
      firstOkMs,
      listeningMs: child.listeningMs,
      rssStartMiB,
      rssIdleMiB,
      firstConnectMs,
    };
  } finally {
    await ok.catch(() => {});
    await child?.stop();
  }
}

export async function coldStarts(w: World, runs: number): Promise<ColdStartResult> {
  const out: ColdStartResult = { sosvault: [], bare: [] };
  // One unmeasured launch each: the first compiles and caches modules.
  await launch("sosvault", w);
  await launch("bare", w);
  for (let r = 0; r < runs; r++) {
    for (const kind of alternate(["sosvault", "bare"] as const, r)) {
      out[kind].push(await launch(kind, w));
    }
  }
  return out;
}

export interface ConnectResult {
  connectMs: number[];
  myselfMs: number[];
}

/**
 * `n` connects to a running sosvault, alternating with a direct GET /rest/api/2/myself to the
 * same fake Jira over a kept-alive TLS connection: the Jira round trip connect cannot beat.
 */
export async function connectLatency(w: World, server: Child, n: number): Promise<ConnectResult> {
  const out: ConnectResult = { connectMs: [], myselfMs: [] };
  const myself = async () => {
    const started = performance.now();
    const res = await fetch(`${w.jiraUrl}/rest/api/2/myself`, {
      headers: { authorization: `Bearer ${w.pat}`, accept: "application/json" },
      client: w.client,
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`myself: ${res.status}`);
    return performance.now() - started;
  };
  for (let i = 0; i < 3; i++) {
    await connect(server.url, w.token, w.jiraUrl, w.pat);
    await myself();
  }
  for (let i = 0; i < n; i++) {
    for (const what of alternate(["connect", "myself"] as const, i)) {
      if (what === "connect") {
        out.connectMs.push((await connect(server.url, w.token, w.jiraUrl, w.pat)).ms);
      } else {
        out.myselfMs.push(await myself());
      }
    }
  }
  return out;
}
