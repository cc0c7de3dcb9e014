/**
 * jira_connection_status calls per second and latency under load: wrk (scripts/bench/
 * mcp_call.lua) on one pre-initialised session, against sosvault and the bare MCP server,
 * alternating, each run bounded in time (-d) and in count (the script's MAX_REQUESTS).
 * Optionally one more run against a sosvault started with --cpu-prof, summarised by area.
 */
import { REPO_ROOT } from "../../tests/helpers/paths.ts";
import { type ProfileSummary, readProfile, summarise } from "./cpuprofile.ts";
import { callTool, type McpSession, openSession } from "./mcp_session.ts";
import { type Child, run, startSosvault } from "./procs.ts";
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
}

export type Target = "sosvault" | "bare";

export interface LoadResult {
  /** What each server answers a tools/call with (SSE or JSON). */
  answers: Record<Target, string>;
  /** By target, then by connection count: one WrkResult per run. */
  runs: Record<Target, Record<number, WrkResult[]>>;
  /**
   * sosvault with a per-user tool budget too large to run out (the limiter's cost, not its
   * policy), at 16 connections; absent from a build without budgets.
   */
  budget?: WrkResult[];
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

export interface LoadSetup {
  sessions: Record<Target, McpSession>;
  argsJson: string;
  answers: Record<Target, string>;
  /** The budgeted sosvault's session and arguments, if there is one. */
  budget?: { session: McpSession; argsJson: string };
  /** The JWT-auth sosvault's session and arguments, if there is one. */
  jwt?: { session: McpSession; argsJson: string };
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
  return { sessions, argsJson: JSON.stringify(args), answers };
}

/** A session on another sosvault (the budgeted one), for `token`'s own connection. */
export async function prepareBudget(
  w: World,
  token: string,
  server: Child,
): Promise<{ session: McpSession; argsJson: string }> {
  const { id } = await connect(server.url, token, w.jiraUrl, w.pat);
  const session = await openSession(server.url, token);
  await callTool(session, "jira_connection_status", { connection_id: id });
  return { session, argsJson: JSON.stringify({ connection_id: id }) };
}

export async function statusLoad(
  setup: LoadSetup,
  plan: { connections: number[]; seconds: number; runs: number; warmupSeconds: number },
  log: (line: string) => void,
): Promise<LoadResult> {
  const targets: Target[] = ["sosvault", "bare"];
  const runs = { sosvault: {}, bare: {} } as LoadResult["runs"];
  const budget: WrkResult[] = [];
  const jwt: WrkResult[] = [];
  const extra = { budget: setup.budget, jwt: setup.jwt };
  for (const t of targets) {
    await wrk(setup.sessions[t], setup.argsJson, 16, plan.warmupSeconds);
    for (const c of plan.connections) runs[t][c] = [];
  }
  if (setup.budget) await wrk(setup.budget.session, setup.budget.argsJson, 16, 1, true);
  if (setup.jwt) await wrk(setup.jwt.session, setup.jwt.argsJson, 16, plan.warmupSeconds);
  const show = (name: string, c: number, res: WrkResult) =>
    log(
      `  ${name.padEnd(8)} c=${String(c).padEnd(3)} ${res.rps.toFixed(0)}/s ` +
        `p50 ${(res.p50_us / 1000).toFixed(1)} ms p99 ${(res.p99_us / 1000).toFixed(1)} ms` +
        (res.bad ? ` (${res.bad} refused)` : ""),
    );
  for (let r = 0; r < plan.runs; r++) {
    for (const c of plan.connections) {
      const order: Array<Target | "budget" | "jwt"> = [...targets];
      if (c === 16) { for (const e of ["budget", "jwt"] as const) if (extra[e]) order.push(e); }
      for (const t of alternate(order, r)) {
        if (t === "budget" || t === "jwt") {
          const res = await wrk(
            extra[t]!.session,
            extra[t]!.argsJson,
            c,
            plan.seconds,
            t === "budget",
          );
          (t === "budget" ? budget : jwt).push(res);
          show(t, c, res);
          continue;
        }
        const res = await wrk(setup.sessions[t], setup.argsJson, c, plan.seconds);
        runs[t][c].push(res);
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
