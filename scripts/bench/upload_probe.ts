/**
 * Where an upload's memory goes: one upload to the HTTPS sink from a process doing nothing
 * else, sampling Deno.memoryUsage() every 10 ms, with either
 *   ring    sosvault's httpsUploader (src/jira/upload.ts: two reused 1 MiB read buffers), or
 *   stream  the design it replaced, reduced to its core: node:https fed from
 *           fs.createReadStream({ highWaterMark: 1 MiB }) in 256 KiB writes, waiting for drain.
 * Prints one JSON line: MiB/s, and the peaks above the idle baseline of RSS, V8 external
 * memory (ArrayBuffer backing stores) and V8 heap.
 *
 *   BENCH_PAT=… deno run --allow-net=127.0.0.1 --allow-read=FILE,WARM,tests/fixtures/tls \
 *     --allow-env=BENCH_PAT scripts/bench/upload_probe.ts ring|stream FILE PORT WARM
 * WARM is a small file uploaded first, so code loading and the first TLS setup are not counted.
 */
import fs from "node:fs";
import https from "node:https";
import { once } from "node:events";
import { httpsUploader, multipartEnvelope, uploadAttachment } from "../../src/jira/upload.ts";

const MiB = 1024 * 1024;
const CA = await Deno.readTextFile(
  new URL("../../tests/fixtures/tls/test-ca.pem", import.meta.url),
);

/** The replaced design: a new 1 MiB buffer per read, written in 256 KiB slices. */
async function streamUpload(url: string, pat: string, path: string, size: number) {
  const env = multipartEnvelope("probe.bin", size);
  const req = https.request(url, {
    method: "POST",
    ca: CA,
    agent: false,
    headers: {
      Authorization: `Bearer ${pat}`,
      "X-Atlassian-Token": "no-check",
      "Content-Type": env.contentType,
      "Content-Length": String(env.contentLength),
    },
  });
  const answered = new Promise<number>((resolve, reject) => {
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
  });
  const write = async (b: Uint8Array) => {
    if (!req.write(b)) await once(req, "drain");
  };
  await write(env.preamble);
  const file = fs.createReadStream(path, { highWaterMark: MiB });
  for await (const chunk of file as AsyncIterable<Uint8Array>) {
    for (let at = 0; at < chunk.length; at += 256 * 1024) {
      await write(chunk.subarray(at, at + 256 * 1024));
    }
  }
  req.end(env.epilogue);
  const status = await answered;
  if (status !== 200) throw new Error(`sink answered ${status}`);
}

if (import.meta.main) {
  const [mode, path, port, warm] = Deno.args;
  const pat = Deno.env.get("BENCH_PAT") ?? "";
  const base = `https://127.0.0.1:${port}`;
  const size = (await Deno.stat(path)).size;
  const upload = mode === "ring"
    ? async (p: string, n: number) => {
      await uploadAttachment(httpsUploader({ caPem: CA }), {
        baseUrl: base,
        issueKey: "BENCH-1",
        pat,
        filePath: p,
        filename: "probe.bin",
        size: n,
        signal: new AbortController().signal,
        idleTimeoutMs: 30_000,
      });
    }
    : (p: string, n: number) =>
      streamUpload(`${base}/rest/api/2/issue/BENCH-1/attachments`, pat, p, n);
  await upload(warm, (await Deno.stat(warm)).size);
  await new Promise((r) => setTimeout(r, 300));
  const base0 = Deno.memoryUsage();
  const peak = { ...base0 };
  const sample = () => {
    const m = Deno.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.external = Math.max(peak.external, m.external);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.heapTotal = Math.max(peak.heapTotal, m.heapTotal);
  };
  const timer = setInterval(sample, 10);
  const started = performance.now();
  await upload(path, size);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  sample();
  console.log(JSON.stringify({
    mode,
    mibPerSecond: size / MiB / seconds,
    rssGrowthMiB: (peak.rss - base0.rss) / MiB,
    externalGrowthMiB: (peak.external - base0.external) / MiB,
    heapUsedGrowthMiB: (peak.heapUsed - base0.heapUsed) / MiB,
    heapTotalGrowthMiB: (peak.heapTotal - base0.heapTotal) / MiB,
  }));
}
