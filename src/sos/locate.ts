/**
 * Finding sos (and cat) once at start, and asking sos its version without root. Also the small
 * child-process runner these probes and `sosvault doctor` share.
 */

import { clearedCommand } from "./runner.ts";

export const SOS_CANDIDATES = ["/usr/sbin/sos", "/usr/bin/sos"] as const;
export const CAT_CANDIDATES = ["/usr/bin/cat", "/bin/cat"] as const;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started at all (not installed, not permitted). */
  spawnError?: string;
}

export type Runner = (argv: readonly string[]) => Promise<RunResult>;

/**
 * Runs argv with a cleared environment, from `/`, without stdin, for at most timeoutMs.
 * Security: cwd `/` because sos (4.0 and later) puts its working directory first on Python's
 * import path; a writable cwd would let anyone who can write there run code as sos's user.
 */
export function clearedRunner(timeoutMs = 15_000): Runner {
  return async (argv) => {
    try {
      const out = await clearedCommand(argv, AbortSignal.timeout(timeoutMs)).output();
      const text = new TextDecoder();
      return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
    } catch (err) {
      const e = err as Error;
      return { code: -1, stdout: "", stderr: "", spawnError: `${e.name}: ${e.message}` };
    }
  };
}

/** The first candidate that is an executable regular file (symlinks followed), or null. */
export async function locateExecutable(candidates: readonly string[]): Promise<string | null> {
  for (const path of candidates) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (err) {
      // A missing Deno permission is a deployment bug, not "sos is not installed": say so.
      if (err instanceof Deno.errors.NotCapable) throw err;
      continue;
    }
    if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) return path;
  }
  return null;
}

/** Where sos is installed: /usr/sbin/sos on RHEL, /usr/bin/sos on Debian and Fedora. */
export function locateSos(candidates: readonly string[] = SOS_CANDIDATES): Promise<string | null> {
  return locateExecutable(candidates);
}

export function locateCat(candidates: readonly string[] = CAT_CANDIDATES): Promise<string | null> {
  return locateExecutable(candidates);
}

const VERSION = /\b(\d+\.\d+(?:\.\d+)*)\b/;
const PRINT_VERSION = "import sos; print(sos.__version__)";

/**
 * The installed sos version, unprivileged, or null; never throws. Tried in turn:
 * 1. `sos --version`: only since 2026 (sosreport/sos PR #4326); sos 4.0 … 4.10 answer it with a
 *    usage error (exit 2).
 * 2. the interpreter in sos's own `#!` line printing `sos.__version__` (`-I`: no user site, no
 *    cwd, no PYTHON* variables). Granting a process --allow-run for python lets it leave Deno's
 *    sandbox, so the server itself should not have it; doctor then falls through to 3.
 * 3. the package manager that owns the sos executable: `dpkg-query` (Debian, Ubuntu) or `rpm`
 *    (RHEL, Fedora, SUSE). It knows the version wherever the distribution put sos's Python
 *    package, so no interpreter path is named here or in the permissions.
 */
export async function sosVersion(
  sosPath: string,
  run: Runner = clearedRunner(),
): Promise<string | null> {
  const direct = await run([sosPath, "--version"]);
  if (direct.code === 0) {
    const line = direct.stdout.split("\n").find((l) => /\bsos\b/i.test(l)) ?? "";
    const m = VERSION.exec(line);
    if (m) return m[1];
  }
  const interpreter = await shebang(sosPath);
  if (interpreter) {
    const r = await run([...interpreter, "-I", "-c", PRINT_VERSION]);
    const m = r.code === 0 ? /^(\d+\.\d+(?:\.\d+)*)\s*$/.exec(r.stdout) : null;
    if (m) return m[1];
  }
  return await packagedVersion(sosPath, run);
}

/** The upstream version of the package owning `path` (`4.0-2` → `4.0`), from dpkg or rpm. */
async function packagedVersion(path: string, run: Runner): Promise<string | null> {
  // `sosreport: /usr/bin/sos` (several packages: `a, b: /path`); the name differs by release.
  const owner = await run(["dpkg-query", "--search", path]);
  const pkg = owner.code === 0 ? /^([a-z0-9][a-z0-9+.-]*)(?:,[^:]*)?: /.exec(owner.stdout) : null;
  if (pkg) {
    const r = await run(["dpkg-query", "--show", "--showformat=${Version}", pkg[1]]);
    // Debian versions are [epoch:]upstream[-revision].
    const m = r.code === 0 ? /^(?:\d+:)?(\d+\.\d+(?:\.\d+)*)/.exec(r.stdout.trim()) : null;
    if (m) return m[1];
  }
  const rpm = await run(["rpm", "--query", "--file", "--queryformat=%{VERSION}", path]);
  const m = rpm.code === 0 ? /^(\d+\.\d+(?:\.\d+)*)$/.exec(rpm.stdout.trim()) : null;
  return m ? m[1] : null;
}

/** `#!/usr/bin/python3 -s` → ["/usr/bin/python3"]; `#!/usr/bin/env python3` → ["/usr/bin/env", "python3"]. */
async function shebang(path: string): Promise<string[] | null> {
  let head: string;
  try {
    using file = await Deno.open(path, { read: true });
    const buf = new Uint8Array(256);
    const n = await file.read(buf);
    head = new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\n")[0];
  } catch {
    return null;
  }
  const m = /^#!\s*(\/[^\s]+)(?:\s+([^\s]+))?/.exec(head);
  if (!m) return null;
  if (/\/env$/.test(m[1])) return m[2] && /^python[0-9.]*$/.test(m[2]) ? [m[1], m[2]] : null;
  return /\/(platform-)?python[0-9.]*$/.test(m[1]) ? [m[1]] : null;
}
