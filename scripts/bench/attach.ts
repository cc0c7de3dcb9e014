/**
 * Attach throughput and the server's memory: jira_attach_artifact through a fresh `sosvault
 * serve` process (its VmHWM is then this attach's peak), against `curl -F file=@…` uploading the
 * same file to the same loopback HTTPS sink, alternating. And the uploader alone in a probe
 * process, against the fs.createReadStream design it replaced, to show where memory goes.
 */
import { REPO_ROOT, TLS_DIR } from "../../tests/helpers/paths.ts";
import { callTool, closeSession, openSession } from "./mcp_session.ts";
import {
  cpuMs,
  MiB,
  nowAbs,
  run,
  type Sink,
  startSosvault,
  statusKiB,
  TEST_CA_FILE,
} from "./procs.ts";
import { alternate } from "./stats.ts";
import { connect, ISSUE, JIRA_USER, type World } from "./world.ts";

export interface AttachSample {
  who: "sosvault" | "curl";
  mib: number;
  /** sosvault: the tool call's round trip (the third attach of the process); curl: spawn to exit. */
  wallMs: number;
  mibPerSecond: number;
  /** The sink's view: request head → last body byte. */
  sinkMs: number;
  sinkMibPerSecond: number;
  /** sosvault only: the first attach after the server started (same size). */
  firstWallMs?: number;
  /** sosvault only, MiB: RSS before the first attach, VmHWM then and after all three. */
  idleRssMiB?: number;
  hwmBeforeMiB?: number;
  peakMiB?: number;
  growthMiB?: number;
  /** sosvault only: server CPU during the measured attach. */
  serverCpuMs?: number;
  /** sosvault only, ms of the measured attach: call → first Jira GET → upload head → body end → result. */
  phases?: { beforeJira: number; jiraGets: number; body: number; after: number };
}

/** `mib` MiB of incompressible bytes in the bench user's artifact directory; returns the path. */
export async function makeArtifact(dir: string, mib: number): Promise<string> {
  const path = `${dir}/artifacts/${JIRA_USER}/bench-${mib}MiB.bin`;
  const file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
  const chunk = new Uint8Array(4 * MiB);
  crypto.getRandomValues(chunk.subarray(0, 65536));
  for (let i = 65536; i < chunk.length; i += 65536) {
    crypto.getRandomValues(chunk.subarray(i, i + 65536));
  }
  for (let written = 0; written < mib * MiB;) {
    chunk[0] = written & 0xff;
    const n = Math.min(chunk.length, mib * MiB - written);
    const part = chunk.subarray(0, n);
    for (let off = 0; off < n;) off += await file.write(part.subarray(off));
    written += n;
  }
  file.close();
  return path;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A fresh server: RSS before its first attach, then three attaches of the same file (the first
 * pays for loading node:https and compiling the upload path), VmHWM after all three. Throughput
 * is the third's; the first's time is kept too.
 */
async function viaSosvault(w: World, sink: Sink, path: string, mib: number) {
  const server = await startSosvault(w.dir, w.env);
  try {
    const { id } = await connect(server.url, w.token, sink.url, w.pat);
    const session = await openSession(server.url, w.token);
    await sleep(300);
    const idle = statusKiB(server.pid, "VmRSS");
    const hwmBefore = statusKiB(server.pid, "VmHWM");
    const attach = async () => {
      const t0 = nowAbs();
      const started = performance.now();
      const { result } = await callTool(session, "jira_attach_artifact", {
        connection_id: id,
        issue_key: ISSUE,
        artifact_ref: path,
      }, "bench-progress");
      const wallMs = performance.now() - started;
      const t1 = nowAbs();
      // deno-lint-ignore no-explicit-any
      const stored = (result.structuredContent as any)?.attachment?.size;
      if (stored !== mib * MiB) throw new Error(`attach stored ${stored} bytes`);
      const up = await sink.nextUpload();
      if (up.fileBytes !== mib * MiB || !up.authorised) {
        throw new Error(`the sink saw ${JSON.stringify(up)}`);
      }
      const firstGet = sink.requests.find((r) => r.at >= t0 && r.method === "GET")?.at ?? up.at;
      return {
        wallMs,
        up,
        phases: {
          beforeJira: firstGet - t0,
          jiraGets: up.at - firstGet,
          body: up.ms,
          after: t1 - (up.at + up.ms),
        },
      };
    };
    const first = await attach();
    // One more unmeasured, so the measured one runs compiled code, as in a long-running server.
    await attach();
    const cpu0 = cpuMs(server.pid);
    const second = await attach();
    const serverCpuMs = cpuMs(server.pid) - cpu0;
    const peak = statusKiB(server.pid, "VmHWM");
    await closeSession(session);
    return {
      who: "sosvault" as const,
      mib,
      wallMs: second.wallMs,
      mibPerSecond: mib / (second.wallMs / 1000),
      sinkMs: second.up.ms,
      sinkMibPerSecond: second.up.bytes / MiB / (second.up.ms / 1000),
      firstWallMs: first.wallMs,
      idleRssMiB: idle / 1024,
      hwmBeforeMiB: hwmBefore / 1024,
      peakMiB: peak / 1024,
      growthMiB: (peak - idle) / 1024,
      serverCpuMs,
      phases: second.phases,
    };
  } finally {
    await server.stop();
  }
}

async function viaCurl(sink: Sink, path: string, mib: number, headerFile: string) {
  const res = await run("curl", [
    "-sS",
    "--http1.1",
    "--cacert",
    TEST_CA_FILE,
    "-H",
    `@${headerFile}`,
    "-F",
    `file=@${path}`,
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    `${sink.url}/rest/api/2/issue/${ISSUE}/attachments`,
  ], { timeoutMs: 120_000 });
  if (res.code !== 0 || res.stdout.trim() !== "200") {
    throw new Error(`curl: ${res.code} ${res.stdout} ${res.stderr}`);
  }
  const up = await sink.nextUpload();
  if (up.fileBytes !== mib * MiB) throw new Error(`the sink saw ${JSON.stringify(up)}`);
  return {
    who: "curl" as const,
    mib,
    wallMs: res.ms,
    mibPerSecond: mib / (res.ms / 1000),
    sinkMs: up.ms,
    sinkMibPerSecond: up.bytes / MiB / (up.ms / 1000),
  };
}

export async function attachBench(
  w: World,
  sink: Sink,
  plan: Array<{ mib: number; runs: number }>,
  log: (line: string) => void,
): Promise<AttachSample[]> {
  // Headers from a file (mode 0600), not the command line. "Expect:" stops curl from waiting
  // for a 100 Continue that the sink does not send.
  const headerFile = `${w.dir}/curl-headers.txt`;
  await Deno.writeTextFile(
    headerFile,
    `Authorization: Bearer ${w.pat}\nX-Atlassian-Token: no-check\nExpect:\n`,
    { mode: 0o600 },
  );
  const out: AttachSample[] = [];
  for (const { mib, runs } of plan) {
    const path = await makeArtifact(w.dir, mib);
    try {
      for (let r = 0; r < runs; r++) {
        for (const who of alternate(["sosvault", "curl"] as const, r)) {
          const s: AttachSample = who === "sosvault"
            ? await viaSosvault(w, sink, path, mib)
            : await viaCurl(sink, path, mib, headerFile);
          out.push(s);
          const p = s.phases;
          log(
            `  ${mib} MiB ${who.padEnd(8)} ${s.mibPerSecond.toFixed(0)} MiB/s (body ` +
              `${s.sinkMibPerSecond.toFixed(0)} MiB/s)` +
              (s.growthMiB !== undefined ? `, RSS +${s.growthMiB.toFixed(1)} MiB` : "") +
              (p
                ? `, ms: ${p.beforeJira.toFixed(1)} + ${p.jiraGets.toFixed(1)} + ` +
                  `${p.body.toFixed(1)} + ${p.after.toFixed(1)}`
                : ` (${s.wallMs.toFixed(1)} ms, body ${s.sinkMs.toFixed(1)})`),
          );
        }
      }
    } finally {
      await Deno.remove(path);
    }
  }
  await Deno.remove(headerFile);
  return out;
}

export interface ProbeSample {
  mode: "ring" | "stream";
  mibPerSecond: number;
  rssGrowthMiB: number;
  externalGrowthMiB: number;
  heapUsedGrowthMiB: number;
  heapTotalGrowthMiB: number;
}

/** The uploader alone (ring) against the replaced createReadStream design (stream). */
export async function probeBench(
  w: World,
  sink: Sink,
  mib: number,
  runs: number,
): Promise<ProbeSample[]> {
  const path = await makeArtifact(w.dir, mib);
  const warm = `${w.dir}/artifacts/${JIRA_USER}/warm.bin`;
  await Deno.writeFile(warm, new Uint8Array(MiB), { mode: 0o600 });
  const out: ProbeSample[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      for (const mode of alternate(["ring", "stream"] as const, r)) {
        const res = await run("deno", [
          "run",
          "--no-prompt",
          "--allow-net=127.0.0.1",
          `--allow-read=${path},${warm},${TLS_DIR}`,
          "--allow-env=BENCH_PAT",
          `${REPO_ROOT}/scripts/bench/upload_probe.ts`,
          mode,
          path,
          String(sink.port),
          warm,
        ], { env: { BENCH_PAT: w.pat }, timeoutMs: 120_000 });
        if (res.code !== 0) throw new Error(`probe ${mode}: ${res.stderr}`);
        const line = res.stdout.trim().split("\n").at(-1)!;
        out.push(JSON.parse(line));
        // The probe's warm-up and upload reached the sink too.
        await sink.nextUpload();
        await sink.nextUpload();
      }
    }
  } finally {
    await Deno.remove(path);
    await Deno.remove(warm);
  }
  return out;
}
