/**
 * The sudoers lines that `sosvault doctor` prints, proven with the real sudo and visudo on this
 * host: installed for a throwaway user, then asked with `sudo -n -l -U <user> <cmd>` (as root this
 * says whether that user may run exactly that command), and finally used for real as that user.
 *
 * Needs root and real sudo (>= 1.9.10); skipped with a message otherwise, failed when CI is set.
 *   deno test --no-prompt --allow-run=sudo,visudo,useradd,id,runuser,sysctl --allow-sys=uid \
 *     --allow-env=CI --allow-read=/etc/sudoers.d,/var/tmp,/tmp,/usr/bin,/usr/sbin,/bin \
 *     --allow-write=/etc/sudoers.d,/var/tmp,/tmp tests/sos/sudoers_test.ts
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  catPathPattern,
  SOS_ARGS,
  sosArgv,
  sudoersLines,
  sudoersUser,
} from "../../src/sos/sudoers.ts";
import {
  ARCHIVE_NAME,
  parseArchivePath,
  parseChecksum,
  SOS_LABEL,
  SOS_TMP_DIR,
} from "../../src/sos/output.ts";
import { clearedRunner, locateCat, locateSos } from "../../src/sos/locate.ts";
import { CHILD_ENV } from "../../src/sos/runner.ts";
import { linkProtectionCheck } from "../../src/cli/doctor.ts";

const USER = "sosvault-t1";
const ARCHIVE = "/var/tmp/sosreport-host-linux-mcp-sos-2026-11-24-abcdefg";

interface Out {
  code: number;
  stdout: string;
  stderr: string;
  bytes: Uint8Array;
}

async function run(argv: string[], cwd = "/"): Promise<Out> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    clearEnv: true,
    env: { ...CHILD_ENV },
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
    bytes: out.stdout,
  };
}

/** Runs argv as the throwaway user, the way the sosvault service user would run it. */
const asUser = (argv: string[], cwd = "/") => run(["runuser", "-u", USER, "--", ...argv], cwd);

let SOS = "/usr/bin/sos";
let CAT = "/usr/bin/cat";

async function preconditions(): Promise<string | null> {
  try {
    if (Deno.uid() !== 0) return "they must run as root";
    for (const tool of ["sudo", "visudo"]) {
      const r = await run([tool, "-V"]).catch((err) => {
        if (err instanceof Deno.errors.NotFound) return null;
        throw err;
      });
      if (!r || r.code !== 0) return `${tool} is not installed`;
    }
    const v = /Sudo version (\d+)\.(\d+)\.(\d+)/.exec((await run(["sudo", "-V"])).stdout);
    if (!v || Number(v[1]) * 1e6 + Number(v[2]) * 1e3 + Number(v[3]) < 1_009_010) {
      return "sudo is older than 1.9.10";
    }
    const sos = await locateSos();
    if (!sos) return "sos is not installed";
    SOS = sos;
    CAT = (await locateCat()) ?? CAT;
    return null;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotCapable)) throw err;
    return `Deno permissions are missing (${err.message}); use the flags in this file's header`;
  }
}

const ci = Deno.permissions.querySync({ name: "env", variable: "CI" }).state === "granted" &&
  Boolean(Deno.env.get("CI"));
const skip = await preconditions();
if (skip) {
  const why =
    `the sudoers proofs cannot run: ${skip} (they need root, sudo >= 1.9.10, visudo, sos)`;
  if (ci) throw new Error(why);
  console.warn(`SKIPPED: ${why}`);
}

async function ensureUser() {
  if ((await run(["id", "-u", USER])).code === 0) return;
  const r = await run(["useradd", "--system", "--no-create-home", USER]);
  assert.equal(r.code, 0, r.stderr);
}

/** visudo -cf on a temp copy, so a broken file never reaches /etc/sudoers.d. */
async function visudoCheck(text: string): Promise<Out> {
  const tmp = await Deno.makeTempFile({ dir: "/tmp", prefix: "sosvault-sudoers-" });
  try {
    await Deno.writeTextFile(tmp, text);
    return await run(["visudo", "-cf", tmp]);
  } finally {
    await Deno.remove(tmp);
  }
}

/** Installs the rules under a unique name (no dot: sudo skips names with one), always removed. */
async function withRules(text: string, fn: () => Promise<void>) {
  const check = await visudoCheck(text);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const path = `/etc/sudoers.d/zz-sosvault-test-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(path, text, { mode: 0o440, createNew: true });
  try {
    await Deno.chmod(path, 0o440);
    await fn();
  } finally {
    await Deno.remove(path);
  }
}

const allowed = async (cmd: string[]) =>
  (await run(["sudo", "-n", "-l", "-U", USER, ...cmd])).code === 0;

function proof(name: string, fn: () => Promise<void>) {
  Deno.test({ name, ignore: skip !== null, fn });
}

proof("sudoersLines() passes visudo -cf as printed", async () => {
  const text = sudoersLines({ user: USER, sosPath: SOS, catPath: CAT });
  const r = await visudoCheck(text);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /parsed OK/);
});

proof(
  "sudoersLines() escapes a user name with sudoers metacharacters so visudo parses it",
  async () => {
    for (const user of ["svc,x", "svc:x", "svc=x", "svc(x)", "svc!x", "DOM\\svc", "svc x"]) {
      const r = await visudoCheck(sudoersLines({ user, sosPath: SOS, catPath: CAT }));
      assert.equal(r.code, 0, `${user}: ${r.stdout}${r.stderr}`);
    }
    for (const user of ["%wheel", "+netgroup", "#0", "ALL", "", "a\nb"]) {
      assert.throws(() => sudoersUser(user), /cannot be used as a sudoers user name/);
    }
  },
);

proof("the exact sos argv is allowed; any other argument list is refused", async () => {
  await ensureUser();
  await withRules(sudoersLines({ user: USER, sosPath: SOS, catPath: CAT }), async () => {
    assert.ok(await allowed(sosArgv(SOS)));
    const refused = [
      [SOS, "report", "--batch", "--tmp-dir", "/tmp", "--name", "linux-mcp-sos"],
      [...sosArgv(SOS), "-o", "foo"],
      [SOS, "report", "--tmp-dir", "/var/tmp", "--name", "linux-mcp-sos"],
      [SOS, "report", "--batch", "--tmp-dir", "/var/tmp", "--name", "other-label"],
      [SOS, "report", "--batch", "--name", "linux-mcp-sos", "--tmp-dir", "/var/tmp"],
      [SOS, "report", "--batch", "--tmp-dir", "/var/tmp", "--name", "linux-mcp-sos --upload"],
      [SOS, "report"],
      [SOS],
      [SOS, "clean", "--batch"],
    ];
    for (const cmd of refused) assert.ok(!await allowed(cmd), cmd.join(" "));
  });
});

proof("cat is allowed on an archive and its .md5/.sha256 directly in /var/tmp", async () => {
  await ensureUser();
  await withRules(sudoersLines({ user: USER, sosPath: SOS, catPath: CAT }), async () => {
    for (const p of [`${ARCHIVE}.tar.xz`, `${ARCHIVE}.tar.xz.md5`, `${ARCHIVE}.tar.xz.sha256`]) {
      assert.ok(await allowed([CAT, p]), p);
    }
    assert.ok(
      await allowed([
        CAT,
        "/var/tmp/sosreport-juju-6127db-1-linux-mcp-sos-2023-07-14-kfjwqxn.tar.xz",
      ]),
    );
  });
});

proof(
  "cat is refused for other files, a second argument, traversal, spaces and other names",
  async () => {
    await ensureUser();
    await withRules(sudoersLines({ user: USER, sosPath: SOS, catPath: CAT }), async () => {
      const refused: string[][] = [
        [CAT, "/etc/shadow"],
        [CAT, "/var/tmp/../etc/shadow"],
        // the wildcard attack: two arguments, the first one a valid archive name
        [CAT, "/var/tmp/sosreport-x-linux-mcp-sos-2026-11-24-abc.tar.xz", "/etc/shadow"],
        [CAT, "/var/tmp/sosreport-x-linux-mcp-sos-2026-11-24-abc.tar.xz /etc/shadow"],
        [CAT, "/var/tmp/sosreport-h st-linux-mcp-sos-2026-11-24-abcdefg.tar.xz"],
        [CAT, "/var/tmp/a/sosreport-host-linux-mcp-sos-2026-11-24-abcdefg.tar.xz"],
        [CAT, "/var/tmp/sosreport-../../etc/x-linux-mcp-sos-2026-11-24-abcdefg.tar.xz"],
        [CAT, "/var/tmp/sosreport-host-other-label-2026-11-24-abcdefg.tar.xz"],
        [CAT, "/tmp/sosreport-host-linux-mcp-sos-2026-11-24-abcdefg.tar.xz"],
        // the dots are literal: no wildcard character hides in the pattern
        [CAT, `${ARCHIVE}XtarXxz`],
        [CAT, `${ARCHIVE}.tar.xzXmd5`],
        [CAT, `${ARCHIVE}.tar.xz.md5.bak`],
        [CAT, `${ARCHIVE}.tar.gz`],
        [CAT, "/var/tmp/sosreport-host-linux-mcp-sos-2026-11-24-ABCDEFG.tar.xz"],
        [CAT, "/var/tmp/sosreport-hé-linux-mcp-sos-2026-11-24-abcdefg.tar.xz"],
        [CAT, `${ARCHIVE}.tar.xz\n/etc/shadow`],
        [CAT, "-v", `${ARCHIVE}.tar.xz`],
        [CAT, "--", `${ARCHIVE}.tar.xz`],
        [CAT],
        ["/usr/bin/head", `${ARCHIVE}.tar.xz`],
      ];
      for (const cmd of refused) assert.ok(!await allowed(cmd), JSON.stringify(cmd));
    });
  },
);

proof(
  "why not a wildcard: a glob rule for cat lets a second file (/etc/shadow) through",
  async () => {
    await ensureUser();
    const glob =
      `${USER} ALL=(root) NOPASSWD: ${CAT} /var/tmp/sosreport-*-linux-mcp-sos-*.tar.xz\n`;
    await withRules(glob, async () => {
      // sudo matches the arguments as one string, and * spans spaces and slashes.
      const attack = [
        CAT,
        "/var/tmp/sosreport-a-linux-mcp-sos-",
        "/etc/shadow",
        "/var/tmp/b.tar.xz",
      ];
      assert.ok(await allowed(attack));
    });
  },
);

proof(
  "why the regex is not backslash-escaped: an escaped rule opens an unanchored alternative",
  async () => {
    await ensureUser();
    // What escaping ( ) as in ordinary sudoers words would give: regcomp sees literal parentheses,
    // and the top-level | leaves "sha256\)\)?$" as an alternative with no ^ in front.
    const overEscaped = catPathPattern().replace(/[()]/g, (c) => `\\${c}`);
    await withRules(`${USER} ALL=(root) NOPASSWD: ${CAT} ${overEscaped}\n`, async () => {
      assert.ok(!await allowed([CAT, `${ARCHIVE}.tar.xz`]), "the real archive no longer matches");
      assert.ok(await allowed([CAT, "/etc/shadow", "sha256)"]), "but /etc/shadow does");
    });
  },
);

Deno.test("the cat pattern and ARCHIVE_NAME agree; SOS_ARGS carry the dir and label in sos's names", () => {
  assert.equal(SOS_ARGS[3], SOS_TMP_DIR);
  assert.equal(SOS_ARGS[5], SOS_LABEL);
  const re = new RegExp(catPathPattern());
  for (
    const name of ["sosreport-h-linux-mcp-sos-2026-11-24-abcdefg.tar.xz", "sosreport-h.tar.xz"]
  ) {
    assert.equal(re.test(`/var/tmp/${name}`), ARCHIVE_NAME.test(name), name);
  }
});

proof(
  "as the user itself, non-interactively: sudo -n -l says yes to exactly our commands",
  async () => {
    await ensureUser();
    await withRules(sudoersLines({ user: USER, sosPath: SOS, catPath: CAT }), async () => {
      const sos = await asUser(["sudo", "-n", "-l", ...sosArgv(SOS)]);
      assert.equal(sos.code, 0, sos.stderr);
      assert.equal(sos.stdout.trim(), sosArgv(SOS).join(" "));
      assert.equal((await asUser(["sudo", "-n", "-l", CAT, `${ARCHIVE}.tar.xz`])).code, 0);
      assert.notEqual((await asUser(["sudo", "-n", "-l", CAT, "/etc/shadow"])).code, 0);
      assert.notEqual((await asUser(["sudo", "-n", CAT, "/etc/shadow"])).code, 0);
    });
  },
);

/** A directory the service user can write, holding a Python package named sos. */
async function hostileCwd(): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "sosvault-cwd-" });
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/sos`);
  await Deno.writeTextFile(
    `${dir}/sos/__init__.py`,
    "import os\nopen(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'PLANTED'), 'w').write(str(os.getuid()))\nraise SystemExit(3)\n",
  );
  const uid = Number((await run(["id", "-u", USER])).stdout);
  for (const p of [dir, `${dir}/sos`, `${dir}/sos/__init__.py`]) await Deno.chown(p, uid, null);
  return dir;
}

proof(
  "without CWD=/ in the rule, a sos module planted in the caller's cwd runs as root",
  async () => {
    await ensureUser();
    const dir = await hostileCwd();
    try {
      const noCwd = `${USER} ALL=(root) NOPASSWD: ${sosArgv(SOS).join(" ")}\n`;
      await withRules(noCwd, async () => {
        const r = await asUser(["sudo", "-n", ...sosArgv(SOS)], dir);
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.equal(
          await Deno.readTextFile(`${dir}/PLANTED`),
          "0",
          "the planted code ran as root",
        );
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

proof(
  "end to end as the user, from a hostile cwd: the real sos runs, the planted module does not, cat reads the archive",
  async () => {
    await ensureUser();
    const dir = await hostileCwd();
    const made: { archive?: string } = {};
    try {
      await withRules(sudoersLines({ user: USER, sosPath: SOS, catPath: CAT }), async () => {
        const started = performance.now();
        const r = await asUser(["sudo", "-n", ...sosArgv(SOS)], dir);
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        const output = r.stdout + r.stderr;
        const archive = parseArchivePath(output);
        assert.equal(r.code, 0, output);
        assert.ok(archive, `no archive in the output:\n${output}`);
        made.archive = archive;
        console.log(`  sos ${SOS} ran ${seconds} s as root for ${USER}: ${archive}`);
        await assert.rejects(Deno.stat(`${dir}/PLANTED`), Deno.errors.NotFound);
        assert.equal(archive.slice(0, SOS_TMP_DIR.length + 1), `${SOS_TMP_DIR}/`);
        assert.ok(ARCHIVE_NAME.test(archive.slice(SOS_TMP_DIR.length + 1)), archive);

        const info = await Deno.lstat(archive);
        assert.ok(info.isFile && info.uid === 0 && (info.mode! & 0o777) === 0o600);
        const sum = parseChecksum(output);
        assert.ok(sum, "a checksum line");
        const beside = `${archive}.${sum.algorithm}`;
        assert.equal((await Deno.readTextFile(beside)).trim(), sum.value);

        // The user cannot read the archive itself; the cat rule can, byte for byte.
        assert.notEqual((await asUser([CAT, archive])).code, 0);
        const cat = await asUser(["sudo", "-n", CAT, archive]);
        assert.equal(cat.code, 0, cat.stderr);
        assert.equal(createHash(sum.algorithm).update(cat.bytes).digest("hex"), sum.value);
        assert.equal((await asUser(["sudo", "-n", CAT, beside])).stdout.trim(), sum.value);
        assert.notEqual((await asUser(["sudo", "-n", CAT, archive, "/etc/shadow"])).code, 0);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
      for (const suffix of made.archive ? ["", ".md5", ".sha256"] : []) {
        await Deno.remove(`${made.archive}${suffix}`).catch(() => {});
      }
    }
  },
);

proof(
  "a symlink planted in /var/tmp under an archive's name: the kernel (fs.protected_symlinks=1) stops sudo cat; doctor FAILs a host without it",
  async () => {
    await ensureUser();
    // Deno wants --allow-all for reads under /proc; sysctl reads it for us.
    const setting = (await run(["sysctl", "-n", "fs.protected_symlinks"])).stdout.trim();
    assert.match(setting, /^[012]$/);
    const link = `/var/tmp/sosreport-planted${
      crypto.randomUUID().slice(0, 6)
    }-linux-mcp-sos-2026-11-24-abcdefg.tar.xz`;
    await withRules(sudoersLines({ user: USER, sosPath: SOS, catPath: CAT }), async () => {
      try {
        assert.equal((await asUser(["ln", "-s", "/etc/shadow", link])).code, 0);
        const r = await asUser(["sudo", "-n", CAT, link]);
        if (setting === "0") {
          // This host is exposed: the name matches the rule and root follows the user's link.
          // (Never print r.stdout: it is /etc/shadow.)
          assert.ok(r.code === 0 && r.stdout.startsWith("root:"), "the planted link was followed");
          console.warn(
            "  WARNING: fs.protected_symlinks=0 here: sudo cat follows planted links; `sosvault doctor` reports FAIL",
          );
        } else {
          assert.notEqual(r.code, 0);
          assert.match(r.stderr, /Permission denied/);
        }
      } finally {
        await Deno.remove(link).catch(() => {});
      }
    });
    if (setting === "0") assert.equal((await linkProtectionCheck(clearedRunner())).status, "fail");
  },
);
