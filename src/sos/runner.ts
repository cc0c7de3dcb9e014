/**
 * Runs a fixed argv without a shell, streaming its output. Security: child processes start with
 * a cleared environment plus only PATH and LANG (DESIGN.md 7.6), so no secret of ours reaches
 * them; from `/`, because sos puts its working directory on Python's import path; and nothing
 * from a model ever becomes an argument.
 */

/** Security: children start from an empty environment plus these (DESIGN.md 7.6). */
export const CHILD_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" } as const;

/** The only way sosvault starts a program: no shell, cleared environment, from /, no stdin. */
export function clearedCommand(argv: readonly string[], signal?: AbortSignal): Deno.Command {
  return new Deno.Command(argv[0], {
    args: argv.slice(1),
    clearEnv: true,
    env: { ...CHILD_ENV },
    cwd: "/",
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal,
  });
}

function spawnError(err: unknown): RunResult["spawnError"] {
  if (err instanceof Deno.errors.NotFound) return "not_found";
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    return "permission_denied";
  }
  throw err;
}

export interface RunOptions {
  timeoutMs: number;
  /** After TERM, how long to wait before KILL. */
  killGraceMs?: number;
  /** Each line of stdout and stderr as it arrives. */
  onLine?: (line: string) => void;
  /** After the program exits, how long its pipes may stay open (held by a grandchild). */
  drainMs?: number;
  /** Aborting stops the program as a timeout does (TERM, then KILL). */
  signal?: AbortSignal;
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Stopped because `signal` was aborted. */
  stopped?: boolean;
  /** The last 64 KiB of combined output, for parsing and for the log. */
  output: string;
  /** Set when the program could not be started at all. */
  spawnError?: "not_found" | "permission_denied";
}

export type CommandRunner = (argv: readonly string[], options: RunOptions) => Promise<RunResult>;

const TAIL = 64 * 1024;

export const processRunner: CommandRunner = async (argv, options) => {
  let child: Deno.ChildProcess;
  try {
    child = clearedCommand(argv).spawn();
  } catch (err) {
    return { code: null, signal: null, timedOut: false, output: "", spawnError: spawnError(err) };
  }
  let output = "";
  const drained = new AbortController();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let partial = "";
    const text = stream.pipeThrough(new TextDecoderStream(), { signal: drained.signal });
    for await (const chunk of text.values({ preventCancel: false })) {
      output = (output + chunk).slice(-TAIL);
      partial += chunk;
      const lines = partial.split(/\r\n|\r|\n/);
      partial = lines.pop() ?? "";
      for (const line of lines) options.onLine?.(line);
    }
    if (partial) options.onLine?.(partial);
  };
  let timedOut = false;
  let stopped = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    if (killTimer) return;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    // sudo relays TERM to sos; KILL (which sudo cannot relay) only if TERM was not enough.
    killTimer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, options.killGraceMs ?? 10_000);
  };
  const termTimer = setTimeout(() => {
    timedOut = true;
    stop();
  }, options.timeoutMs);
  const onAbort = () => {
    stopped = true;
    stop();
  };
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  const status = await child.status;
  // A grandchild can outlive the child and keep the pipes open: sos, when sudo was KILLed
  // because sos hung on TERM. Its output no longer matters; the run must still end.
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    pumps,
    new Promise((r) => (drainTimer = setTimeout(r, options.drainMs ?? 5_000))),
  ]);
  clearTimeout(drainTimer);
  drained.abort();
  await pumps;
  clearTimeout(termTimer);
  clearTimeout(killTimer);
  options.signal?.removeEventListener("abort", onAbort);
  return {
    code: status.signal ? null : status.code,
    signal: status.signal,
    timedOut,
    stopped,
    output,
  };
};

/** Streams a program's stdout into a writable, for `sudo -n cat <archive>`. */
export async function streamCommand(
  argv: readonly string[],
  sink: WritableStream<Uint8Array>,
  timeoutMs: number,
): Promise<{ code: number | null; stderr: string; spawnError?: RunResult["spawnError"] }> {
  let child: Deno.ChildProcess;
  try {
    child = clearedCommand(argv).spawn();
  } catch (err) {
    return { code: null, stderr: "", spawnError: spawnError(err) };
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  const stderr = new Response(child.stderr).text();
  try {
    await child.stdout.pipeTo(sink);
  } finally {
    clearTimeout(timer);
  }
  const status = await child.status;
  return { code: status.success ? 0 : status.code, stderr: (await stderr).slice(-4096) };
}
