/**
 * `deno task bench`: sosvault's benchmarks, each against a baseline in the same run —
 *   attach throughput and the server's memory (10 MiB, 256 MiB, 1 GiB) vs curl -F to the same
 *     loopback HTTPS sink, and the uploader's memory alone vs the design it replaced;
 *   jira_connection_status calls/s and latency at 1, 16 and 64 connections (wrk, one session)
 *     vs a bare MCP SDK server, with a CPU profile and a per-stage cost breakdown;
 *   connect latency against the fake Jira over HTTPS vs a direct GET /myself;
 *   cold start to a healthy /health and idle memory vs the bare server.
 * Prints the summary table and writes BENCHMARKS.md. Work files live in .bench-out/ (removed
 * at the end unless --keep). Every server is a child process on 127.0.0.1; every load loop is
 * bounded in count and time.
 *
 *   deno task bench [--quick] [--only=cold,connect,status,attach] [--keep] [--no-write]
 * --quick: fewer runs and no 1 GiB file (a smoke test, about a minute; figures are rough).
 */
import { REPO_ROOT } from "../tests/helpers/paths.ts";
import { attachBench, probeBench } from "./bench/attach.ts";
import { prepareBudget, prepareLoad, profileLoad, statusLoad } from "./bench/mcp_load.ts";
import { cat, run, sosvaultEnv, startBareMcp, startSosvault } from "./bench/procs.ts";
import { ENV_VARS } from "../src/config.ts";
import { type BenchData, renderMarkdown, summaryTable } from "./bench/report.ts";
import { why } from "./bench/why.ts";
import { coldStarts, connectLatency } from "./bench/startup.ts";
import { makeWorld } from "./bench/world.ts";
import { startBenchIssuer } from "./bench/jwt_issuer.ts";
import { TLS_DIR } from "../tests/helpers/paths.ts";

const SECTIONS = ["cold", "connect", "status", "attach"];
const known = /^--(quick|keep|no-write|only=[a-z,]+)$/;
const bad = Deno.args.filter((a) => !known.test(a));
if (bad.length) {
  console.error(
    `unknown option ${bad[0]}: [--quick] [--only=${SECTIONS.join(",")}] [--keep] [--no-write]`,
  );
  Deno.exit(64);
}
const flags = {
  quick: Deno.args.includes("--quick"),
  keep: Deno.args.includes("--keep"),
  noWrite: Deno.args.includes("--no-write"),
  only: Deno.args.find((a) => a.startsWith("--only="))?.slice(7),
};
const only = new Set((flags.only ?? SECTIONS.join(",")).split(",").filter((s) => s !== ""));
const quick = flags.quick;

const plan: BenchData["plan"] = quick
  ? {
    coldRuns: 2,
    connects: 10,
    load: { connections: [1, 16, 64], seconds: 1, runs: 3 },
    attach: [{ mib: 10, runs: 2 }, { mib: 256, runs: 1 }],
    probe: { mib: 256, runs: 1 },
    stageIterations: 300,
  }
  : {
    coldRuns: 5,
    connects: 40,
    // Many short rounds rather than a few long ones: the machine is shared, and its slow spells
    // last seconds, so short runs back to back put both sides of a pair in the same spell.
    load: { connections: [1, 16, 64], seconds: 1, runs: 25 },
    attach: [{ mib: 10, runs: 9 }, { mib: 256, runs: 5 }, { mib: 1024, runs: 5 }],
    probe: { mib: 1024, runs: 3 },
    stageIterations: 2000,
  };

const started = performance.now();
const log = (line: string) => console.log(line);
const section = (name: string) =>
  log(`\n== ${name} (${((performance.now() - started) / 1000).toFixed(0)} s)`);

function machine(): BenchData["machine"] {
  const cpuinfo = cat("/proc/cpuinfo");
  const meminfo = cat("/proc/meminfo");
  const kib = Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? NaN);
  const nproc = new Deno.Command("nproc", { stdout: "piped" }).outputSync();
  return {
    nproc: new TextDecoder().decode(nproc.stdout).trim(),
    model: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown CPU",
    memory: `${(kib / 1024 / 1024).toFixed(1)} GiB`,
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
    loadStart: cat("/proc/loadavg").split(" ").slice(0, 3).join(" "),
    loadEnd: "",
  };
}

const data: BenchData = {
  date: new Date().toISOString(),
  machine: machine(),
  wallSeconds: 0,
  plan,
};
log(
  `sosvault benchmarks${
    quick ? " (quick)" : ""
  }: ${data.machine.nproc} CPUs, ${data.machine.model}, ` +
    `${data.machine.memory}, Deno ${data.machine.deno}, load ${data.machine.loadStart}`,
);

for (const tool of ["wrk", "curl"]) {
  const probe = await run(tool, ["--version"]).catch(() => ({ code: -1 }));
  // wrk --version exits 1 after printing its banner.
  if (probe.code === -1) {
    throw new Error(`${tool} is needed: apt-get install ${tool}`);
  }
}

const root = `${REPO_ROOT}/.bench-out`;
await Deno.mkdir(root, { recursive: true, mode: 0o700 });
const dir = await Deno.makeTempDir({ dir: root, prefix: "run-" });
const w = await makeWorld(dir);
try {
  if (only.has("cold")) {
    section("cold start and idle memory");
    data.cold = await coldStarts(w, plan.coldRuns);
  }

  if (only.has("connect")) {
    section("connect latency");
    const server = await startSosvault(dir, w.env);
    try {
      data.connect = await connectLatency(w, server, plan.connects);
    } finally {
      await server.stop();
    }
  }

  if (only.has("status")) {
    section("jira_connection_status under load (wrk, one session)");
    const sosvault = await startSosvault(dir, w.env);
    const bare = await startBareMcp(dir);
    // With per-user tool budgets in this build: one more sosvault whose budget never runs out,
    // with its own KV file (its budget writes must not slow the other server's reads).
    const budgetEnv = sosvaultEnv(dir, {
      SOSVAULT_RATE_TOOLS: "9999999/60",
      SOSVAULT_KV_PATH: `${dir}/kv-budget/sosvault.kv`,
    });
    const budgeted = ENV_VARS.includes("SOSVAULT_RATE_TOOLS" as never)
      ? await startSosvault(dir, budgetEnv)
      : undefined;
    // One more sosvault in SOSVAULT_AUTH=oidc, its own KV file: the cost of checking a JWT.
    const issuer = await startBenchIssuer();
    const jwtServer = await startSosvault(
      dir,
      sosvaultEnv(dir, {
        SOSVAULT_AUTH: "oidc",
        SOSVAULT_OIDC_ISSUER: issuer.issuer,
        SOSVAULT_KV_PATH: `${dir}/kv-jwt/sosvault.kv`,
      }),
    );
    try {
      const setup = await prepareLoad(w, await w.addUser("load"), sosvault, bare);
      if (budgeted) {
        setup.budget = await prepareBudget(w, await w.addUser("budget", budgetEnv), budgeted);
      }
      setup.jwt = await prepareBudget(
        w,
        await issuer.token("jwt", `${jwtServer.url}/mcp`),
        jwtServer,
      );
      data.load = await statusLoad(setup, { ...plan.load, warmupSeconds: quick ? 1 : 2 }, log);
    } finally {
      await jwtServer.stop();
      await issuer.stop();
      await sosvault.stop();
      await bare.stop();
      await budgeted?.stop();
    }
    section("CPU profile of sosvault under load");
    data.profile = await profileLoad(w, await w.addUser("profile"), 16, quick ? 2 : 5);
    section("per-stage cost of a status call (in process)");
    const stagesDir = `${dir}/stages`;
    await Deno.mkdir(stagesDir, { recursive: true, mode: 0o700 });
    const res = await run("deno", [
      "run",
      "--unstable-kv",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      `--allow-read=${stagesDir},${TLS_DIR}`,
      `--allow-write=${stagesDir}`,
      `${REPO_ROOT}/scripts/bench/stages.ts`,
      stagesDir,
      String(plan.stageIterations),
    ], { timeoutMs: 300_000 });
    const line = res.stdout.split("\n").find((l) => l.startsWith('{"stages"'));
    if (res.code !== 0 || !line) throw new Error(`stages failed: ${res.stderr}`);
    data.stages = JSON.parse(line).stages;
  }

  if (only.has("attach")) {
    section("attach throughput and server memory vs curl");
    data.attach = await attachBench(w, w.sink, plan.attach, log);
    section("upload memory: the uploader alone vs the replaced design");
    data.probe = await probeBench(w, w.sink, plan.probe.mib, plan.probe.runs);
  }
} finally {
  await w.close();
  if (!flags.keep) await Deno.remove(dir, { recursive: true });
}

data.machine.loadEnd = cat("/proc/loadavg").split(" ").slice(0, 3).join(" ");
data.wallSeconds = (performance.now() - started) / 1000;
console.log("\n" + summaryTable(data));
if (!flags.noWrite && !quick && SECTIONS.every((s) => only.has(s))) {
  await Deno.writeTextFile(`${REPO_ROOT}/BENCHMARKS.md`, renderMarkdown(data, why(data)) + "\n");
  // As `deno task check` wants it (tables aligned, prose wrapped at the configured width).
  const fmt = await run("deno", ["fmt", "--quiet", "BENCHMARKS.md"], { cwd: REPO_ROOT });
  if (fmt.code !== 0) throw new Error(`deno fmt BENCHMARKS.md: ${fmt.stderr}`);
  log("\nwrote BENCHMARKS.md");
} else {
  log("\n(BENCHMARKS.md is written only by a full run)");
}
log(`wall time: ${data.wallSeconds.toFixed(0)} s`);
