/**
 * Attaches one large artifact end to end and reports throughput and the server's peak memory:
 * `sosvault serve` runs as its own process (so its RSS is its own), the fake Jira on loopback
 * HTTPS records the upload's sha256, and the official MCP SDK client calls jira_attach_artifact.
 *
 *   deno run --unstable-kv --no-prompt --allow-net=127.0.0.1 --allow-read=.,/tmp --allow-write=/tmp \
 *     --allow-run=deno,cat --allow-env=PATH,HOME,DENO_DIR,XDG_CACHE_HOME scripts/large_attach.ts [MiB]
 */
import { createHash } from "node:crypto";
import { startFakeJira } from "../tests/helpers/fake_jira_server.ts";
import { makeDcPat } from "../tests/helpers/canary.ts";
import { runSosvault, serveProcess } from "../tests/helpers/process.ts";
import { connectMcp } from "../tests/helpers/mcp.ts";
import { randomMasterKey } from "../tests/helpers/server.ts";
import { TEST_CA_FILE } from "../tests/helpers/paths.ts";

/** Reads /proc/<pid>/status through cat: Deno guards /proc behind --allow-all even for reads. */
function statusKiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const out = new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).outputSync();
  const text = new TextDecoder().decode(out.stdout);
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)![1]);
}

async function writeFile(path: string, bytes: number): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
  const chunk = new Uint8Array(4 * 1024 * 1024);
  for (let written = 0; written < bytes;) {
    crypto.getRandomValues(chunk.subarray(0, 65536));
    for (let i = 65536; i < chunk.length; i += 65536) chunk.copyWithin(i, 0, 65536);
    chunk[0] = written & 0xff;
    const n = Math.min(chunk.length, bytes - written);
    const part = chunk.subarray(0, n);
    hash.update(part);
    for (let off = 0; off < n;) off += await file.write(part.subarray(off));
    written += n;
  }
  file.close();
  return hash.digest("hex");
}

export async function largeAttach(mib: number, dir: string) {
  const jira = await startFakeJira({ uploadLimit: 4 * 1024 * 1024 * 1024 });
  const pat = makeDcPat();
  jira.jira.addUser({ name: "bench", displayName: "Bench" });
  jira.jira.addPat("bench", pat);
  jira.jira.addIssue({ key: "BENCH-1" });
  jira.jira.setOptions({ maxRecordedRequests: 50 } as never);
  const env = {
    TOKEN_VAULT_MASTER_KEY: randomMasterKey(),
    SOSVAULT_KV_PATH: `${dir}/kv/sosvault.kv`,
    SOSVAULT_ARTIFACT_DIR: `${dir}/artifacts`,
    JIRA_CA_FILE: TEST_CA_FILE,
    JIRA_ALLOWED_HOSTS: "127.0.0.1",
    JIRA_ATTACHMENT_MAX_BYTES: String(4 * 1024 * 1024 * 1024),
  };
  const token =
    JSON.parse((await runSosvault(dir, ["users", "add", "bench", "--json"], env)).stdout).token;
  await Deno.mkdir(`${dir}/artifacts/bench`, { recursive: true, mode: 0o700 });
  const path = `${dir}/artifacts/bench/large-${mib}MiB.bin`;
  const sha = await writeFile(path, mib * 1024 * 1024);
  const server = await serveProcess(dir, env);
  const pid = server.child.pid;
  try {
    const res = await fetch(`${server.url}/api/jira/connections`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ base_url: jira.url, pat }),
    });
    const { connection_id } = await res.json();
    const mcp = await connectMcp(server.url, token);
    const idleRss = statusKiB(pid, "VmRSS");
    const idlePeak = statusKiB(pid, "VmHWM");
    const started = performance.now();
    const result = await mcp.call("jira_attach_artifact", {
      connection_id,
      issue_key: "BENCH-1",
      artifact_ref: path,
    });
    const seconds = (performance.now() - started) / 1000;
    await mcp.close();
    if (result.isError) throw new Error(result.content[0].text);
    const upload = jira.jira.requests.find((r) => r.method === "POST")!;
    return {
      mib,
      seconds,
      mibPerSecond: mib / seconds,
      shaMatches: upload.fileSha256 === sha,
      exactLength: upload.contentLength === upload.bodyBytes && !upload.transferEncoding,
      idleRssMiB: idleRss / 1024,
      peakRssMiB: statusKiB(pid, "VmHWM") / 1024,
      peakBeforeMiB: idlePeak / 1024,
    };
  } finally {
    await server.stop();
    await jira.close();
    await Deno.remove(path);
  }
}

if (import.meta.main) {
  const mib = Number(Deno.args[0] ?? 512);
  const dir = await Deno.makeTempDir({ prefix: "sosvault-large-" });
  try {
    console.log(JSON.stringify(await largeAttach(mib, dir), null, 2));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
