/**
 * `deno task compile` (scripts/compile.ts): the permissions embedded in dist/sosvault, checked
 * on the argv it builds, and its advice when the denort runtime is missing. Building a real binary
 * needs denort, which CI cannot download, so that part is left to a connected machine.
 */
import assert from "node:assert/strict";
import { ENV_VARS } from "../../src/config.ts";
import {
  builtOnDenoCli,
  compileArgs,
  explainFailure,
  OUTPUT,
  parseAllowNet,
  PERMISSION_SET,
  permissionFlags,
  type PermissionSet,
  readPermissionSet,
} from "../../scripts/compile.ts";
import { REPO_ROOT } from "../helpers/paths.ts";

const PERMISSION_FLAG = /^--(allow|deny)-/;

async function tasks(): Promise<Record<string, string>> {
  return JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`)).tasks;
}

function serverSet(): Promise<PermissionSet> {
  return readPermissionSet(PERMISSION_SET, `${REPO_ROOT}/deno.json`);
}

function flagValue(args: string[], name: string): string | undefined {
  return args.find((a) => a === name || a.startsWith(`${name}=`));
}

/**
 * What Deno actually grants a program started with `args`: the probe asks Deno.permissions for
 * every candidate below and prints the answers, so two ways of granting can be compared as Deno
 * applies them rather than as strings.
 */
async function grantedBy(args: string[]): Promise<Record<string, string>> {
  const out = await new Deno.Command("deno", {
    args: ["run", "--no-prompt", ...args, "tests/ops/permission_probe.ts"],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", PROBE_ENV: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("the start and dev tasks run with the one permission set the binary embeds", async () => {
  const t = await tasks();
  assert.match(t.start, new RegExp(`--permission-set=${PERMISSION_SET}(\\s|$)`));
  assert.match(t.dev, new RegExp(`--permission-set=${PERMISSION_SET}(\\s|$)`));
  // Security: no task adds a grant of its own on top of the set, except dev narrowing the network.
  assert.deepEqual(t.start.split(/\s+/).filter((a) => PERMISSION_FLAG.test(a)), []);
  assert.deepEqual(t.dev.split(/\s+/).filter((a) => PERMISSION_FLAG.test(a)), [
    "--allow-net=127.0.0.1",
  ]);
  const set = await serverSet();
  const compiled = compileArgs(set).filter((a) => PERMISSION_FLAG.test(a));
  assert.deepEqual(compiled, permissionFlags(set));
});

Deno.test("the compiled binary's flags grant exactly what Deno grants the start task's set", async () => {
  const set = await serverSet();
  const [viaSet, viaFlags] = await Promise.all([
    grantedBy([`--permission-set=${PERMISSION_SET}`]),
    grantedBy(permissionFlags(set)),
  ]);
  assert.deepEqual(viaFlags, viaSet);
  // And the set is the narrow one the contract describes (DESIGN.md section 1).
  for (const name of ENV_VARS) assert.equal(viaSet[`env:${name}`], "granted", name);
  for (const denied of ["env:PATH", "env:HOME", "read:/etc/shadow", "write:/etc", "run:sh"]) {
    assert.notEqual(viaSet[denied], "granted", denied);
  }
  assert.notEqual(viaSet["net:169.254.169.254"], "granted");
  assert.equal(viaSet["net:jira.example.com"], "granted");
  assert.equal(viaSet["read:.data"], "granted");
});

Deno.test("compileArgs() lists the config variables as --allow-env, and nothing broader", async () => {
  const args = compileArgs(await serverSet());
  assert.equal(flagValue(args, "--allow-env"), `--allow-env=${ENV_VARS.join(",")}`);
  assert.equal(
    flagValue(args, "--allow-run"),
    "--allow-run=sudo,sysctl,/usr/bin/dpkg-query,/usr/bin/rpm",
  );
  assert.equal(flagValue(args, "--allow-sys"), "--allow-sys=hostname,userInfo,uid,gid");
  for (const flag of ["--allow-read", "--allow-write", "--allow-env", "--allow-run"]) {
    assert.ok(!args.includes(flag), `${flag} without a list`);
  }
  for (const a of args) assert.ok(!/^(-A|--allow-all|--allow-ffi|--allow-import)/.test(a), a);
});

Deno.test("compileArgs() writes dist/sosvault from main.ts, with --unstable-kv, the lockfile frozen, no test packages", async () => {
  const args = compileArgs(await serverSet());
  assert.equal(args[0], "compile");
  assert.equal(args[args.indexOf("--output") + 1], OUTPUT);
  assert.equal(OUTPUT, "dist/sosvault");
  assert.equal(args.at(-1), "main.ts");
  assert.ok(args.includes("--unstable-kv"));
  assert.ok(args.includes("--frozen-lockfile"));
  assert.ok(args.includes("--exclude-unused-npm"));
});

Deno.test("compileArgs() keeps the metadata address denied, with or without a host list", async () => {
  const set = await serverSet();
  assert.ok(compileArgs(set).includes("--allow-net"));
  assert.ok(compileArgs(set).includes("--deny-net=169.254.169.254"));
  const narrow = compileArgs(set, { allowNet: ["jira.example.com", "127.0.0.1:8080"] });
  assert.ok(narrow.includes("--allow-net=jira.example.com,127.0.0.1:8080"));
  assert.ok(!narrow.includes("--allow-net"));
  assert.ok(narrow.includes("--deny-net=169.254.169.254"));
});

Deno.test("permissionFlags() turns every form of a set's grant into the matching flag", () => {
  assert.deepEqual(
    permissionFlags({
      net: { allow: true, deny: ["169.254.169.254"] },
      read: ["a", "/b"],
      write: [],
      env: true,
      run: false,
      sys: { allow: ["hostname"] },
    }),
    [
      "--allow-net",
      "--deny-net=169.254.169.254",
      "--allow-read=a,/b",
      "--allow-env",
      "--allow-sys=hostname",
    ],
  );
});

Deno.test("parseAllowNet() reads SOSVAULT_COMPILE_ALLOW_NET as a comma list of hosts", () => {
  assert.deepEqual(parseAllowNet(undefined), []);
  assert.deepEqual(parseAllowNet(""), []);
  assert.deepEqual(parseAllowNet(" jira.example.com , 0.0.0.0:8080,[::1]:8080,10.1.2.3"), [
    "jira.example.com",
    "0.0.0.0:8080",
    "[::1]:8080",
    "10.1.2.3",
  ]);
});

Deno.test("parseAllowNet() refuses URLs, wildcards, spaces and bad ports instead of widening", () => {
  for (const bad of ["https://jira.example.com", "*", "jira example.com", "host:99999", "a/b"]) {
    assert.throws(() => parseAllowNet(bad), /SOSVAULT_COMPILE_ALLOW_NET/, bad);
  }
});

const CONTEXT = { denoVersion: "2.9.6", target: "x86_64-unknown-linux-gnu" };
// What deno compile 2.9.6 prints when dl.deno.land cannot be reached (captured on a CI machine).
const DOWNLOAD_FAILED = `Compile main.ts to dist/sosvault
Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip
error: Writing deno compile executable to temporary file 'dist/sosvault.tmp-dbfbbfed67b17f56'

Caused by:
    0: Setting up base binary.
    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error (Connect): dns error: failed to lookup address information: Name or service not known`;

Deno.test("explainFailure() says to set DENORT_BIN to denort of the same version, and where to get it", () => {
  const advice = explainFailure(DOWNLOAD_FAILED, CONTEXT);
  assert.ok(advice);
  assert.match(advice, /could not download the denort runtime for Deno 2\.9\.6/);
  assert.match(advice, /set DENORT_BIN to the denort binary of exactly Deno 2\.9\.6/);
  assert.ok(
    advice.includes("https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip"),
  );
  assert.ok(
    advice.includes(
      "https://github.com/denoland/deno/releases/download/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
    ),
  );
  assert.match(advice, /\$DENO_DIR\/dl\/release\/v2\.9\.6\/denort-x86_64-unknown-linux-gnu\.zip/);
  assert.match(advice, /not a denort/);
});

Deno.test("explainFailure() names a DENORT_BIN that does not exist", () => {
  const advice = explainFailure("Caused by:\n    0: Could not find denort at '/opt/denort'", {
    ...CONTEXT,
    denortBin: "/opt/denort",
  });
  assert.match(advice ?? "", /could not read DENORT_BIN \(\/opt\/denort\)/);
});

Deno.test("explainFailure() leaves other failures (a type error) to deno's own message", () => {
  assert.equal(explainFailure("TS2322 [ERROR]: Type 'void' is not assignable", CONTEXT), null);
});

Deno.test("builtOnDenoCli() recognises a binary built on the deno CLI instead of denort", () => {
  assert.ok(builtOnDenoCli("deno 2.9.6 (stable, release, x86_64-unknown-linux-gnu)\nv8 15.0"));
  assert.ok(!builtOnDenoCli("0.1.0"));
});

async function runCompileTask(env: Record<string, string>) {
  const [deno, ...args] = (await tasks()).compile.split(/\s+/);
  assert.equal(deno, "deno");
  const keep: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "NPM_CONFIG_REGISTRY"]) {
    const v = Deno.env.get(name);
    if (v) keep[name] = v;
  }
  const out = await new Deno.Command("deno", {
    args,
    cwd: REPO_ROOT,
    env: { ...keep, ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("deno task compile refuses a malformed SOSVAULT_COMPILE_ALLOW_NET before compiling", async () => {
  const r = await runCompileTask({ SOSVAULT_COMPILE_ALLOW_NET: "https://jira.example.com" });
  assert.equal(r.code, 64, r.stderr);
  assert.match(r.stderr, /SOSVAULT_COMPILE_ALLOW_NET must be a comma list/);
  assert.doesNotMatch(r.stderr, /deno compile/);
});

Deno.test("deno task compile with a missing DENORT_BIN fails and says how to get denort", async () => {
  const r = await runCompileTask({ DENORT_BIN: "/nonexistent/denort" });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /compile: FAILED: deno compile could not read DENORT_BIN/);
  assert.match(r.stderr, /\/nonexistent\/denort/);
  assert.match(r.stderr, new RegExp(`denort binary of exactly Deno ${Deno.version.deno}`));
});
