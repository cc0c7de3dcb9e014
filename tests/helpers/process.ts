/**
 * Runs the real `main.ts` as a child process, with the narrow permission flags an operator
 * would use (the --allow-env list is exactly the variables sosvault reads), a cleared
 * environment, and only the variables a test gives it.
 */
import { ENV_VARS } from "../../src/config.ts";
import { REPO_ROOT, TLS_DIR } from "./paths.ts";

export function sosvaultArgs(dir: string, extraRead: string[] = []): string[] {
  return [
    "run",
    "--unstable-kv",
    "--no-prompt",
    "--allow-net=127.0.0.1",
    `--allow-read=${
      [
        dir,
        TLS_DIR,
        "/usr/bin/sos",
        "/usr/sbin/sos",
        "/usr/bin/cat",
        "/bin/cat",
        "/var/tmp",
        // The default SOSVAULT_ARTIFACT_DIR: serve refuses to start without access to it.
        "/tmp/sosvault",
        ...extraRead,
      ].join(",")
    }`,
    `--allow-write=${dir},/tmp/sosvault`,
    `--allow-env=${ENV_VARS.join(",")}`,
    // As deno.json's server set: the package managers by path, so a host without rpm
    // gives no "failed to resolve" warning.
    "--allow-run=sudo,sysctl,/usr/bin/dpkg-query,/usr/bin/rpm",
    "--allow-sys=hostname,userInfo,uid,gid",
    `${REPO_ROOT}/main.ts`,
  ];
}

/** Runs deno directly, or as another OS user through sudo (root only), keeping only `env`. */
function command(
  cwd: string,
  args: string[],
  env: Record<string, string>,
  asUser?: string,
): Deno.Command {
  const full = { ...baseEnv(), ...env };
  const io = {
    env: full,
    clearEnv: true,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  } as const;
  if (!asUser) return new Deno.Command("deno", { args, ...io });
  return new Deno.Command("sudo", {
    args: [
      "-n",
      "-u",
      asUser,
      `--preserve-env=${Object.keys(full).join(",")}`,
      "--",
      "deno",
      ...args,
    ],
    ...io,
  });
}

/** What Deno itself needs to find its cache; nothing of the test's own environment leaks. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "NPM_CONFIG_REGISTRY"]) {
    const v = Deno.env.get(name);
    if (v) env[name] = v;
  }
  env.NO_COLOR = "1";
  return env;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runSosvault(
  dir: string,
  args: string[],
  env: Record<string, string>,
  options: { asUser?: string } = {},
): Promise<RunResult> {
  const out = await command(dir, [...sosvaultArgs(dir), ...args], env, options.asUser).output();
  const dec = new TextDecoder();
  const result = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  await Deno.writeTextFile(
    `${dir}/process.log`,
    `$ sosvault ${args.join(" ")}\n${result.stdout}${result.stderr}\n`,
    { append: true },
  );
  return result;
}

export interface ServeProcess {
  url: string;
  child: Deno.ChildProcess;
  lines: string[];
  stop(): Promise<number>;
}

/** Starts `sosvault serve` on a free port and waits for its "listening" log line. */
export async function serveProcess(
  dir: string,
  env: Record<string, string>,
  options: { asUser?: string } = {},
): Promise<ServeProcess> {
  const child = command(
    dir,
    [...sosvaultArgs(dir), "serve"],
    { SOSVAULT_LISTEN: "127.0.0.1:0", ...env },
    options.asUser,
  ).spawn();
  const lines: string[] = [];
  const log = await Deno.open(`${dir}/serve.log`, { append: true, create: true });
  const enc = new TextEncoder();
  let resolveUrl!: (u: string) => void;
  const urlPromise = new Promise<string>((r) => (resolveUrl = r));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        log.writeSync(enc.encode(line + "\n"));
        try {
          const rec = JSON.parse(line);
          if (rec.msg === "listening") resolveUrl(rec.url);
        } catch { /* not a JSON line */ }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const timeout = setTimeout(() => resolveUrl(""), 30_000);
  const url = await Promise.race([urlPromise, child.status.then(() => "")]);
  clearTimeout(timeout);
  const stop = async () => {
    try {
      // Through sudo, TERM reaches sudo, which relays it to the server.
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    const { code } = await child.status;
    await pumps;
    log.close();
    return code;
  };
  if (!url) {
    await stop();
    throw new Error(`sosvault serve did not start:\n${lines.join("\n")}`);
  }
  return { url, child, lines, stop };
}
