/**
 * `sosvault doctor`: checks that this host can run sosvault (key, KV, artifact dir, sos, sudo,
 * Jira), then prints the exact sudoers lines for this host and user. Each check is a small
 * function returning a CheckResult, so tests drive them with injected runners and file systems.
 */
import os from "node:os";
import type { Config } from "../config.ts";
import { vaultPolicy } from "../vault/vault_source.ts";
import type { Services } from "../services.ts";
import type { CliIO } from "./io.ts";
import type { OidcAuth } from "../auth/oidc.ts";
import { httpTransport, type JiraTransport } from "../jira/transport.ts";
import { USER_AGENT } from "../jira/client.ts";
import { clearedRunner, type Runner, sosVersion } from "../sos/locate.ts";
import { MIN_SUDO_VERSION, sosArgv, SUDOERS_FILE, sudoersLines } from "../sos/sudoers.ts";

export type CheckStatus = "ok" | "warn" | "fail";

export interface CheckResult {
  status: CheckStatus;
  what: string;
  /** What to do about it; shown after a warn or FAIL. */
  fix?: string;
}

export interface DoctorDeps {
  /** sos as resolved at start (locateSos), null when not installed. */
  sosPath: string | null;
  /** cat as resolved at start (locateCat). */
  catPath?: string | null;
  /** The account sosvault runs as (`--user NAME`); default: the OS user running doctor. */
  user?: string;
  run?: Runner;
  /** How to learn the sos version; default: sosVersion() with the same runner. */
  version?: (sosPath: string) => Promise<string | null>;
  transport?: JiraTransport;
  fs?: DoctorFs;
  /** The OS user running doctor; null when it cannot be read (missing --allow-sys). */
  currentUser?: () => { name: string; uid: number } | null;
  /** `doctor --sudoers`: print only the sudoers file, for `> /etc/sudoers.d/sosvault` scripts. */
  sudoersOnly?: boolean;
}

/** The file-system calls the checks make, injectable for tests. */
export interface DoctorFs {
  lstat(path: string): Promise<Deno.FileInfo>;
  stat(path: string): Promise<Deno.FileInfo>;
  mkdir(path: string, options: Deno.MkdirOptions): Promise<void>;
}

const denoFs: DoctorFs = {
  lstat: (p) => Deno.lstat(p),
  stat: (p) => Deno.stat(p),
  mkdir: (p, o) => Deno.mkdir(p, o),
};

/** A name shaped like the archives sos writes, to ask sudo whether cat may read it. */
export const SAMPLE_ARCHIVE = "/var/tmp/sosreport-doctor-linux-mcp-sos-2000-01-01-abcdefg.tar.xz";

/** `s` may be null only with `sudoersOnly`, which needs no configuration or vault. */
export async function doctorCommand(
  s: Services | null,
  io: CliIO,
  deps: DoctorDeps,
): Promise<number> {
  const run = deps.run ?? clearedRunner();
  const fs = deps.fs ?? denoFs;
  const me = (deps.currentUser ?? osUser)();
  const subject = deps.user ?? me?.name ?? null;
  const catPath = deps.catPath ?? "/usr/bin/cat";
  if (deps.sudoersOnly) {
    if (!subject || !deps.sosPath) {
      io.err(
        subject
          ? "sosvault: sos is not installed, so its path for the sudoers rule is unknown"
          : "sosvault: cannot read the current OS user: pass --user NAME",
      );
      return 1;
    }
    io.out(sudoersLines({ user: subject, sosPath: deps.sosPath, catPath }).trimEnd());
    return 0;
  }

  if (!s) throw new Error("doctor needs the services unless --sudoers is given");
  const results: CheckResult[] = [
    ...vaultChecks(s),
    masterKeyCheck(),
    await kvCheck(s.kv, s.config.kvPath),
  ];
  results.push(
    me
      ? await artifactDirCheck(s.config.artifactDir, me.uid, fs)
      : userUnknown("artifact directory ownership"),
  );
  const version = deps.sosPath
    ? await (deps.version ?? ((p: string) => sosVersion(p, run)))(deps.sosPath)
    : null;
  results.push(sosInstalledCheck(deps.sosPath, version));
  if (deps.sosPath) results.push(await sosFileCheck(deps.sosPath, fs));
  const sudo = await sudoVersionCheck(run);
  results.push(sudo);
  if (subject === null) results.push(userUnknown("sudo rules"));
  else if (subject === "root") results.push(rootSubjectCheck());
  else if (sudo.starts) {
    // As root, `sudo -l -U NAME` lists another account's rights; anyone else lists their own.
    const listAs = me && subject !== me.name ? ["-U", subject] : [];
    results.push(...await sudoRuleChecks(run, { listAs, sosPath: deps.sosPath, catPath }));
  }
  results.push(await linkProtectionCheck(run));
  results.push(...await jiraChecks(s.config, deps.transport));
  if (s.oidc) results.push(await oidcIssuerCheck(s.oidc));

  for (const r of results) io.out(formatCheck(r));
  io.out("");
  if (s.config.masterKey.kind === "vault") {
    io.out("The AppRole's Vault policy must allow (vault policy write sosvault -):");
    io.out(vaultPolicy(s.config.masterKey.settings.keyPath));
    io.out("");
  }
  printSudoers(io, subject ?? "SOSVAULT_USER", deps.sosPath, catPath);
  const failed = results.filter((r) => r.status === "fail").length;
  io.out("");
  io.out(failed === 0 ? "All checks passed." : `${failed} check${failed === 1 ? "" : "s"} failed.`);
  return failed === 0 ? 0 : 1;
}

/** SOSVAULT_AUTH=oidc: the issuer's discovery document and keys can be fetched from here. */
export async function oidcIssuerCheck(oidc: OidcAuth): Promise<CheckResult> {
  const issuer = oidc.config.issuer;
  if (await oidc.keys.start()) {
    return {
      status: "ok",
      what: `identity provider ${issuer} publishes its discovery document and keys`,
    };
  }
  return {
    status: "fail",
    what: `identity provider ${issuer} cannot be reached (${oidc.keys.status().error})`,
    fix:
      "check SOSVAULT_OIDC_ISSUER and that this host reaches it; until then /mcp and /api answer 503",
  };
}

export function formatCheck({ status, what, fix }: CheckResult): string {
  const tag = status === "ok" ? "ok  " : status === "warn" ? "warn" : "FAIL";
  return fix && status !== "ok" ? `${tag} ${what}: ${fix}` : `${tag} ${what}`;
}

/**
 * SOSVAULT_KEY_SOURCE=vault: each step of the start (they all ran, or doctor would not be
 * here: a failed step stops with exit 78 and says which) and the token's state now.
 */
export function vaultChecks(s: Services): CheckResult[] {
  if (!s.vault) return [];
  const out: CheckResult[] = s.vault.steps.map((st) => ({
    status: st.ok ? "ok" : "warn",
    what: `Vault: ${st.step}: ${st.detail}`,
  }));
  const left = Math.round((s.vault.tokenExpiresAt - s.clock().getTime()) / 1000);
  out.push(
    left > 0
      ? {
        status: "ok",
        what: `Vault: token in memory only, expires in ${left}s, renewed at 2/3 of its TTL`,
      }
      : {
        status: "warn",
        what: "Vault: the token has expired",
        fix: "the key in memory keeps serving; place a new secret ID in VAULT_SECRET_ID_FILE",
      },
  );
  return out;
}

export function masterKeyCheck(): CheckResult {
  // Opening Services already decrypted the vault sentinel (vault/sentinel.ts); it throws otherwise.
  return { status: "ok", what: "master key: the vault sentinel decrypts with it" };
}

export async function kvCheck(kv: Deno.Kv, kvPath: string): Promise<CheckResult> {
  // A throwaway key (expiring anyway) proves the store takes writes, not only reads.
  const key = ["doctor", crypto.randomUUID()];
  try {
    const res = await kv.atomic().set(key, Date.now(), { expireIn: 60_000 }).commit();
    if (!res.ok) throw new Error("the write did not commit");
    await kv.delete(key);
    return { status: "ok", what: `KV store opens and is writable (${kvPath})` };
  } catch (err) {
    return {
      status: "fail",
      what: `KV store at ${kvPath} is not writable (${(err as Error).message})`,
      fix: "check SOSVAULT_KV_PATH, the directory's owner and free disk space",
    };
  }
}

export async function artifactDirCheck(
  dir: string,
  uid: number,
  fs: DoctorFs = denoFs,
): Promise<CheckResult> {
  let info: Deno.FileInfo;
  let created = false;
  try {
    info = await fs.lstat(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      return { status: "fail", what: `artifact directory ${dir}: ${(err as Error).message}` };
    }
    try {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      info = await fs.lstat(dir);
      created = true;
    } catch (e) {
      return {
        status: "fail",
        what: `artifact directory ${dir} is missing and cannot be created (${
          (e as Error).message
        })`,
        fix: `create it: install -d -m 0700 -o <sosvault user> ${dir}`,
      };
    }
  }
  // Security: the default lives in world-writable /tmp; a directory (or symlink) planted there by
  // another local user would hand them every fetched sosreport.
  if (info.isSymlink || !info.isDirectory) {
    return {
      status: "fail",
      what: `artifact directory ${dir} is not a plain directory`,
      fix: `remove it, or point SOSVAULT_ARTIFACT_DIR at a directory sosvault owns`,
    };
  }
  if (info.uid !== uid) {
    return {
      status: "fail",
      what: `artifact directory ${dir} belongs to uid ${info.uid}, not to sosvault (uid ${uid})`,
      fix: `remove it and let sosvault create it, or: chown <sosvault user> ${dir}`,
    };
  }
  const mode = (info.mode ?? 0) & 0o777;
  if (mode !== 0o700) {
    return {
      status: "fail",
      what: `artifact directory ${dir} has mode ${mode.toString(8).padStart(4, "0")}`,
      fix: `chmod 0700 ${dir}`,
    };
  }
  return {
    status: "ok",
    what: `artifact directory ${dir} is ours with mode 0700${created ? " (created now)" : ""}`,
  };
}

export function sosInstalledCheck(sosPath: string | null, version: string | null): CheckResult {
  if (!sosPath) {
    return {
      status: "fail",
      what: "sos is not installed (looked for /usr/sbin/sos and /usr/bin/sos)",
      fix:
        "install it: dnf install sos (RHEL, Fedora) or apt-get install sosreport (Debian, Ubuntu)",
    };
  }
  if (!version) {
    return {
      status: "warn",
      what: `sos at ${sosPath}, version unknown`,
      fix: "doctor could not run sos or its Python unprivileged; sosvault needs sos 4.0 or later",
    };
  }
  if (Number(version.split(".")[0]) < 4) {
    return {
      status: "fail",
      what: `sos ${version} at ${sosPath} is too old`,
      fix: "sosvault runs `sos report`, which needs sos 4.0 or later",
    };
  }
  return { status: "ok", what: `sos ${version} at ${sosPath}` };
}

export async function sosFileCheck(sosPath: string, fs: DoctorFs = denoFs): Promise<CheckResult> {
  try {
    const info = await fs.stat(sosPath);
    // Security: sudo runs this file as root; if anyone but root may change it, the narrow rule
    // is a root shell for them.
    if (info.uid !== 0 || ((info.mode ?? 0) & 0o022) !== 0) {
      return {
        status: "fail",
        what: `${sosPath} can be modified by someone other than root`,
        fix: `chown root:root ${sosPath} && chmod go-w ${sosPath}`,
      };
    }
    return { status: "ok", what: `${sosPath} is owned by root and not writable by others` };
  } catch (err) {
    return { status: "warn", what: `cannot inspect ${sosPath} (${(err as Error).message})` };
  }
}

/** `starts`: whether sudo could be run at all, so the rule checks are worth asking. */
export async function sudoVersionCheck(
  run: Runner,
): Promise<CheckResult & { starts: boolean }> {
  const r = await run(["sudo", "-V"]);
  if (r.spawnError) {
    return {
      starts: false,
      status: "fail",
      what: /NotFound/.test(r.spawnError) ? "sudo is not installed" : "sudo cannot start",
      fix: /NotFound/.test(r.spawnError)
        ? "install sudo 1.9.10 or later"
        : `run sosvault with --allow-run=sudo (${r.spawnError})`,
    };
  }
  const m = /Sudo version (\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
  if (!m) {
    return { starts: true, status: "warn", what: "sudo version unknown (sudo -V printed none)" };
  }
  const have = [Number(m[1]), Number(m[2]), Number(m[3])];
  const text = r.stdout.split("\n")[0].replace(/^Sudo version /, "");
  if (compareVersions(have, MIN_SUDO_VERSION) < 0) {
    return {
      starts: true,
      status: "fail",
      what: `sudo ${text} is older than ${MIN_SUDO_VERSION.join(".")}`,
      fix:
        "upgrade sudo: the cat rule is a sudoers regular expression, which needs 1.9.10 or later",
    };
  }
  return { starts: true, status: "ok", what: `sudo ${text} (regular-expression rules supported)` };
}

export interface SudoRuleOptions {
  /** [] to list the caller's own rights, or ["-U", name] (as root) for another account's. */
  listAs: string[];
  sosPath: string | null;
  catPath: string;
}

/**
 * Asks sudo (`sudo -n -l <cmd>`: exit 0 when the command is allowed without a password) whether
 * the exact commands are allowed and — the security half — whether broader ones are refused.
 */
export async function sudoRuleChecks(run: Runner, o: SudoRuleOptions): Promise<CheckResult[]> {
  const allowed = async (cmd: string[]) =>
    (await run(["sudo", "-n", "-l", ...o.listAs, ...cmd])).code === 0;
  const install = `install the sudoers lines below as ${SUDOERS_FILE}`;
  const out: CheckResult[] = [];
  if (o.sosPath) {
    const argv = sosArgv(o.sosPath);
    out.push(
      await allowed(argv)
        ? { status: "ok", what: `sudo -n allows ${argv.join(" ")}` }
        : { status: "fail", what: `sudo -n refuses ${argv.join(" ")}`, fix: install },
    );
    // Security: sos run as root with other arguments can write anywhere or upload the report.
    if (await allowed([o.sosPath, "report", "--batch", "--tmp-dir", "/tmp", "-o", "doctor"])) {
      out.push({
        status: "fail",
        what: "sudo lets this account run sos with any arguments",
        fix: `remove that rule; allow only the exact command (see below)`,
      });
    }
  }
  out.push(
    await allowed([o.catPath, SAMPLE_ARCHIVE])
      ? { status: "ok", what: `sudo -n allows ${o.catPath} on sos archives in /var/tmp` }
      : { status: "fail", what: `sudo -n refuses ${o.catPath} ${SAMPLE_ARCHIVE}`, fix: install },
  );
  // Security: a wildcard rule (`cat /var/tmp/sosreport-*`) also matches "<archive> /etc/shadow".
  if (
    await allowed([o.catPath, "/etc/shadow"]) ||
    await allowed([o.catPath, SAMPLE_ARCHIVE, "/etc/shadow"])
  ) {
    out.push({
      status: "fail",
      what: `sudo lets this account read other files with ${o.catPath} (/etc/shadow)`,
      fix: "replace that rule with the regular-expression rule below",
    });
  }
  return out;
}

function rootSubjectCheck(): CheckResult {
  return {
    status: "warn",
    what: "sudo rules not checked: doctor runs as root, which may run anything",
    fix: "run it as the account sosvault runs as, or as root with --user NAME",
  };
}

/**
 * Security: sudo's rule pins the name of the file cat reads, not what the name points to. In
 * sticky /var/tmp only the kernel's link protections stop another local user from planting a
 * symlink or hard link with an archive's name that makes root's cat read /etc/shadow.
 * (Read through sysctl: Deno wants --allow-all for any read under /proc.)
 */
export async function linkProtectionCheck(run: Runner): Promise<CheckResult> {
  const names = ["fs.protected_symlinks", "fs.protected_hardlinks"];
  const r = await run(["sysctl", "-n", ...names]);
  const values = r.stdout.trim().split(/\s+/);
  if (r.code !== 0 || values.length !== 2) {
    return {
      status: "warn",
      what: `cannot read ${names.join(" and ")}${r.spawnError ? ` (${r.spawnError})` : ""}`,
      fix: `check that both are 1: sysctl ${names.join(" ")}`,
    };
  }
  const off = names.filter((_, i) => values[i] === "0");
  if (off.length === 0) {
    return { status: "ok", what: `kernel link protections are on (${names.join(", ")})` };
  }
  return {
    status: "fail",
    what: `${off.join(" and ")} ${
      off.length === 1 ? "is" : "are"
    } off, so a link planted in /var/tmp can make sudo cat read any file`,
    fix: `sysctl -w ${off.map((o) => `${o}=1`).join(" ")}, and persist it in /etc/sysctl.d/`,
  };
}

export async function jiraChecks(
  config: Config,
  transport?: JiraTransport,
): Promise<CheckResult[]> {
  if (config.mockMode) {
    return [{
      status: "ok",
      what: "Jira reachability: skipped (JIRA_MOCK_MODE=1 uses the embedded fake Jira)",
    }];
  }
  if (config.allowedHosts.length === 0) {
    return [{
      status: "warn",
      what: "Jira reachability: skipped, JIRA_ALLOWED_HOSTS is empty (any host allowed)",
      fix: "set JIRA_ALLOWED_HOSTS to your Jira host names; doctor then checks each",
    }];
  }
  const send = transport ??
    httpTransport(config.caFile ? await Deno.readTextFile(config.caFile) : undefined);
  const out: CheckResult[] = [];
  for (const host of config.allowedHosts) {
    const url = `https://${host}/rest/api/2/serverInfo`;
    try {
      // No credentials: any HTTP answer proves DNS, routing and TLS (with JIRA_CA_FILE) work.
      const res = await send(
        new Request(url, {
          headers: { Accept: "application/json", "User-Agent": USER_AGENT },
          redirect: "manual",
          signal: AbortSignal.timeout(config.jiraTimeoutMs),
        }),
      );
      await res.body?.cancel();
      out.push({ status: "ok", what: `Jira ${host} answers (HTTP ${res.status} for ${url})` });
    } catch (err) {
      out.push({
        status: "fail",
        what: `Jira ${host} cannot be reached (${(err as Error).message})`,
        fix: "check DNS, firewall and proxy, and that JIRA_CA_FILE trusts its certificate",
      });
    }
  }
  return out;
}

function printSudoers(io: CliIO, user: string, sosPath: string | null, catPath: string) {
  io.out(`Put these lines in ${SUDOERS_FILE} (mode 0440, owner root), then check them with`);
  io.out(`visudo -cf ${SUDOERS_FILE}:`);
  if (!sosPath) io.out("(sos is not installed yet: adjust its path; RHEL installs /usr/sbin/sos)");
  io.out("");
  io.out(sudoersLines({ user, sosPath: sosPath ?? "/usr/bin/sos", catPath }).trimEnd());
}

function userUnknown(what: string): CheckResult {
  return {
    status: "fail",
    what: `cannot read the current OS user, needed for the ${what}`,
    fix: "run sosvault doctor with --allow-sys=userInfo,uid,gid, or pass --user NAME",
  };
}

function osUser(): { name: string; uid: number } | null {
  try {
    const info = os.userInfo();
    return { name: info.username, uid: info.uid };
  } catch {
    return null;
  }
}

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
