/**
 * Child processes for the benchmarks and what we read about them: /proc through `cat` (Deno
 * guards /proc behind --allow-all even for reads), the sosvault server as an operator runs it
 * (tests/helpers/process.ts: narrow flags, a cleared environment), the bare MCP server and the
 * HTTPS sink started the same way.
 */
import { ENV_VARS } from "../../src/config.ts";
import { REPO_ROOT, TLS_DIR } from "../../tests/helpers/paths.ts";
import { sosvaultArgs } from "../../tests/helpers/process.ts";

export const MiB = 1024 * 1024;
export const TEST_CA_FILE = `${TLS_DIR}/test-ca.pem`;
const dec = new TextDecoder();

export function cat(path: string): string {
  const out = new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
    .outputSync();
  return dec.decode(out.stdout);
}

/** A `Vm…`/`Rss…` field of /proc/<pid>/status, in KiB. */
export function statusKiB(pid: number, field: "VmRSS" | "VmHWM" | "RssAnon" | "RssFile"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(cat(`/proc/${pid}/status`));
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]);
}

/** User + system CPU time of a process so far, in ms (clock ticks are 10 ms on Linux). */
export function cpuMs(pid: number): number {
  const fields = cat(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function randomMasterKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** What Deno needs to find its cache; nothing else of the bench's environment leaks. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "NPM_CONFIG_REGISTRY"]) {
    const v = Deno.env.get(name);
    if (v) env[name] = v;
  }
  return env;
}

/** The benchmark's sosvault environment: rate limits off (if this build has them). */
export function sosvaultEnv(dir: string, extra: Record<string, string> = {}) {
  const env: Record<string, string> = {
    TOKEN_VAULT_MASTER_KEY: MASTER_KEY,
    SOSVAULT_KV_PATH: `${dir}/kv/sosvault.kv`,
    SOSVAULT_ARTIFACT_DIR: `${dir}/artifacts`,
    JIRA_CA_FILE: TEST_CA_FILE,
    JIRA_ALLOWED_HOSTS: "127.0.0.1",
    JIRA_ATTACHMENT_MAX_BYTES: String(4 * 1024 * MiB),
    ...extra,
  };
  // Budgets of N calls per minute would cap the figures we measure; they are a policy, not a
  // cost. (A build without rate limits does not know these variables.)
  const known = new Set<string>(ENV_VARS);
  for (const name of ["SOSVAULT_RATE_TOOLS", "SOSVAULT_RATE_CONNECT"]) {
    if (known.has(name) && !(name in extra)) env[name] = "0/60";
  }
  for (const name of Object.keys(env)) {
    if (!known.has(name)) delete env[name];
  }
  return env;
}
const MASTER_KEY = randomMasterKey();

export interface Child {
  name: string;
  pid: number;
  url: string;
  /** ms from spawn to the "listening" line. */
  listeningMs: number;
  lines: string[];
  stop(): Promise<void>;
}

/** A free loopback port (a tiny race with other processes; fine for a benchmark). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Spawns `deno <args>` and resolves once it logs a JSON line with msg "listening" (and a url),
 * or `onLine` returns a url. Lines are kept (bounded) for error messages.
 */
export async function spawnServer(
  name: string,
  args: string[],
  options: {
    cwd: string;
    env: Record<string, string>;
    stdin?: string;
    urlOf?: (rec: Record<string, unknown>) => string | undefined;
    onLine?: (line: string) => void;
    timeoutMs?: number;
  },
): Promise<Child> {
  const started = performance.now();
  const child = new Deno.Command("deno", {
    args,
    cwd: options.cwd,
    env: { ...baseEnv(), ...options.env },
    clearEnv: true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const lines: string[] = [];
  let resolveUrl!: (u: string) => void;
  const urlPromise = new Promise<string>((r) => (resolveUrl = r));
  let listeningMs = 0;
  const urlOf = options.urlOf ??
    ((rec) => rec.msg === "listening" && typeof rec.url === "string" ? rec.url : undefined);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (lines.length < 2000) lines.push(line);
        options.onLine?.(line);
        try {
          const url = urlOf(JSON.parse(line));
          if (url) {
            listeningMs ||= performance.now() - started;
            resolveUrl(url);
          }
        } catch { /* not a JSON line */ }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const timer = setTimeout(() => resolveUrl(""), options.timeoutMs ?? 30_000);
  const url = await Promise.race([urlPromise, child.status.then(() => "")]);
  clearTimeout(timer);
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const kill = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await child.status;
      clearTimeout(kill);
      await pumps;
    })();
  if (!url) {
    await stop();
    throw new Error(`${name} did not start:\n${lines.slice(-30).join("\n")}`);
  }
  return { name, pid: child.pid, url, listeningMs, lines, stop };
}

/** `sosvault serve` exactly as the tests run it, plus optional V8/Deno flags before main.ts. */
export function startSosvault(
  dir: string,
  env: Record<string, string>,
  options: { listen?: string; denoFlags?: string[] } = {},
): Promise<Child> {
  const args = sosvaultArgs(dir);
  args.splice(args.length - 1, 0, ...(options.denoFlags ?? []));
  return spawnServer("sosvault", [...args, "serve"], {
    cwd: dir,
    env: { SOSVAULT_LISTEN: options.listen ?? "127.0.0.1:0", ...env },
  });
}

/** The bare MCP SDK server (scripts/bench/bare_mcp_server.ts), as its own process. */
export function startBareMcp(dir: string, options: { port?: number } = {}): Promise<Child> {
  return spawnServer("bare MCP", [
    "run",
    "--no-prompt",
    "--allow-net=127.0.0.1",
    "--allow-env=BARE_MCP_PORT",
    `${REPO_ROOT}/scripts/bench/bare_mcp_server.ts`,
  ], { cwd: dir, env: { BARE_MCP_PORT: String(options.port ?? 0) } });
}

export interface Sink extends Child {
  port: number;
  /** Resolves with the next upload the sink finished reading. */
  nextUpload(): Promise<SinkUpload>;
  /** The other requests it answered (bounded), oldest first. */
  requests: SinkRequest[];
}

export interface SinkUpload {
  bytes: number;
  fileBytes: number;
  /** Head complete → last body byte, at the sink. */
  ms: number;
  authorised: boolean;
  /** When the head was complete: performance.timeOrigin + performance.now() in the sink. */
  at: number;
}

export interface SinkRequest {
  method: string;
  path: string;
  at: number;
}

/** Now, comparable with the sink's `at` (same host clock). */
export function nowAbs(): number {
  return performance.timeOrigin + performance.now();
}

/** The loopback HTTPS sink (scripts/bench/https_sink.ts), as its own process. */
export async function startSink(
  dir: string,
  cfg: { pat: string; user: string; issue: string },
): Promise<Sink> {
  const queue: SinkUpload[] = [];
  const waiters: Array<(u: SinkUpload) => void> = [];
  const requests: SinkRequest[] = [];
  const child = await spawnServer("HTTPS sink", [
    "run",
    "--no-prompt",
    "--allow-net=127.0.0.1",
    `--allow-read=${TLS_DIR}`,
    `${REPO_ROOT}/scripts/bench/https_sink.ts`,
  ], {
    cwd: dir,
    env: {},
    stdin: JSON.stringify(cfg) + "\n",
    urlOf: (rec) => typeof rec.port === "number" ? `https://127.0.0.1:${rec.port}` : undefined,
    onLine: (line) => {
      if (line.startsWith('{"request"')) {
        requests.push(JSON.parse(line).request);
        if (requests.length > 1000) requests.splice(0, 500);
        return;
      }
      if (!line.startsWith('{"upload"')) return;
      const u = JSON.parse(line).upload as SinkUpload;
      const w = waiters.shift();
      if (w) w(u);
      else queue.push(u);
    },
  });
  return {
    ...child,
    port: Number(new URL(child.url).port),
    requests,
    nextUpload: () => {
      const u = queue.shift();
      if (u) return Promise.resolve(u);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the sink saw no upload")), 120_000);
        waiters.push((v) => {
          clearTimeout(timer);
          resolve(v);
        });
      });
    },
  };
}

/** Runs a command to completion with a time limit; returns stdout, stderr, code and wall ms. */
export async function run(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: options.env,
    cwd: options.cwd,
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, options.timeoutMs ?? 120_000);
  const out = await child.output();
  const ms = performance.now() - started;
  clearTimeout(timer);
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr), ms };
}
