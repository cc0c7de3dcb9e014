/**
 * jira_connection_status calls per second and latency under load: wrk (scripts/bench/
 * mcp_call.lua) on one pre-initialised session, against sosvault and the bare MCP server,
 * alternating, each run bounded in time (-d) and in count (the script's MAX_REQUESTS).
 * Optionally one more run against a sosvault started with --cpu-prof, summarised by area.
 */
import { REPO_ROOT } from "../../tests/helpers/paths.ts";
import { type ProfileSummary, readProfile, summarise } from "./cpuprofile.ts";
import { callTool, type McpSession, openSession } from "./mcp_session.ts";
import { type Child, cpuMs, run, startSosvault } from "./procs.ts";
import { alternate } from "./stats.ts";
import { connect, type World } from "./world.ts";

export interface WrkResult {
  requests: number;
  duration_us: number;
  ok: number;
  bad: number;
  sse: number;
  json: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
  mean_us: number;
  errors: Record<string, number>;
  first_bad: string;
  /** Derived: good answers per second. */
  rps: number;
  /**
   * The server process's CPU time (all threads) per good answer, µs: steadier than calls/s on
   * a shared machine, where another tenant's load slows both servers' runs unevenly.
   */
  cpu_us?: number;
}

export type Target = "sosvault" | "bare";

export interface LoadResult {
  /** What each server answers a tools/call with (SSE or JSON). */
  answers: Record<Target, string>;
  /** By target, then by connection count: one WrkResult per run. */
  runs: Record<Target, Record<number, WrkResult[]>>;
  /**
   * sosvault with a per-user tool budget too large to run out (the limiter's cost, not its
   * policy), by connection count like `runs`; absent from a build without budgets.
   */
  budget?: Record<number, WrkResult[]>;
  /**
   * sosvault in SOSVAULT_AUTH=oidc, each call carrying a JWT access token (verified against the
   * issuer's cached key on every request), at 16 connections.
   */
  jwt?: WrkResult[];
}

const SCRIPT = `${REPO_ROOT}/scripts/bench/mcp_call.lua`;
const MAX_REQUESTS_PER_THREAD = 500_000;

export async function wrk(
  s: McpSession,
  argsJson: string,
  connections: number,
  seconds: number,
  allowBad = false,
): Promise<WrkResult> {
  const res = await run("wrk", [
    "-t1",
    `-c${connections}`,
    `-d${seconds}s`,
    "--timeout",
    "5s",
    "-s",
    SCRIPT,
    s.url,
    "--",
    s.sessionId,
    s.token ?? "-",
    "jira_connection_status",
    argsJson,
    String(MAX_REQUESTS_PER_THREAD),
    s.protocolVersion,
  ], { timeoutMs: (seconds + 30) * 1000 });
  const line = res.stdout.split("\n").find((l) => l.startsWith("WRKJSON "));
  if (res.code !== 0 || !line) throw new Error(`wrk failed: ${res.stdout}\n${res.stderr}`);
  const r = JSON.parse(line.slice(8)) as WrkResult;
  r.rps = r.ok / (r.duration_us / 1e6);
  if (r.bad > 0 && !allowBad) {
    throw new Error(`wrk saw ${r.bad} bad answers, first: ${r.first_bad}`);
  }
  return r;
}

/** A session to load, its tool arguments, and the server process that answers it. */
export interface LoadTarget {
  session: McpSession;
  argsJson: string;
  pid: number;
}

export interface LoadSetup {
  sessions: Record<Target, McpSession>;
  pids: Record<Target, number>;
  argsJson: string;
  answers: Record<Target, string>;
  /** The budgeted sosvault, if there is one. */
  budget?: LoadTarget;
  /** The JWT-auth sosvault, if there is one. */
  jwt?: LoadTarget;
}

/** One bounded wrk run, with the server's CPU time per answer over the run. */
async function measured(
  t: LoadTarget,
  connections: number,
  seconds: number,
  allowBad = false,
): Promise<WrkResult> {
  const before = cpuMs(t.pid);
  const res = await wrk(t.session, t.argsJson, connections, seconds, allowBad);
  res.cpu_us = res.ok > 0 ? (cpuMs(t.pid) - before) * 1000 / res.ok : undefined;
  return res;
}

/** `token`: a sosvault user with no other connections (the secret guard lists them all). */
export async function prepareLoad(
  w: World,
  token: string,
  sosvault: Child,
  bare: Child,
): Promise<LoadSetup> {
  const { id } = await connect(sosvault.url, token, w.jiraUrl, w.pat);
  const args = { connection_id: id };
  const sessions = {
    sosvault: await openSession(sosvault.url, token),
    bare: await openSession(bare.url),
  };
  const answers = {
    sosvault: (await callTool(sessions.sosvault, "jira_connection_status", args)).kind,
    bare: (await callTool(sessions.bare, "jira_connection_status", args)).kind,
  };
  return {
    sessions,
    pids: { sosvault: sosvault.pid, bare: bare.pid },
    argsJson: JSON.stringify(args),
    answers,
  };
}

/** A session on another sosvault (the budgeted one), for `token`'s own connection. */
export async function prepareBudget(
  w: World,
  token: string,
  server: Child,
): Promise<LoadTarget> {
  const { id } = await connect(server.url, token, w.jiraUrl, w.pat);
  const session = await openSession(server.url, token);
  await callTool(session, "jira_connection_status", { connection_id: id });
  return { session, argsJson: JSON.stringify({ connection_id: id }), pid: server.pid };
}

/**
 * Every target at every connection count, `runs` rounds. Within a round the targets run back to
 * back in an order that reverses every other round, so the budgeted sosvault always sits next
 * to the bare server: the report compares each round's pair (see report.ts pairedRatio), which
 * cancels the slow drifts of a shared machine.
 */
export async function statusLoad(
  setup: LoadSetup,
  plan: { connections: number[]; seconds: number; runs: number; warmupSeconds: number },
  log: (line: string) => void,
): Promise<LoadResult> {
  const targets: Target[] = ["sosvault", "bare"];
  const runs = { sosvault: {}, bare: {} } as LoadResult["runs"];
  const budget: Record<number, WrkResult[]> = {};
  const jwt: WrkResult[] = [];
  const main = (t: Target): LoadTarget => ({
    session: setup.sessions[t],
    argsJson: setup.argsJson,
    pid: setup.pids[t],
  });
  const extra = { budget: setup.budget, jwt: setup.jwt };
  // The same warm-up for every server, at 16 and at 64 connections: a server's speed at 16
  // depends on the load it has seen (one that had also run at 64 was measurably faster, with
  // less time in garbage collection), so none starts the rounds less warm than another.
  const warm = async (t: LoadTarget, allowBad = false) => {
    for (const c of [16, 64]) await wrk(t.session, t.argsJson, c, plan.warmupSeconds, allowBad);
  };
  for (const t of targets) {
    await warm(main(t));
    for (const c of plan.connections) runs[t][c] = [];
  }
  for (const c of plan.connections) budget[c] = [];
  if (setup.budget) await warm(setup.budget, true);
  if (setup.jwt) await warm(setup.jwt);
  const show = (name: string, c: number, res: WrkResult) =>
    log(
      `  ${name.padEnd(8)} c=${String(c).padEnd(3)} ${res.rps.toFixed(0)}/s ` +
        `p50 ${(res.p50_us / 1000).toFixed(1)} ms p99 ${(res.p99_us / 1000).toFixed(1)} ms` +
        (res.cpu_us !== undefined ? ` ${res.cpu_us.toFixed(0)} µs CPU/call` : "") +
        (res.bad ? ` (${res.bad} refused)` : ""),
    );
  for (let r = 0; r < plan.runs; r++) {
    for (const c of plan.connections) {
      const order: Array<Target | "budget" | "jwt"> = ["sosvault", "bare"];
      // The budgeted sosvault runs every round the other does (a server's speed depends on the
      // load it has seen: one measured only at 16 connections ran slower than its twin that
      // also ran the other rounds, limiter or not), always next to the bare server.
      if (extra.budget) order.push("budget");
      if (c === 16 && extra.jwt) order.unshift("jwt");
      for (const t of alternate(order, r)) {
        const [target, into, allowBad] = t === "budget"
          ? [extra.budget!, budget[c], true]
          : t === "jwt"
          ? [extra.jwt!, jwt, false]
          : [main(t), runs[t][c], false];
        const res = await measured(target, c, plan.seconds, allowBad);
        into.push(res);
        show(t, c, res);
      }
    }
  }
  return {
    answers: setup.answers,
    runs,
    ...(setup.budget ? { budget } : {}),
    ...(setup.jwt ? { jwt } : {}),
  };
}

/** One load run against a sosvault started with --cpu-prof; the profile summarised. */
export async function profileLoad(
  w: World,
  token: string,
  connections: number,
  seconds: number,
): Promise<{ wrk: WrkResult; profile: ProfileSummary }> {
  const dir = `${w.dir}/cpuprof`;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const server = await startSosvault(w.dir, w.env, {
    denoFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`],
  });
  let result: WrkResult;
  try {
    const { id } = await connect(server.url, token, w.jiraUrl, w.pat);
    const session = await openSession(server.url, token);
    const argsJson = JSON.stringify({ connection_id: id });
    await wrk(session, argsJson, connections, 1);
    result = await wrk(session, argsJson, connections, seconds);
  } finally {
    await server.stop();
  }
  const profile = summarise(await readProfile(dir), {
    "bearer auth (middleware)": (fn) => fn === "bearerAuthMiddleware",
    "secret guard": (fn, url) => fn === "check" && url.endsWith("secret_guard.ts"),
    "Hono": (_fn, url) => url.includes("/hono@"),
    "MCP SDK": (_fn, url) => url.includes("@modelcontextprotocol"),
    "zod": (_fn, url) => url.includes("/zod@"),
  });
  return { wrk: result, profile };
}
