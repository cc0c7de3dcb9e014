/**
 * Reading what `sos report` prints, for sos 4.0 through current 4.x (fixtures: tests/fixtures/sos/).
 *
 * sos's exit status does not tell success: it exits 0 after a SIGTERM and when the archive could
 * not be finalised. A run succeeded only when its output names an archive that then exists.
 */

/** Where sos writes the archive, and the label it is given (`--name`, an alias of `--label`). */
export const SOS_TMP_DIR = "/var/tmp";
export const SOS_LABEL = "linux-mcp-sos";

/**
 * The archive name, written once in a syntax that means the same as a JavaScript RegExp and as a
 * POSIX extended regular expression, so the sudoers rule (sudoers.ts) and our own check cannot
 * drift apart. sos builds it as `sosreport-{name}{-label}{-case}-%Y-%m-%d-{rand}` and then strips
 * every character outside `[-a-z,A-Z.0-9]` (policies sanitize_filename); name is the short host
 * name, rand is 7 lowercase letters. A case id (from /etc/sos/sos.conf) or a comma in the host
 * name makes the name not match: fetch then refuses, which is the safe direction.
 */
export const ARCHIVE_NAME_SOURCE = "sosreport-[A-Za-z0-9._-]+-" + SOS_LABEL +
  "-[0-9]{4}-[0-9]{2}-[0-9]{2}-[a-z0-9]+\\.tar\\.xz";

export const ARCHIVE_NAME: RegExp = new RegExp(`^${ARCHIVE_NAME_SOURCE}$`);

/** `  Starting 38/49 services        [Running: ...]` (sos 4.x, one line per plugin, not in order). */
const PROGRESS = /^\r?[ \t]*Starting[ \t]+(\d{1,6})\/(\d{1,6})(?:[ \t]|$)/;

export function parseProgress(line: string): { done: number; total: number } | null {
  const m = PROGRESS.exec(line);
  if (!m) return null;
  const done = Number(m[1]);
  const total = Number(m[2]);
  return total > 0 && done >= 1 && done <= total ? { done, total } : null;
}

// "Your sosreport has been generated and saved in:" (4.0 … 4.5 and 3.x) or "Your sos report …"
// (4.8 and later), then the path on the next line after a tab (4.x) or two spaces (3.x).
const ARCHIVE_LINE =
  /^[ \t]*Your sos ?report has been generated and saved in:?[ \t]*(?:\r?\n[ \t]*)?([^\s]+)[ \t]*\r?$/gm;
const ARCHIVE_PATH = /^\/(?:[^\/\0\s]+\/)*[^\/\0\s]+\.tar\.(?:xz|gz|bz2|zst)$/;

/** The archive path sos reports at the end of a successful run, or null. */
export function parseArchivePath(output: string): string | null {
  const last = lastMatch(ARCHIVE_LINE, output);
  if (!last) return null;
  const path = last[1];
  // Security: only an absolute path without `.`/`..` segments; the caller still checks the
  // directory and ARCHIVE_NAME before touching the file.
  if (!ARCHIVE_PATH.test(path)) return null;
  if (path.split("/").some((seg) => seg === "." || seg === "..")) return null;
  return path;
}

// 4.x: " md5\t<hex>" (4.0; sha256 under FIPS) or " sha256\t<hex>" (4.1+), after Size and Owner.
const CHECKSUM_4X = /^[ \t]+(md5|sha256)[ \t]+([0-9a-fA-F]{32,64})[ \t]*\r?$/gm;
// 3.x: "The checksum is: <hex>" (md5, or sha256 under FIPS).
const CHECKSUM_3X = /^[ \t]*The checksum is:[ \t]*([0-9a-fA-F]{32,64})[ \t]*\r?$/gm;
const HEX_LENGTH = { md5: 32, sha256: 64 } as const;

export function parseChecksum(
  output: string,
): { algorithm: "md5" | "sha256"; value: string } | null {
  // Only the summary after the archive line counts: plugin chatter earlier cannot plant a digest.
  const summary = output.slice(lastMatch(ARCHIVE_LINE, output)?.index ?? 0);
  const m4 = lastMatch(CHECKSUM_4X, summary);
  if (m4) {
    const algorithm = m4[1] as "md5" | "sha256";
    return m4[2].length === HEX_LENGTH[algorithm]
      ? { algorithm, value: m4[2].toLowerCase() }
      : null;
  }
  const m3 = lastMatch(CHECKSUM_3X, summary);
  if (!m3) return null;
  const value = m3[1].toLowerCase();
  if (value.length === 32) return { algorithm: "md5", value };
  if (value.length === 64) return { algorithm: "sha256", value };
  return null;
}

/** Known ways a run fails, as a short public message (no paths or text copied from the output). */
const FAILURES: [RegExp, string][] = [
  [
    /must be run with root privileges|requires root permissions/,
    "sos refused to run without root: the sudoers rule did not apply (run `sosvault doctor`)",
  ],
  [
    /temporary directory .* does not exist or is not writable/,
    "sos could not write to /var/tmp",
  ],
  [/No space left on device|Read-only file system/, "sos ran out of disk space in /var/tmp"],
  [/Exiting on user cancel/, "sos was interrupted before it finished"],
  [
    /while finalizing archive|Creating archive tarball failed|Error moving archive file/,
    "sos could not write the archive",
  ],
  [/Traceback \(most recent call last\)/, "sos crashed; its output is in the server log"],
  [/a password is required|is not allowed to execute|not in the sudoers file/, "sudo refused"],
];

export function failureHint(output: string): string | null {
  for (const [pattern, message] of FAILURES) if (pattern.test(output)) return message;
  return null;
}

function lastMatch(pattern: RegExp, text: string): RegExpExecArray | null {
  let last: RegExpExecArray | null = null;
  for (const m of text.matchAll(pattern)) last = m as RegExpExecArray;
  return last;
}
