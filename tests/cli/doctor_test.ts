/**
 * `sosvault doctor` and the sos discovery it relies on, with injected runners, file systems and
 * Jira transports (the real sudo is exercised in tests/sos/sudoers_test.ts). Runs under the
 * default test task's permissions.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config.ts";
import type { Services } from "../../src/services.ts";
import type { CliIO } from "../../src/cli/io.ts";
import {
  artifactDirCheck,
  doctorCommand,
  type DoctorFs,
  formatCheck,
  jiraChecks,
  kvCheck,
  linkProtectionCheck,
  SAMPLE_ARCHIVE,
  sosInstalledCheck,
  sudoRuleChecks,
  sudoVersionCheck,
} from "../../src/cli/doctor.ts";
import {
  clearedRunner,
  locateExecutable,
  type RunResult,
  sosVersion,
} from "../../src/sos/locate.ts";
import { sosArgv, sudoersLines } from "../../src/sos/sudoers.ts";

const SOS = "/usr/sbin/sos";
const CAT = "/usr/bin/cat";
const KEY = "A".repeat(43) + "=";

function capture(): CliIO & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return {
    lines,
    errors,
    out: (l) => void lines.push(...l.split("\n")),
    err: (l) => void errors.push(l),
    usage: () => 64,
  };
}

const res = (code: number, stdout = "", stderr = ""): RunResult => ({ code, stdout, stderr });

/** A fake host: what each command answers, keyed by the joined argv. */
function fakeRunner(answers: Record<string, RunResult>, fallback = res(1)) {
  const calls: string[] = [];
  const run = (argv: readonly string[]) => {
    calls.push(argv.join(" "));
    return Promise.resolve(answers[argv.join(" ")] ?? fallback);
  };
  return Object.assign(run, { calls });
}

const HEALTHY: Record<string, RunResult> = {
  "sudo -V": res(0, "Sudo version 1.9.13p3\nSudoers policy plugin version 1.9.13p3\n"),
  [`sudo -n -l ${sosArgv(SOS).join(" ")}`]: res(0, sosArgv(SOS).join(" ") + "\n"),
  [`sudo -n -l ${CAT} ${SAMPLE_ARCHIVE}`]: res(0, `${CAT} ${SAMPLE_ARCHIVE}\n`),
  [`${SOS} --version`]: res(2, "", "usage: sos <component> [options]\n"),
  "sysctl -n fs.protected_symlinks fs.protected_hardlinks": res(0, "1\n1\n"),
};

/** An artifact dir that is ours with mode 0700, and a root-owned sos. */
function fakeFs(overrides: Partial<Deno.FileInfo> = {}): DoctorFs {
  const info = (o: Partial<Deno.FileInfo>) =>
    ({
      isFile: false,
      isDirectory: true,
      isSymlink: false,
      uid: 990,
      mode: 0o40700,
      ...o,
    }) as Deno.FileInfo;
  return {
    lstat: () => Promise.resolve(info(overrides)),
    stat: () => Promise.resolve(info({ isFile: true, isDirectory: false, uid: 0, mode: 0o100755 })),
    mkdir: () => Promise.resolve(),
  };
}

async function services(env: Record<string, string> = {}): Promise<Services> {
  const config = parseConfig({ TOKEN_VAULT_MASTER_KEY: KEY, SOSVAULT_KV_PATH: ":memory:", ...env });
  return { config, kv: await Deno.openKv(":memory:") } as unknown as Services;
}

const reachable = () =>
  Promise.resolve(
    new Response("{}", { status: 200, headers: { "content-type": "application/json" } }),
  );

Deno.test("doctor on a healthy host: every check ok, exit 0, then the exact sudoers lines", async () => {
  const s = await services({ JIRA_ALLOWED_HOSTS: "jira.example.com" });
  const io = capture();
  const run = fakeRunner(HEALTHY);
  const code = await doctorCommand(s, io, {
    sosPath: SOS,
    catPath: CAT,
    run,
    version: () => Promise.resolve("4.0"),
    fs: fakeFs(),
    transport: reachable,
    currentUser: () => ({ name: "sosvault", uid: 990 }),
  });
  s.kv.close();
  const text = io.lines.join("\n");
  assert.equal(code, 0, text);
  assert.doesNotMatch(text, /^(FAIL|warn)/m);
  for (
    const line of [
      "ok   master key: the vault sentinel decrypts with it",
      "ok   KV store opens and is writable (:memory:)",
      "ok   artifact directory /tmp/sosvault is ours with mode 0700",
      `ok   sudo -n allows ${sosArgv(SOS).join(" ")}`,
      `ok   sudo -n allows ${CAT} on sos archives in /var/tmp`,
      "ok   sudo 1.9.13p3 (regular-expression rules supported)",
      "ok   sos 4.0 at /usr/sbin/sos",
      "ok   Jira jira.example.com answers (HTTP 200 for https://jira.example.com/rest/api/2/serverInfo)",
    ]
  ) assert.ok(io.lines.includes(line), `missing: ${line}\n${text}`);
  assert.match(text, /^ok {3}kernel link protections are on/m);
  assert.match(text, /^ok {3}\/usr\/sbin\/sos is owned by root/m);
  // The sudoers block is exactly what sudoersLines() gives, for this user and these paths.
  assert.ok(
    text.includes(sudoersLines({ user: "sosvault", sosPath: SOS, catPath: CAT }).trimEnd()),
  );
  assert.ok(io.lines.includes("All checks passed."));
  // The security half was asked too: broader sos and cat commands.
  assert.ok(run.calls.includes(`sudo -n -l ${CAT} /etc/shadow`));
  assert.ok(run.calls.includes(`sudo -n -l ${CAT} ${SAMPLE_ARCHIVE} /etc/shadow`));
});

Deno.test("doctor prints the sudoers rules in the form sudo was proven with", async () => {
  const s = await services({ JIRA_MOCK_MODE: "1" });
  const io = capture();
  await doctorCommand(s, io, {
    sosPath: "/usr/bin/sos",
    catPath: CAT,
    run: fakeRunner(HEALTHY),
    version: () => Promise.resolve("4.0"),
    fs: fakeFs(),
    currentUser: () => ({ name: "sosvault", uid: 990 }),
  });
  s.kv.close();
  assert.ok(io.lines.includes("Defaults:sosvault !requiretty, env_reset"));
  assert.ok(
    io.lines.includes(
      "sosvault ALL=(root) CWD=/ NOPASSWD: /usr/bin/sos report --batch --tmp-dir /var/tmp --name linux-mcp-sos",
    ),
  );
  assert.ok(
    io.lines.includes(
      String
        .raw`sosvault ALL=(root) CWD=/ NOPASSWD: /usr/bin/cat ^/var/tmp/sosreport-[A-Za-z0-9._-]+-linux-mcp-sos-[0-9]{4}-[0-9]{2}-[0-9]{2}-[a-z0-9]+\.tar\.xz(\.(md5|sha256))?$`,
    ),
  );
  assert.ok(io.lines.some((l) => l.includes("/etc/sudoers.d/sosvault (mode 0440")));
  assert.ok(io.lines.some((l) => l.includes("visudo -cf /etc/sudoers.d/sosvault")));
  assert.ok(
    io.lines.includes(
      "ok   Jira reachability: skipped (JIRA_MOCK_MODE=1 uses the embedded fake Jira)",
    ),
  );
});

Deno.test("doctor on a broken host: sos missing, sudo refusing, links unprotected, Jira down → FAIL lines, exit 1", async () => {
  const s = await services({ JIRA_ALLOWED_HOSTS: "jira.example.com" });
  const io = capture();
  const run = fakeRunner({
    "sudo -V": res(0, "Sudo version 1.9.13p3\n"),
    "sysctl -n fs.protected_symlinks fs.protected_hardlinks": res(0, "0\n1\n"),
  }, res(1, "", "sudo: a password is required\n"));
  const code = await doctorCommand(s, io, {
    sosPath: null,
    catPath: CAT,
    run,
    fs: fakeFs({ mode: 0o40755 }),
    transport: () => Promise.reject(new TypeError("error sending request: dns error")),
    currentUser: () => ({ name: "sosvault", uid: 990 }),
  });
  s.kv.close();
  const text = io.lines.join("\n");
  assert.equal(code, 1);
  for (
    const re of [
      /^FAIL sos is not installed .*: install it: dnf install sos .*apt-get install sosreport/m,
      /^FAIL sudo -n refuses \/usr\/bin\/cat \S+: install the sudoers lines below as \/etc\/sudoers.d\/sosvault$/m,
      /^FAIL artifact directory \/tmp\/sosvault has mode 0755: chmod 0700 \/tmp\/sosvault$/m,
      /^FAIL fs.protected_symlinks is off, .*: sysctl -w fs.protected_symlinks=1, and persist/m,
      /^FAIL Jira jira.example.com cannot be reached \(error sending request: dns error\): check DNS/m,
      /^\d+ checks failed\.$/m,
    ]
  ) assert.match(text, re);
  // Without sos there is no sos rule to ask about, but the rules are still printed to install.
  assert.ok(!run.calls.some((c) => c.includes("report --batch")));
  assert.match(text, /sos is not installed yet: adjust its path/);
  assert.match(text, /^sosvault ALL=\(root\) CWD=\/ NOPASSWD: \/usr\/bin\/sos report/m);
});

Deno.test("doctor FAILs an over-broad sudoers setup: any-argument sos, and a wildcard cat rule", async () => {
  const run = fakeRunner({}, res(0)); // sudo allows everything this account asks
  const results = await sudoRuleChecks(run, { listAs: [], sosPath: SOS, catPath: CAT });
  const text = results.map(formatCheck).join("\n");
  assert.match(text, /^FAIL sudo lets this account run sos with any arguments/m);
  assert.match(text, /^FAIL sudo lets this account read other files with \/usr\/bin\/cat/m);
  // the wildcard attack alone, with /etc/shadow itself refused
  const wildcard = fakeRunner({
    [`sudo -n -l ${sosArgv(SOS).join(" ")}`]: res(0),
    [`sudo -n -l ${CAT} ${SAMPLE_ARCHIVE}`]: res(0),
    [`sudo -n -l ${CAT} ${SAMPLE_ARCHIVE} /etc/shadow`]: res(0),
  });
  const w = (await sudoRuleChecks(wildcard, { listAs: [], sosPath: SOS, catPath: CAT })).map(
    formatCheck,
  );
  assert.deepEqual(w.filter((l) => l.startsWith("FAIL")).length, 1, w.join("\n"));
});

Deno.test("doctor run as root checks the service account with sudo -l -U, or warns without --user", async () => {
  const s = await services({ JIRA_MOCK_MODE: "1" });
  const run = fakeRunner({
    ...HEALTHY,
    [`sudo -n -l -U svc ${sosArgv(SOS).join(" ")}`]: res(0),
    [`sudo -n -l -U svc ${CAT} ${SAMPLE_ARCHIVE}`]: res(0),
  });
  const io = capture();
  const root = () => ({ name: "root", uid: 0 });
  assert.equal(
    await doctorCommand(s, io, {
      sosPath: SOS,
      catPath: CAT,
      run,
      version: () => Promise.resolve("4.0"),
      fs: fakeFs({ uid: 0 }),
      currentUser: root,
      user: "svc",
    }),
    0,
    io.lines.join("\n"),
  );
  assert.ok(run.calls.includes(`sudo -n -l -U svc ${sosArgv(SOS).join(" ")}`));
  assert.ok(io.lines.some((l) => l.startsWith("svc ALL=(root) CWD=/ NOPASSWD: ")));

  const io2 = capture();
  await doctorCommand(s, io2, {
    sosPath: SOS,
    catPath: CAT,
    run,
    fs: fakeFs({ uid: 0 }),
    currentUser: root,
  });
  assert.ok(io2.lines.some((l) => /^warn sudo rules not checked: doctor runs as root/.test(l)));
  s.kv.close();
});

Deno.test("doctor --sudoers prints only the sudoers file (for scripted installs)", async () => {
  const s = await services();
  const io = capture();
  const code = await doctorCommand(s, io, {
    sosPath: SOS,
    catPath: CAT,
    user: "svc",
    sudoersOnly: true,
    currentUser: () => null,
  });
  assert.equal(code, 0);
  assert.equal(
    io.lines.join("\n"),
    sudoersLines({ user: "svc", sosPath: SOS, catPath: CAT }).trimEnd(),
  );
  const none = capture();
  assert.equal(await doctorCommand(s, none, { sosPath: null, user: "svc", sudoersOnly: true }), 1);
  assert.equal(none.lines.length, 0);
  s.kv.close();
});

Deno.test("sudoVersionCheck() wants 1.9.10 or later, and says when sudo is missing or not permitted", async () => {
  const v = (out: string) => sudoVersionCheck(fakeRunner({ "sudo -V": res(0, out) }));
  assert.equal((await v("Sudo version 1.9.10\n")).status, "ok");
  assert.equal((await v("Sudo version 1.9.15p5\n")).status, "ok");
  assert.equal((await v("Sudo version 1.10.0\n")).status, "ok");
  assert.equal((await v("Sudo version 1.9.9\n")).status, "fail");
  assert.equal((await v("Sudo version 1.8.31\n")).status, "fail");
  assert.equal((await v("whatever\n")).status, "warn");
  const missing = await sudoVersionCheck(() =>
    Promise.resolve({ ...res(-1), spawnError: "NotFound: Failed to spawn 'sudo'" })
  );
  assert.deepEqual([missing.status, missing.what, missing.starts], [
    "fail",
    "sudo is not installed",
    false,
  ]);
  const denied = await sudoVersionCheck(() =>
    Promise.resolve({ ...res(-1), spawnError: "NotCapable: Requires run access" })
  );
  assert.match(formatCheck(denied), /^FAIL sudo cannot start: run sosvault with --allow-run=sudo/);
});

Deno.test("linkProtectionCheck() FAILs when either kernel link protection is off", async () => {
  const check = (out: string, code = 0) =>
    linkProtectionCheck(
      fakeRunner({ "sysctl -n fs.protected_symlinks fs.protected_hardlinks": res(code, out) }),
    );
  assert.equal((await check("1\n1\n")).status, "ok");
  assert.equal((await check("2\n1\n")).status, "ok");
  assert.match(
    formatCheck(await check("0\n0\n")),
    /^FAIL fs.protected_symlinks and fs.protected_hardlinks are off/,
  );
  assert.match(formatCheck(await check("1\n0\n")), /^FAIL fs.protected_hardlinks is off/);
  assert.equal((await check("", 1)).status, "warn");
});

Deno.test("artifactDirCheck() creates a missing dir 0700, and FAILs a planted, shared or foreign one", async () => {
  const base = await Deno.makeTempDir({ prefix: "sosvault-doctor-" });
  const uid = Deno.statSync(base).uid!;
  try {
    const created = await artifactDirCheck(`${base}/a/artifacts`, uid);
    assert.equal(created.status, "ok", created.what);
    assert.match(created.what, /created now/);
    assert.equal(Deno.statSync(`${base}/a/artifacts`).mode! & 0o777, 0o700);
    assert.equal((await artifactDirCheck(`${base}/a/artifacts`, uid)).status, "ok");

    await Deno.mkdir(`${base}/open`, { mode: 0o755 });
    await Deno.chmod(`${base}/open`, 0o755);
    assert.match(
      formatCheck(await artifactDirCheck(`${base}/open`, uid)),
      /has mode 0755: chmod 0700/,
    );
    assert.match(
      formatCheck(await artifactDirCheck(`${base}/open`, uid + 1)),
      /belongs to uid \d+, not to sosvault/,
    );

    await Deno.writeTextFile(`${base}/file`, "x");
    assert.match(
      formatCheck(await artifactDirCheck(`${base}/file`, uid)),
      /is not a plain directory/,
    );
    const link = await new Deno.Command("ln", {
      args: ["-s", `${base}/a/artifacts`, `${base}/link`],
    }).output();
    assert.ok(link.success);
    assert.match(
      formatCheck(await artifactDirCheck(`${base}/link`, uid)),
      /is not a plain directory/,
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("kvCheck() writes and deletes a throwaway key, and FAILs a closed store", async () => {
  const kv = await Deno.openKv(":memory:");
  assert.equal((await kvCheck(kv, ":memory:")).status, "ok");
  const left = await Array.fromAsync(kv.list({ prefix: ["doctor"] }));
  assert.equal(left.length, 0);
  kv.close();
  assert.equal((await kvCheck(kv, ":memory:")).status, "fail");
});

Deno.test("jiraChecks() probes /rest/api/2/serverInfo without credentials; skips mock mode and an empty list", async () => {
  const seen: Request[] = [];
  const config = parseConfig({
    TOKEN_VAULT_MASTER_KEY: KEY,
    JIRA_ALLOWED_HOSTS: "jira.example.com,jira.internal:8443",
  });
  const results = await jiraChecks(config, (req) => {
    seen.push(req);
    return Promise.resolve(
      new Response("<html>login</html>", { status: 302, headers: { location: "https://sso/" } }),
    );
  });
  assert.deepEqual(results.map((r) => r.status), ["ok", "ok"]);
  assert.deepEqual(seen.map((r) => r.url), [
    "https://jira.example.com/rest/api/2/serverInfo",
    "https://jira.internal:8443/rest/api/2/serverInfo",
  ]);
  for (const r of seen) {
    assert.equal(r.headers.get("authorization"), null);
    assert.equal(r.redirect, "manual");
    assert.equal(r.method, "GET");
  }
  const mock = await jiraChecks(
    parseConfig({
      TOKEN_VAULT_MASTER_KEY: KEY,
      JIRA_MOCK_MODE: "1",
      JIRA_ALLOWED_HOSTS: "x.example",
    }),
  );
  assert.match(mock[0].what, /skipped \(JIRA_MOCK_MODE=1/);
  const empty = await jiraChecks(parseConfig({ TOKEN_VAULT_MASTER_KEY: KEY }));
  assert.equal(empty[0].status, "warn");
});

Deno.test("sosInstalledCheck() wants sos 4.0 or later and warns when the version is unknown", () => {
  assert.equal(sosInstalledCheck(SOS, "4.0").status, "ok");
  assert.equal(sosInstalledCheck(SOS, "4.10.2").status, "ok");
  assert.equal(sosInstalledCheck(SOS, "3.9.1").status, "fail");
  assert.equal(sosInstalledCheck(SOS, null).status, "warn");
  assert.equal(sosInstalledCheck(null, null).status, "fail");
});

Deno.test("locateExecutable() returns the first executable regular file, following symlinks", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sosvault-locate-" });
  try {
    await Deno.writeTextFile(`${dir}/plain`, "#!/bin/sh\n", { mode: 0o644 });
    await Deno.chmod(`${dir}/plain`, 0o644);
    await Deno.mkdir(`${dir}/adir`);
    await Deno.writeTextFile(`${dir}/tool`, "#!/bin/sh\n");
    await Deno.chmod(`${dir}/tool`, 0o755);
    assert.ok(
      (await new Deno.Command("ln", { args: ["-s", `${dir}/tool`, `${dir}/link`] }).output())
        .success,
    );
    const found = await locateExecutable([
      `${dir}/missing`,
      `${dir}/plain`,
      `${dir}/adir`,
      `${dir}/link`,
      `${dir}/tool`,
    ]);
    assert.equal(found, `${dir}/link`);
    assert.equal(await locateExecutable([`${dir}/missing`, `${dir}/plain`]), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sosVersion(): `sos --version`, else sos's own Python, else dpkg or rpm; null otherwise", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sosvault-version-" });
  try {
    const sos = `${dir}/sos`;
    await Deno.writeTextFile(sos, "#!/usr/bin/python3 -s\nimport sys\n");
    const py = "/usr/bin/python3 -I -c import sos; print(sos.__version__)";
    assert.equal(
      await sosVersion(sos, fakeRunner({ [`${sos} --version`]: res(0, "sos 4.11.0\n") })),
      "4.11.0",
    );
    // sos 4.0 … 4.10: --version is a usage error (exit 2)
    const run = fakeRunner({ [`${sos} --version`]: res(2, "", "usage"), [py]: res(0, "4.0\n") });
    assert.equal(await sosVersion(sos, run), "4.0");
    assert.deepEqual(run.calls, [`${sos} --version`, py]);
    // Debian: the package that owns the executable, and its upstream version
    const dpkg = fakeRunner({
      [`dpkg-query --search ${sos}`]: res(0, `sosreport: ${sos}\n`),
      "dpkg-query --show --showformat=${Version} sosreport": res(0, "1:4.5.4-1ubuntu2"),
    });
    assert.equal(await sosVersion(sos, dpkg), "4.5.4");
    // RHEL, Fedora, SUSE: rpm, when dpkg-query is absent or knows nothing of the file
    const rpm = fakeRunner({
      [`dpkg-query --search ${sos}`]: res(1, "", "no path found"),
      [`rpm --query --file --queryformat=%{VERSION} ${sos}`]: res(0, "4.10.2"),
    });
    assert.equal(await sosVersion(sos, rpm), "4.10.2");
    assert.equal(await sosVersion(sos, fakeRunner({})), null);
    await Deno.writeTextFile(sos, "#!/usr/bin/env python3\n");
    const viaEnv = fakeRunner({
      "/usr/bin/env python3 -I -c import sos; print(sos.__version__)": res(0, "4.3\n"),
    });
    assert.equal(await sosVersion(sos, viaEnv), "4.3");
    await Deno.writeTextFile(sos, "#!/bin/sh\n");
    // only a Python interpreter is ever asked: a `#!/bin/sh` sos is not run with -c
    const sh = fakeRunner({ "/bin/sh -I -c import sos; print(sos.__version__)": res(0, "4.9\n") });
    assert.equal(await sosVersion(sos, sh), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("clearedRunner() starts children from / with only PATH and LANG, and reports spawn failures", async () => {
  const run = clearedRunner();
  const r = await run([
    "deno",
    "eval",
    "console.log(JSON.stringify([Deno.cwd(), Deno.env.toObject()]))",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), ["/", {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: "C.UTF-8",
  }]);
  const missing = await run(["sosvault-no-such-program"]);
  assert.equal(missing.code, -1);
  assert.match(missing.spawnError ?? "", /NotFound|NotCapable/);
});
