/**
 * `deno task compile`: builds `dist/sosvault`, one executable with the permissions of
 * `deno task start` embedded (DESIGN.md section 1). Whoever runs the binary gets exactly these
 * permissions and is never prompted for more.
 *
 *   deno task compile                                    # fetches denort on first use
 *   DENORT_BIN=/opt/denort-2.9.6/denort deno task compile  # offline build
 *   SOSVAULT_COMPILE_ALLOW_NET=jira.example.com,127.0.0.1:8080 deno task compile
 *
 * `deno compile` appends the program to `denort`, Deno's runtime without its tooling, which it
 * downloads from dl.deno.land the first time. Where that is impossible it reads DENORT_BIN from
 * the environment (this script passes its environment through unchanged).
 */
import { stripVTControlCharacters } from "node:util";
import { VERSION } from "../src/version.ts";

export const OUTPUT = "dist/sosvault";
export const ENTRYPOINT = "main.ts";
/** The permission set in deno.json that `deno task start` runs with and the binary embeds. */
export const PERMISSION_SET = "server";

/** One permission of a Deno permission set: a list, everything (`true`), or allow/deny lists. */
type Grant = boolean | string[] | { allow?: boolean | string[]; deny?: string[] };
export type PermissionSet = Partial<
  Record<"read" | "write" | "net" | "env" | "run" | "sys", Grant>
>;

/** Reads one named permission set from deno.json (`"permissions": {NAME: {...}}`). */
export async function readPermissionSet(
  name = PERMISSION_SET,
  configPath = "deno.json",
): Promise<PermissionSet> {
  const config = JSON.parse(await Deno.readTextFile(configPath));
  const set = config.permissions?.[name];
  if (!set || typeof set !== "object") {
    throw new Error(`${configPath} has no permission set "${name}"`);
  }
  return set as PermissionSet;
}

/**
 * The permission set as command-line flags, in a fixed order. Why not `deno compile -P=server`:
 * Deno resolves a set's relative paths (`.data`) against deno.json's directory, so the binary
 * would embed the build checkout's absolute path; as flags, `.data` stays relative to the
 * binary's working directory at run time, exactly as for `deno task start` run in the checkout.
 */
export function permissionFlags(set: PermissionSet): string[] {
  const flags: string[] = [];
  for (const kind of ["net", "read", "write", "env", "run", "sys"] as const) {
    const grant = set[kind];
    if (grant === undefined || grant === false) continue;
    const { allow, deny } = Array.isArray(grant) || typeof grant === "boolean"
      ? { allow: grant, deny: undefined }
      : grant;
    if (allow === true) flags.push(`--allow-${kind}`);
    else if (Array.isArray(allow) && allow.length > 0) {
      flags.push(`--allow-${kind}=${allow.join(",")}`);
    }
    if (deny?.length) flags.push(`--deny-${kind}=${deny.join(",")}`);
  }
  return flags;
}

export interface CompileOptions {
  /** Hosts the binary may reach; empty or absent: any host (Jira hosts differ per deployment). */
  allowNet?: readonly string[];
  output?: string;
}

/** The argv after `deno`: pure, so tests check exactly what is embedded in the binary. */
export function compileArgs(set: PermissionSet, options: CompileOptions = {}): string[] {
  const narrowed: PermissionSet = { ...set };
  if (options.allowNet?.length) {
    const net = set.net;
    const deny = net && typeof net === "object" && !Array.isArray(net) ? net.deny : undefined;
    narrowed.net = { allow: [...options.allowNet], deny };
  }
  return [
    "compile",
    "--frozen-lockfile",
    // Only the npm packages main.ts reaches: test tools (playwright-core, fast-check) stay out.
    "--exclude-unused-npm",
    "--output",
    options.output ?? OUTPUT,
    "--unstable-kv",
    ...permissionFlags(narrowed),
    ENTRYPOINT,
  ];
}

const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$/;

/**
 * Parses SOSVAULT_COMPILE_ALLOW_NET: a comma list of `host` or `host:port`. Unset or empty means
 * no host list. Throws on anything else, so a typo cannot silently widen or break the binary.
 */
export function parseAllowNet(value: string | undefined): string[] {
  const hosts = (value ?? "").split(",").map((h) => h.trim()).filter(Boolean);
  const bad = hosts.filter((h) => !HOST.test(h) || Number(h.split(/:(?=\d+$)/)[1] ?? 0) > 65535);
  if (bad.length > 0) {
    throw new Error(
      `SOSVAULT_COMPILE_ALLOW_NET must be a comma list of host or host:port entries ` +
        `(for example jira.example.com,127.0.0.1:8080); not valid: ${bad.join(", ")}`,
    );
  }
  return hosts;
}

export interface FailureContext {
  /** DENORT_BIN as set, if at all. */
  denortBin?: string;
  /** The Deno version doing the compile (Deno.version.deno). */
  denoVersion: string;
  /** Its target triple (Deno.build.target). */
  target: string;
}

/** Where Deno publishes denort for a release: dl.deno.land, and the GitHub release's assets. */
export function denortUrls(version: string, target: string): string[] {
  const zip = `denort-${target}.zip`;
  return [
    `https://dl.deno.land/release/v${version}/${zip}`,
    `https://github.com/denoland/deno/releases/download/v${version}/${zip}`,
  ];
}

/**
 * Turns deno compile's error output into what the operator should do, when the cause is the
 * denort runtime (not found at DENORT_BIN, or not downloadable). Null for any other failure,
 * whose own message is then the useful one.
 */
export function explainFailure(stderr: string, c: FailureContext): string | null {
  const [dlUrl, ghUrl] = denortUrls(c.denoVersion, c.target);
  const how = [
    `To build offline, set DENORT_BIN to the denort binary of exactly Deno ${c.denoVersion} for`,
    `${c.target}:`,
    `  1. on a machine with internet access, download either of`,
    `       ${dlUrl}`,
    `       ${ghUrl}`,
    `  2. copy it here, unzip it (it holds one file, denort), and run`,
    `       DENORT_BIN=/path/to/denort deno task compile`,
    `Alternatively put the zip, unchanged, at`,
    `  $DENO_DIR/dl/release/v${c.denoVersion}/denort-${c.target}.zip`,
    `(DENO_DIR defaults to ~/.cache/deno): deno compile takes it from there instead of downloading.`,
    `The deno executable itself (also what the npm packages deno and @deno/${
      npmPlatform(c.target)
    } ship) is not a denort: a binary built on it ignores the program and behaves as the deno CLI.`,
  ].join("\n");
  if (/Could not find denort at/.test(stderr)) {
    return `deno compile could not read DENORT_BIN (${c.denortBin ?? "?"}): no such file, or ` +
      `not readable.\n${how}`;
  }
  if (/dl\.deno\.land|Setting up base binary|denort-[\w-]+\.zip/.test(stderr)) {
    return `deno compile could not download the denort runtime for Deno ${c.denoVersion} ` +
      `(${dlUrl}): this machine cannot reach dl.deno.land.\n${how}`;
  }
  return null;
}

/** The npm package name suffix of Deno's per-platform binary, for the message above. */
function npmPlatform(target: string): string {
  const arch = target.startsWith("aarch64") ? "arm64" : "x64";
  if (target.includes("linux")) return `linux-${arch}-glibc`;
  if (target.includes("darwin")) return `darwin-${arch}`;
  return `win32-${arch}`;
}

/**
 * A binary built on the deno CLI instead of denort answers `--version` as deno does. Such an
 * executable would run any script given to it with the embedded permissions: never ship it.
 */
export function builtOnDenoCli(versionOutput: string): boolean {
  return /^deno \d+\.\d+\.\d+/.test(versionOutput.trim());
}

async function main(): Promise<number> {
  let allowNet: string[];
  try {
    allowNet = parseAllowNet(Deno.env.get("SOSVAULT_COMPILE_ALLOW_NET"));
  } catch (err) {
    console.error(`compile: ${(err as Error).message}`);
    return 64;
  }
  const args = compileArgs(await readPermissionSet(), { allowNet });
  await Deno.mkdir(OUTPUT.slice(0, OUTPUT.lastIndexOf("/")), { recursive: true });
  console.error(`compile: deno ${args.join(" ")}`);
  if (allowNet.length > 0) {
    console.error(
      "compile: the binary may reach only these hosts: include the listen address " +
        "(SOSVAULT_LISTEN) and, with a KV Connect URL, the KV host",
    );
  }

  // stderr is both shown live and kept, to explain a denort failure afterwards.
  const child = new Deno.Command("deno", { args, stdout: "inherit", stderr: "piped" }).spawn();
  const decoder = new TextDecoder();
  let stderr = "";
  for await (const chunk of child.stderr) {
    stderr += decoder.decode(chunk, { stream: true });
    await Deno.stderr.write(chunk);
  }
  const { code } = await child.status;
  if (code !== 0) {
    const advice = explainFailure(stripVTControlCharacters(stderr), {
      denortBin: Deno.env.get("DENORT_BIN"),
      denoVersion: Deno.version.deno,
      target: Deno.build.target,
    });
    console.error(`\ncompile: FAILED${advice ? `: ${advice}` : ` (deno compile exit ${code})`}`);
    return 1;
  }

  const version = await new Deno.Command(`./${OUTPUT}`, { args: ["--version"] }).output();
  const said = new TextDecoder().decode(version.stdout).trim();
  if (builtOnDenoCli(said)) {
    // Deno refuses writes to a path that --allow-run names, so the operator deletes it.
    console.error(
      `\ncompile: FAILED: DENORT_BIN (${Deno.env.get("DENORT_BIN")}) is the deno CLI, not ` +
        `denort: ${OUTPUT} answered '${said.split("\n")[0]}'. It is not sosvault: delete it ` +
        `(scripts/install.sh refuses to install it).\n` +
        explainFailure("dl.deno.land", {
          denoVersion: Deno.version.deno,
          target: Deno.build.target,
        })!.split("\n").slice(1).join("\n"),
    );
    return 1;
  }
  if (version.code !== 0 || said !== VERSION) {
    console.error(`\ncompile: FAILED: ${OUTPUT} --version answered '${said}', not ${VERSION}`);
    return 1;
  }
  console.error(`compile: built ${OUTPUT} (sosvault ${said})`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
