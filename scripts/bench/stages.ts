/**
 * Where a jira_connection_status call's time goes: each stage of sosvault's pipeline called on
 * its own, in process, sequentially (no network), beside the whole tools/call through sosvault's
 * app and through the bare MCP server's handler. Runs as its own process and prints one JSON
 * line; the real services (openServices, KV on disk) talk HTTPS to an in-process fake Jira.
 *
 *   deno run --unstable-kv --allow-net=127.0.0.1 --allow-read=DIR,tests/fixtures/tls \
 *     --allow-write=DIR scripts/bench/stages.ts DIR [ITERATIONS]
 */
import process from "node:process";
import { type Env, ENV_VARS, parseConfig } from "../../src/config.ts";
import { openServices } from "../../src/runtime.ts";
import { createApp } from "../../src/app.ts";
import { McpSessions } from "../../src/mcp/sessions.ts";
import { TOOLS } from "../../src/mcp/tools/mod.ts";
import { okResult } from "../../src/mcp/results.ts";
import { startFakeJira } from "../../tests/helpers/fake_jira_server.ts";
import { makeDcPat } from "../../tests/helpers/canary.ts";
import { bareHandler } from "./bare_mcp_server.ts";
import { median, percentile } from "./stats.ts";

export interface StageResult {
  stage: string;
  /** Wall time per call, µs: median and p99 over the iterations. */
  p50Us: number;
  p99Us: number;
  /** Process CPU (user + system, all threads) per call, µs. */
  cpuUs: number;
}

const TLS_CA = new URL("../../tests/fixtures/tls/test-ca.pem", import.meta.url).pathname;

interface Stage {
  stage: string;
  fn: () => Promise<unknown>;
}

/**
 * Measures the stages interleaved — every iteration calls each stage once, starting at a
 * different one — so that a noisy moment on the machine hits all of them alike.
 */
async function measure(stages: Stage[], n: number): Promise<StageResult[]> {
  for (let i = 0; i < Math.min(200, n); i++) for (const s of stages) await s.fn();
  const times = stages.map(() => [] as number[]);
  const cpu = stages.map(() => 0);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < stages.length; k++) {
      const j = (i + k) % stages.length;
      const c0 = process.cpuUsage();
      const t = performance.now();
      await stages[j].fn();
      times[j].push((performance.now() - t) * 1000);
      const c = process.cpuUsage(c0);
      cpu[j] += c.user + c.system;
    }
  }
  return stages.map((s, j) => ({
    stage: s.stage,
    p50Us: median(times[j]),
    p99Us: percentile(times[j], 99),
    cpuUs: cpu[j] / n,
  }));
}

function mcpRequest(
  sessionId: string | undefined,
  token: string | undefined,
  body: unknown,
): Request {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": "2025-11-25",
  };
  if (sessionId) headers["mcp-session-id"] = sessionId;
  if (token) headers.authorization = `Bearer ${token}`;
  return new Request("http://127.0.0.1/mcp", {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
}

async function openSession(
  handler: (r: Request) => Response | Promise<Response>,
  token?: string,
): Promise<string> {
  const res = await handler(mcpRequest(undefined, token, {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: {
      protocolVersion: "2025-11-25",
      capabilities: {},
      clientInfo: { name: "stages", version: "1" },
    },
  }));
  await res.text();
  const sid = res.headers.get("mcp-session-id");
  if (!sid) throw new Error(`initialize: ${res.status}`);
  const note = await handler(
    mcpRequest(sid, token, { jsonrpc: "2.0", method: "notifications/initialized" }),
  );
  await note.body?.cancel();
  return sid;
}

export async function runStages(dir: string, n: number): Promise<StageResult[]> {
  const jira = await startFakeJira({ maxRecordedRequests: 10 });
  const pat = makeDcPat();
  jira.jira.addUser({ name: "bench", displayName: "Bench" });
  jira.jira.addPat("bench", pat);
  const env: Record<string, string> = {
    TOKEN_VAULT_MASTER_KEY: Array.from(
      crypto.getRandomValues(new Uint8Array(32)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join(""),
    SOSVAULT_KV_PATH: `${dir}/stages.kv`,
    SOSVAULT_LISTEN: "127.0.0.1:0",
    JIRA_ALLOWED_HOSTS: "127.0.0.1",
    JIRA_CA_FILE: TLS_CA,
    SOSVAULT_ARTIFACT_DIR: `${dir}/artifacts`,
  };
  const known = new Set<string>(ENV_VARS);
  // As in the load test: budgets off (measured on their own below, when this build has them).
  for (const name of ["SOSVAULT_RATE_TOOLS", "SOSVAULT_RATE_CONNECT"]) {
    if (known.has(name)) env[name] = "0/60";
  }
  const s = await openServices(parseConfig(env as Env), { logSink: () => {}, sosCandidates: [] });
  try {
    const { token } = await s.users.add("bench", false);
    const ctx = { user: "bench", requestId: "req_bench", source: "mcp" as const };
    const conn = await s.connections.connect(ctx, { base_url: jira.url, pat });
    const args = { connection_id: conn.connection_id };
    const status = TOOLS.find((t) => t.name === "jira_connection_status")!;
    const record = await s.connections.get(ctx, args.connection_id);
    const mcp = new McpSessions(s);
    const app = createApp(s, mcp);
    const sid = await openSession((r) => app.fetch(r), token);
    const bareSid = await openSession(bareHandler);
    let id = 1;
    const call = (sessionId: string, bearer?: string) =>
      mcpRequest(sessionId, bearer, {
        jsonrpc: "2.0",
        id: id++,
        method: "tools/call",
        params: { name: "jira_connection_status", arguments: args },
      });
    const out = await measure([
      { stage: "bearer auth (users.authenticate)", fn: () => s.users.authenticate(token) },
      { stage: "secret guard (secretGuard.check)", fn: () => s.secretGuard.check(ctx, args) },
      {
        stage: "connection read (connections.get)",
        fn: () => s.connections.get(ctx, args.connection_id),
      },
      {
        stage: "input schema + result rendering",
        fn: () => {
          const parsed = status.input.safeParse(args);
          if (!parsed.success) throw new Error("bad args");
          okResult(record as unknown as Record<string, unknown>);
          return Promise.resolve();
        },
      },
      {
        stage: "whole tools/call, sosvault app (in process)",
        fn: async () => {
          const text = await (await app.fetch(call(sid, token))).text();
          if (!text.includes('"result"') || text.includes('"isError":true')) throw new Error(text);
        },
      },
      {
        stage: "whole tools/call, bare MCP server (in process)",
        fn: async () => {
          const text = await (await bareHandler(call(bareSid))).text();
          if (!text.includes('"result"')) throw new Error(text);
        },
      },
    ], n);
    // The per-user budget, when this build has one: a limiter with a budget that never runs
    // out. Measured on its own: its KV writes would slow the reads of the stages above.
    const limiter = (s as unknown as { rateLimiter?: object }).rateLimiter;
    if (limiter) {
      const Limiter = limiter.constructor as new (
        kv: Deno.Kv,
        clock: () => Date,
        limits: Record<string, { count: number; seconds: number }>,
      ) => { take(bucket: string, user: string): Promise<void> };
      const unlimited = new Limiter(s.kv, s.clock, {
        tool: { count: 1_000_000_000, seconds: 60 },
        connect: { count: 1_000_000_000, seconds: 60 },
      });
      out.push(
        ...await measure([{
          stage: "rate limiter (off in the load test)",
          fn: () => unlimited.take("tool", "bench"),
        }], n),
      );
    }
    await mcp.closeAll();
    return out;
  } finally {
    s.kv.close();
    await jira.close();
  }
}

if (import.meta.main) {
  const dir = Deno.args[0];
  const n = Number(Deno.args[1] ?? 2000);
  console.log(JSON.stringify({ stages: await runStages(dir, n) }));
  // The fake Jira's client pool and KV watchers must not keep the process alive.
  Deno.exit(0);
}
