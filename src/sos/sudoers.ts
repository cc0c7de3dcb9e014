/**
 * The exact commands sosvault runs through `sudo -n`, and the sudoers file that allows those and
 * nothing else (DESIGN.md section 6). tests/sos/sudoers_test.ts proves the rules with the real sudo.
 */
import { ARCHIVE_NAME_SOURCE, SOS_TMP_DIR } from "./output.ts";

export const SOS_ARGS = [
  "report",
  "--batch",
  "--tmp-dir",
  "/var/tmp",
  "--name",
  "linux-mcp-sos",
] as const;

/** Where the operator installs the rules that `sosvault doctor` prints. */
export const SUDOERS_FILE = "/etc/sudoers.d/sosvault";

/** Regular-expression arguments in sudoers arrived in sudo 1.9.10. */
export const MIN_SUDO_VERSION = [1, 9, 10] as const;

/** The argv run after `sudo -n`: exactly this, so the sudoers rule can name it exactly. */
export function sosArgv(sosPath: string): string[] {
  return [sosPath, ...SOS_ARGS];
}

/**
 * POSIX ERE matching exactly one argument: an archive (or the .md5/.sha256 file sos writes beside
 * it) directly in /var/tmp. No character class admits a space or a slash, so neither a second file
 * nor a path outside /var/tmp can match.
 */
export function catPathPattern(): string {
  return `^${SOS_TMP_DIR}/${ARCHIVE_NAME_SOURCE}(\\.(md5|sha256))?$`;
}

export interface SudoersOptions {
  /** The account sosvault runs as. */
  user: string;
  /** Absolute path of sos, as resolved at start (locateSos). */
  sosPath: string;
  /** Absolute path of cat, e.g. /usr/bin/cat (locateCat). */
  catPath: string;
}

/** The content of /etc/sudoers.d/sosvault for this user and these paths. */
export function sudoersLines({ user, sosPath, catPath }: SudoersOptions): string {
  const u = sudoersUser(user);
  const sos = sudoersPath(sosPath);
  const cat = sudoersPath(catPath);
  const regex = catPathPattern();
  // sudoers reads a regex argument verbatim up to whitespace; only '#' would need escaping. Do NOT
  // backslash-escape ( ) | as for ordinary words: `\(` reaches regcomp as a literal parenthesis,
  // and the then top-level `|` splits the pattern into an unanchored alternative (tested).
  if (/[\s#]/.test(regex)) throw new Error("the cat pattern must not contain whitespace or '#'");
  return [
    `# ${SUDOERS_FILE}: written by \`sosvault doctor\`. Install with mode 0440, owner root:`,
    `#   install -m 0440 -o root -g root <this file> ${SUDOERS_FILE} && visudo -cf ${SUDOERS_FILE}`,
    `# Lets ${user} run one exact sos command as root, and read with cat only the archives`,
    `# (and their checksum files) that this command writes directly in ${SOS_TMP_DIR}.`,
    "# The cat argument is a sudoers regular expression (sudo 1.9.10 or later), not a wildcard:",
    "# a wildcard matches across spaces, so 'cat <archive> /etc/shadow' would match.",
    "# CWD=/ because sos puts its working directory first on Python's import path.",
    "# A daemon has no terminal (requiretty is still set on old RHEL); env_reset keeps the",
    "# caller's environment away from sos even if it was turned off globally.",
    `Defaults:${u} !requiretty, env_reset`,
    `${u} ALL=(root) CWD=/ NOPASSWD: ${[sos, ...SOS_ARGS.map(sudoersArg)].join(" ")}`,
    `${u} ALL=(root) CWD=/ NOPASSWD: ${cat} ${regex}`,
    "",
  ].join("\n");
}

// Characters sudoers gives a meaning to inside a word (sudoers(5), "Other special characters").
const SPECIAL_IN_WORD = /[!=:,()\\ ]/g;

/**
 * A user name as a sudoers word. Security: a leading % or + would name a group or netgroup, a
 * leading # a uid, and ALL everyone, so those are refused rather than escaped.
 */
export function sudoersUser(user: string): string {
  if (!user || /[\0\n\r\t]/.test(user) || /^[%+#]/.test(user) || user === "ALL") {
    throw new Error(`${JSON.stringify(user)} cannot be used as a sudoers user name`);
  }
  return user.replace(SPECIAL_IN_WORD, (c) => `\\${c}`);
}

/** Security: command paths are plain absolute paths; anything a glob or escape could bend is refused. */
function sudoersPath(path: string): string {
  if (
    !/^(\/[A-Za-z0-9._+-]+)+$/.test(path) || path.split("/").some((s) => s === "." || s === "..")
  ) {
    throw new Error(`${JSON.stringify(path)} is not a plain absolute path`);
  }
  return path;
}

/** A literal (non-regex) argument: sudoers matches these as globs, so glob characters are escaped too. */
function sudoersArg(arg: string): string {
  if (/[\s\0]/.test(arg) || arg.startsWith("^")) throw new Error(`unsupported argument ${arg}`);
  return arg.replace(/[,:=\\*?[\]]/g, (c) => `\\${c}`);
}
