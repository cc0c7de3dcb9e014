// The streamed multipart upload, against the fake Jira over real loopback HTTPS (node:https) and
// in process (mock mode), including every failure Jira and the proxies in front of it produce.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { AppError } from "../../src/errors.ts";
import { USER_AGENT } from "../../src/jira/client.ts";
import { createFakeJira, type FakeJira } from "../../src/jira/fake/mod.ts";
import { MultipartParser } from "../../src/jira/fake/_multipart.ts";
import {
  httpsUploader,
  inProcessUploader,
  multipartEnvelope,
  partContentType,
  quoteFilename,
  READ_CHUNK_BYTES,
  uploadAttachment,
  type Uploader,
  type UploadRequest,
  type UploadResponse,
} from "../../src/jira/upload.ts";
import {
  type RunningFakeJira,
  startFakeJira,
  type StartFakeJiraOptions,
  testCaPem,
} from "../helpers/fake_jira_server.ts";
import { makeDcPat } from "../helpers/canary.ts";

const MiB = 1024 * 1024;
const CA = await testCaPem();
const https = httpsUploader({ caPem: CA });

// ---------------------------------------------------------------------------------------------
// Helpers

interface TestFile {
  path: string;
  size: number;
  sha256: string;
}

/** A temp dir under /tmp for one test, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "sosvault-upload-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes `size` random bytes to `dir/name` in 64 KiB pieces, hashing as it goes. */
async function makeFile(dir: string, name: string, size: number): Promise<TestFile> {
  const path = `${dir}/${name}`;
  const hash = createHash("sha256");
  using file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  const piece = new Uint8Array(64 * 1024);
  for (let done = 0; done < size;) {
    const n = Math.min(piece.length, size - done);
    const chunk = crypto.getRandomValues(piece.subarray(0, n));
    hash.update(chunk);
    for (let w = 0; w < n;) w += await file.write(chunk.subarray(w));
    done += n;
  }
  return { path, size, sha256: hash.digest("hex") };
}

interface Env {
  server: RunningFakeJira;
  jira: FakeJira;
  pat: string;
  dir: string;
}

/** A fake Jira with user fred (PAT `pat`) and issue SUP-1 over HTTPS, plus a temp dir. */
async function withJira(
  options: StartFakeJiraOptions,
  fn: (env: Env) => Promise<void>,
): Promise<void> {
  const server = await startFakeJira({ uploadLimit: 256 * MiB, ...options });
  const jira = options.jira ?? server.jira;
  const pat = makeDcPat();
  if (!options.jira) {
    jira.addUser({ name: "fred", displayName: "Fred F. User" });
    jira.addPat("fred", pat);
    jira.addIssue({ key: "SUP-1" });
  }
  try {
    await withTempDir((dir) => fn({ server, jira, pat, dir }));
  } finally {
    await server.close();
  }
}

function request(
  env: { server?: RunningFakeJira; pat: string },
  file: TestFile,
  extra: Partial<UploadRequest> = {},
): UploadRequest {
  return {
    baseUrl: env.server?.url ?? "https://jira.example.com",
    issueKey: "SUP-1",
    pat: env.pat,
    filePath: file.path,
    filename: file.path.slice(file.path.lastIndexOf("/") + 1),
    size: file.size,
    signal: new AbortController().signal,
    idleTimeoutMs: 10_000,
    ...extra,
  };
}

/** Awaits a rejection with an AppError of `code` whose public text never holds the PAT. */
async function rejectsWith(p: Promise<unknown>, code: string, pat: string): Promise<AppError> {
  const err = await p.then(
    () => assert.fail(`expected ${code}, got success`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AppError, `not an AppError: ${err}`);
  assert.equal(err.code, code, err.message);
  assert.ok(!err.message.includes(pat), "the PAT leaked into the message");
  assert.ok(!JSON.stringify(err.detail ?? {}).includes(pat), "the PAT leaked into the detail");
  assert.ok(!String(err.stack).includes(pat), "the PAT leaked into the stack");
  return err;
}

function posts(jira: FakeJira) {
  return jira.requests.filter((r) => r.method === "POST");
}

async function waitFor(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---------------------------------------------------------------------------------------------
// The multipart envelope

Deno.test("multipartEnvelope() computes exactly the bytes the uploader sends, for any filename", async () => {
  const names = [
    "sosreport-host-linux-mcp-sos-2024-01-01-abcdef.tar.xz",
    "ünïcødé-日本語-🚀.log",
    'quote " and backslash \\ .txt',
    "line\r\nbreak\ttab.gz",
    "a",
  ];
  const sizes = [0, 1, 4099, 65_537, 1_000_003];
  await withTempDir(async (dir) => {
    for (const [i, name] of names.entries()) {
      const file = await makeFile(dir, `f${i}`, sizes[i]);
      const env = multipartEnvelope(name, file.size);
      assert.equal(env.contentLength, env.preamble.length + file.size + env.epilogue.length);
      // What actually goes out: count it at a handler, and parse it as Jira's parser would.
      let received = 0;
      let header: string | null = null;
      assert.doesNotThrow(() => new MultipartParser(env.boundary), "an RFC 2046 boundary");
      const parts: Array<{ filename?: string; bytes: number }> = [];
      const uploader = inProcessUploader(async (req) => {
        header = req.headers.get("content-length");
        const boundary = /boundary=(.+)$/.exec(req.headers.get("content-type")!)![1];
        const p = new MultipartParser(boundary);
        for await (const chunk of req.body!) {
          received += chunk.length;
          for (const ev of p.push(chunk)) {
            if (ev.type === "part") {
              const cd = ev.headers.get("content-disposition") ?? "";
              parts.push({ filename: /filename="((?:\\.|[^"\\])*)"/.exec(cd)?.[1], bytes: 0 });
            } else if (ev.type === "data") parts.at(-1)!.bytes += ev.bytes.length;
          }
        }
        p.finish();
        return new Response("[]", { status: 200 });
      });
      const res = await uploader(request({ pat: makeDcPat() }, file, { filename: name }));
      await res.body?.cancel();
      assert.equal(header, String(received), name);
      assert.equal(parts.length, 1);
      assert.equal(parts[0].bytes, file.size);
      assert.equal(parts[0].filename, quoteFilename(name));
      // The sizes of preamble and epilogue do not depend on the file size.
      assert.equal(
        multipartEnvelope(name, 0, env.boundary).contentLength + file.size,
        env.contentLength,
      );
    }
  });
});

Deno.test("quoteFilename() keeps raw UTF-8, escapes quote and backslash, drops CR/LF", () => {
  assert.equal(quoteFilename("ünïcødé 日本.tar.xz"), "ünïcødé 日本.tar.xz");
  assert.equal(quoteFilename('a"b\\c'), 'a\\"b\\\\c');
  assert.equal(
    quoteFilename("evil\r\nContent-Type: text/html\r\n.txt"),
    "evilContent-Type: text/html.txt",
  );
  assert.equal(quoteFilename("nul\u0000del\u007f"), "nuldel");
  assert.throws(
    () => quoteFilename("\r\n"),
    (e: unknown) => e instanceof AppError && e.code === "invalid_input",
  );
});

Deno.test("partContentType() names sosreport and log types, else octet-stream", () => {
  assert.equal(partContentType("sosreport-x.tar.xz"), "application/x-xz");
  assert.equal(partContentType("logs.tar.gz"), "application/gzip");
  assert.equal(partContentType("notes.TXT"), "text/plain");
  assert.equal(partContentType("messages.log"), "text/plain");
  assert.equal(partContentType("core.bin"), "application/octet-stream");
});

// ---------------------------------------------------------------------------------------------
// Content-Length on the wire: the claim of DESIGN.md 6a, checked

Deno.test("fetch drops a hand-set Content-Length on a stream body and goes chunked; node:https keeps it", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    const file = await makeFile(dir, "probe.bin", 256 * 1024);
    const env = multipartEnvelope("probe.bin", file.size);
    // Observed on Deno 2.9.6: the fake records contentLength null, Transfer-Encoding chunked.
    const client = Deno.createHttpClient({ caCerts: [CA] });
    try {
      const fsFile = await Deno.open(file.path);
      const body = ReadableStream.from((async function* () {
        yield env.preamble;
        yield* fsFile.readable;
        yield env.epilogue;
      })());
      const res = await fetch(`${server.url}/rest/api/2/issue/SUP-1/attachments`, {
        method: "POST",
        client,
        body,
        headers: {
          "Authorization": `Bearer ${pat}`,
          "X-Atlassian-Token": "no-check",
          "User-Agent": USER_AGENT,
          "Content-Type": env.contentType,
          "Content-Length": String(env.contentLength),
        },
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    } finally {
      client.close();
    }
    const viaFetch = posts(jira).at(-1)!;
    assert.equal(viaFetch.contentLength, null);
    assert.equal(viaFetch.transferEncoding, "chunked");
    assert.equal(viaFetch.fileSha256, file.sha256);

    // Observed on Deno 2.9.6: node:https sends our Content-Length and exactly that many bytes.
    await uploadAttachment(https, request({ server, pat }, file));
    const viaNode = posts(jira).at(-1)!;
    assert.equal(viaNode.contentLength, env.contentLength);
    assert.equal(viaNode.transferEncoding, null);
    assert.equal(viaNode.bodyBytes, env.contentLength);
  });
});

// ---------------------------------------------------------------------------------------------
// Success over HTTPS

Deno.test("httpsUploader streams a 64 MiB file with an exact Content-Length, intact", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    const file = await makeFile(dir, "sosreport-host-linux-mcp-sos-2024.tar.xz", 64 * MiB);
    const progress: Array<[number, number]> = [];
    const stored = await uploadAttachment(
      https,
      request({ server, pat }, file, { onProgress: (s, t) => progress.push([s, t]) }),
    );
    assert.equal(stored.length, 1);
    assert.equal(stored[0].filename, "sosreport-host-linux-mcp-sos-2024.tar.xz");
    assert.equal(stored[0].size, file.size);
    assert.equal(stored[0].mime_type, "application/x-xz");
    assert.match(stored[0].created, /Z$/);
    assert.equal(stored[0].author, "Fred F. User");

    const rec = posts(jira).at(-1)!;
    assert.equal(rec.status, 200);
    assert.equal(rec.fileSha256, file.sha256);
    assert.equal(rec.fileBytes, file.size);
    assert.equal(rec.contentLength, rec.bodyBytes, "Content-Length equals the bytes received");
    assert.equal(rec.transferEncoding, null, "exact length, not chunked");
    assert.deepEqual(rec.violations, []);
    assert.equal(rec.headers.authorization, `Bearer ${pat}`);
    assert.equal(rec.headers["x-atlassian-token"], "no-check");
    assert.equal(rec.headers["user-agent"], USER_AGENT);
    assert.equal(rec.headers.accept, "application/json");
    assert.equal(rec.headers.cookie, undefined);
    assert.equal(rec.headers.origin, undefined);
    assert.match(rec.headers["content-type"], /^multipart\/form-data; boundary=[\w-]{32,}$/);
    assert.equal(rec.partName, "file");
    assert.equal(jira.issue("SUP-1")!.attachments[0].sha256, file.sha256);

    assert.ok(progress.length >= 1);
    for (let i = 1; i < progress.length; i++) {
      assert.ok(progress[i][0] >= progress[i - 1][0], "progress is monotone");
    }
    assert.ok(progress.every(([, total]) => total === file.size));
    assert.deepEqual(progress.at(-1), [file.size, file.size]);
  });
});

Deno.test("httpsUploader sends sizes around its read-buffer and write-slice boundaries intact", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    const KiB = 1024;
    const sizes = [
      1,
      256 * KiB - 1,
      256 * KiB + 1,
      READ_CHUNK_BYTES,
      READ_CHUNK_BYTES + 1,
      2 * READ_CHUNK_BYTES,
      2 * READ_CHUNK_BYTES + 1,
      3 * READ_CHUNK_BYTES + 256 * KiB + 7,
    ];
    for (const size of sizes) {
      const file = await makeFile(dir, `f-${size}.bin`, size);
      const stored = await uploadAttachment(https, request({ server, pat }, file));
      assert.equal(stored[0].size, size);
      const rec = posts(jira).at(-1)!;
      assert.equal(rec.fileSha256, file.sha256, `the bytes of a ${size}-byte file`);
      assert.equal(rec.contentLength, rec.bodyBytes);
    }
  });
});

Deno.test("a file truncated during an upload is artifact_invalid, and the upload stops", async () => {
  await withJira({ uploadBytesPerSecond: 8 * MiB }, async ({ server, jira, pat, dir }) => {
    const file = await makeFile(dir, "shrinking.bin", 48 * MiB);
    let truncated = false;
    const started = performance.now();
    await rejectsWith(
      uploadAttachment(
        https,
        request({ server, pat }, file, {
          onProgress: (sent) => {
            if (!truncated && sent > MiB) {
              truncated = true;
              Deno.truncateSync(file.path, 0);
            }
          },
        }),
      ),
      "artifact_invalid",
      pat,
    );
    assert.ok(truncated);
    assert.ok(performance.now() - started < 5000, "stopped early, not after the whole file");
    await waitFor("the fake to see the upload end", () => posts(jira).at(-1)?.status === 400);
    assert.equal(jira.issue("SUP-1")!.attachments.length, 0, "nothing was stored");
  });
});

Deno.test("httpsUploader reports progress at most every 250 ms during a slow upload", async () => {
  await withJira({ uploadBytesPerSecond: 8 * MiB }, async ({ server, pat, dir }) => {
    const file = await makeFile(dir, "slow.bin", 24 * MiB);
    const calls: Array<{ at: number; sent: number }> = [];
    await uploadAttachment(
      https,
      request({ server, pat }, file, {
        onProgress: (sent) => calls.push({ at: performance.now(), sent }),
      }),
    );
    assert.ok(calls.length >= 3, `${calls.length} progress calls`);
    for (let i = 1; i < calls.length - 1; i++) {
      assert.ok(calls[i].at - calls[i - 1].at >= 249, "no more often than every 250 ms");
      assert.ok(calls[i].sent > calls[i - 1].sent);
    }
    assert.equal(calls.at(-1)!.sent, file.size);
  });
});

Deno.test("httpsUploader sends a filename with quotes, backslash and UTF-8 intact as raw UTF-8", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    const file = await makeFile(dir, "f.bin", 4096);
    const name = 'sosreport "ünïcødé" 日本語 \\ 🚀.tar.xz';
    const stored = await uploadAttachment(
      https,
      request({ server, pat }, file, { filename: name }),
    );
    assert.equal(stored[0].filename, name);
    const rec = posts(jira).at(-1)!;
    assert.equal(rec.filename, name);
    assert.deepEqual(rec.violations, [], "plain filename=, no filename*");
  });
});

Deno.test("httpsUploader drops CR/LF from a filename so no part header can be injected", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    const file = await makeFile(dir, "f.bin", 10);
    const stored = await uploadAttachment(
      https,
      request({ server, pat }, file, { filename: "x.txt\r\nContent-Type: text/html\r\n\r\n" }),
    );
    assert.equal(stored[0].filename, "x.txtContent-Type: text/html");
    assert.equal(posts(jira).at(-1)!.files!.length, 1);
    // The injected header stayed inside the name: the part's type is still ours.
    assert.equal(posts(jira).at(-1)!.files![0].contentType, "application/octet-stream");
  });
});

Deno.test("httpsUploader accepts a moved issue's old key and an empty file's exact length", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    jira.addIssue({ key: "NEW-7", movedFrom: ["OLD-7"] });
    const file = await makeFile(dir, "empty.txt", 0);
    const stored = await uploadAttachment(
      https,
      request({ server, pat }, file, { issueKey: "old-7" }),
    );
    assert.equal(stored[0].size, 0);
    assert.equal(jira.issue("NEW-7")!.attachments.length, 1);
    const rec = posts(jira).at(-1)!;
    assert.equal(rec.path, "/rest/api/2/issue/OLD-7/attachments");
    assert.equal(rec.contentLength, rec.bodyBytes);
  });
});

// ---------------------------------------------------------------------------------------------
// Failures over HTTPS

Deno.test("an upload above Jira's uploadLimit is payload_too_large, without Jira's text", async () => {
  await withJira({ uploadLimit: 1 * MiB }, async ({ server, jira, pat, dir }) => {
    const file = await makeFile(dir, "big.bin", 3 * MiB);
    const err = await rejectsWith(
      uploadAttachment(https, request({ server, pat }, file)),
      "payload_too_large",
      pat,
    );
    assert.doesNotMatch(err.message, /exceeds|permitted/);
    assert.match(err.message, /attachment size limit/);
    assert.equal(posts(jira).at(-1)!.status, 404);
    assert.equal(posts(jira).length, 1, "never retried");
  });
});

Deno.test("an nginx 413 in front of Jira is payload_too_large", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    jira.setMode("proxy_413");
    const file = await makeFile(dir, "big.bin", 8 * MiB);
    const err = await rejectsWith(
      uploadAttachment(https, request({ server, pat }, file)),
      "payload_too_large",
      pat,
    );
    assert.match(err.message, /^a proxy in front of Jira refused the file as too large/);
    assert.equal(posts(jira).length, 1);
  });
});

Deno.test("a connection reset mid-upload is upstream_unavailable and is not retried", async () => {
  await withJira({ failAfterBytes: 256 * 1024 }, async ({ server, jira, pat, dir }) => {
    jira.setMode("reset_mid_upload");
    const file = await makeFile(dir, "big.bin", 16 * MiB);
    const err = await rejectsWith(
      uploadAttachment(https, request({ server, pat }, file)),
      "upstream_unavailable",
      pat,
    );
    assert.match(err.message, /does not retry/);
    assert.equal(posts(jira).length, 1);
    assert.equal(posts(jira)[0].status, 0);
  });
});

Deno.test("a 502 from a proxy mid-upload is upstream_unavailable", async () => {
  await withJira({ failAfterBytes: 128 * 1024 }, async ({ server, jira, pat, dir }) => {
    jira.setMode("bad_gateway_mid_upload");
    const file = await makeFile(dir, "big.bin", 2 * MiB);
    await rejectsWith(
      uploadAttachment(https, request({ server, pat }, file)),
      "upstream_unavailable",
      pat,
    );
    assert.equal(posts(jira).length, 1);
  });
});

Deno.test("no Create Attachments permission, or attachments disabled, is forbidden", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    jira.addIssue({ key: "RO-1", attachers: [] });
    const file = await makeFile(dir, "f.txt", 1000);
    const err = await rejectsWith(
      uploadAttachment(https, request({ server, pat }, file, { issueKey: "RO-1" })),
      "forbidden",
      pat,
    );
    assert.equal(
      err.message,
      "Jira refused the upload: you may lack the Create Attachments permission on this issue, or attachments are disabled",
    );
    jira.setOptions({ attachmentsEnabled: false });
    await rejectsWith(uploadAttachment(https, request({ server, pat }, file)), "forbidden", pat);
  });
});

Deno.test("an upload to a missing or invisible issue is not_found", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    jira.addIssue({ key: "HID-1", browsers: [] });
    const file = await makeFile(dir, "f.txt", 1000);
    for (const key of ["NOPE-9", "HID-1"]) {
      const err = await rejectsWith(
        uploadAttachment(https, request({ server, pat }, file, { issueKey: key })),
        "not_found",
        pat,
      );
      assert.equal(
        err.message,
        `Jira issue ${key} does not exist, or your Jira account may not see it`,
      );
    }
  });
});

Deno.test("a revoked PAT, an SSO gateway and Jira's rate limiter are classified", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    const file = await makeFile(dir, "f.txt", 1000);
    jira.setMode("sso_redirect");
    await rejectsWith(
      uploadAttachment(https, request({ server, pat }, file)),
      "invalid_credentials",
      pat,
    );
    jira.setMode("rate_limited");
    const limited = await rejectsWith(
      uploadAttachment(https, request({ server, pat }, file)),
      "rate_limited",
      pat,
    );
    assert.equal(limited.retryAfter, 2);
    jira.setMode("normal");
    jira.revokePat(pat);
    await rejectsWith(
      uploadAttachment(https, request({ server, pat }, file)),
      "invalid_credentials",
      pat,
    );
  });
});

Deno.test("a Jira certificate the CA does not sign is upstream_unavailable (TLS)", async () => {
  await withJira({ tls: "rogue" }, async ({ server, pat, dir }) => {
    const file = await makeFile(dir, "f.txt", 1000);
    const err = await rejectsWith(
      uploadAttachment(https, request({ server, pat }, file)),
      "upstream_unavailable",
      pat,
    );
    assert.match(err.message, /TLS/);
  });
});

/**
 * Serves `jira` behind a pacer that reads each request body no faster than `pace.bytesPerSecond`
 * (back-pressuring the client like a slow link) and records how the body ended. Loopback TCP and
 * the TLS hop of the test server hold several MiB in flight, which a throttled fake would need
 * half a minute to read before it could see a connection end; the pacer is set to Infinity after
 * the abort so that backlog drains at once.
 */
function pacedJira(jira: FakeJira): {
  jira: FakeJira;
  pace: { bytesPerSecond: number };
  ends: string[];
} {
  const pace = { bytesPerSecond: Infinity };
  const ends: string[] = [];
  const wrapper = {
    fetch(req: Request): Promise<Response> {
      if (!req.body) return jira.fetch(req);
      const source = req.body.getReader();
      const start = performance.now();
      let total = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { done, value } = await source.read();
            if (done) {
              ends.push("complete");
              controller.close();
              return;
            }
            total += value.length;
            controller.enqueue(value);
            while (Number.isFinite(pace.bytesPerSecond)) {
              const due = (total / pace.bytesPerSecond) * 1000 - (performance.now() - start);
              if (due <= 0) break;
              await new Promise((r) => setTimeout(r, Math.min(due, 50)));
            }
          } catch (err) {
            ends.push("connection ended early");
            controller.error(err);
          }
        },
        cancel(reason) {
          return source.cancel(reason);
        },
      }, { highWaterMark: 0 });
      return jira.fetch(new Request(req.url, { method: req.method, headers: req.headers, body }));
    },
  };
  return { jira: wrapper as unknown as FakeJira, pace, ends };
}

Deno.test("aborting the signal during a slow upload rejects within 1 s and ends the connection", async () => {
  const fake = createFakeJira({ uploadLimit: 256 * MiB });
  const paced = pacedJira(fake);
  paced.pace.bytesPerSecond = 256 * 1024;
  await withJira({ jira: paced.jira }, async ({ server, pat, dir }) => {
    fake.addUser({ name: "fred", displayName: "Fred F. User" });
    fake.addPat("fred", pat);
    fake.addIssue({ key: "SUP-1" });
    const file = await makeFile(dir, "slow.bin", 32 * MiB);
    const ctl = new AbortController();
    const reason = new Error("connection revoked");
    const upload = uploadAttachment(https, request({ server, pat }, file, { signal: ctl.signal }));
    await waitFor("the upload to start", () => (posts(fake)[0]?.bodyBytes ?? 0) > 0);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    ctl.abort(reason);
    const err = await upload.then(() => null, (e) => e);
    const elapsed = performance.now() - t0;
    assert.equal(err, reason, "rejects with the signal's reason");
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);

    paced.pace.bytesPerSecond = Infinity;
    await waitFor("the server to see the connection end", () => paced.ends.length === 1);
    assert.deepEqual(paced.ends, ["connection ended early"]);
    const rec = posts(fake)[0];
    await waitFor("the fake to record the abort", () => rec.status !== 0);
    assert.equal(rec.status, 400);
    assert.ok(
      rec.violations.some((v) => v.startsWith("body aborted after")),
      rec.violations.join(),
    );
    assert.ok(rec.bodyBytes! < rec.contentLength! / 2, `${rec.bodyBytes} bytes arrived`);
    assert.equal(fake.issue("SUP-1")!.attachments.length, 0);
  });
});

Deno.test("an already-aborted signal sends nothing", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    const file = await makeFile(dir, "f.txt", 10);
    const ctl = new AbortController();
    ctl.abort(new Error("revoked"));
    await assert.rejects(
      uploadAttachment(https, request({ server, pat }, file, { signal: ctl.signal })),
      /revoked/,
    );
    assert.equal(jira.requests.length, 0);
  });
});

/** A Jira that accepts connections but neither reads bodies nor answers until released. */
function stalledJira(readBody: boolean): { jira: FakeJira; release(): void } {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const wrapper = {
    async fetch(req: Request): Promise<Response> {
      if (readBody) { for await (const _ of req.body ?? []) { /* drain */ } }
      await released;
      await req.body?.cancel().catch(() => {});
      return new Response("late", { status: 500 });
    },
  };
  return { jira: wrapper as unknown as FakeJira, release };
}

Deno.test("the idle timeout stops an upload Jira stops reading", async () => {
  const stalled = stalledJira(false);
  await withJira({ jira: stalled.jira }, async ({ server, pat, dir }) => {
    try {
      const file = await makeFile(dir, "stuck.bin", 64 * MiB);
      const t0 = performance.now();
      const err = await rejectsWith(
        uploadAttachment(https, request({ server, pat }, file, { idleTimeoutMs: 700 })),
        "upstream_unavailable",
        pat,
      );
      assert.match(err.message, /JIRA_TIMEOUT_SECONDS/);
      assert.ok(performance.now() - t0 < 10_000);
    } finally {
      stalled.release();
    }
  });
});

Deno.test("the idle timeout stops an upload Jira never answers", async () => {
  const stalled = stalledJira(true);
  await withJira({ jira: stalled.jira }, async ({ server, pat, dir }) => {
    try {
      const file = await makeFile(dir, "small.bin", 100_000);
      const t0 = performance.now();
      const err = await rejectsWith(
        uploadAttachment(https, request({ server, pat }, file, { idleTimeoutMs: 500 })),
        "upstream_unavailable",
        pat,
      );
      assert.match(err.message, /no answer/);
      assert.ok(performance.now() - t0 >= 450);
    } finally {
      stalled.release();
    }
  });
});

Deno.test("a file that is missing, a directory, or not the size measured is artifact_invalid", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    const file = await makeFile(dir, "f.bin", 1000);
    for (
      const bad of [
        { ...file, path: `${dir}/missing.bin` },
        { ...file, path: dir },
        { ...file, size: 999 },
        { ...file, size: 1001 },
      ]
    ) {
      await rejectsWith(
        uploadAttachment(https, request({ server, pat }, bad)),
        "artifact_invalid",
        pat,
      );
      await rejectsWith(
        uploadAttachment(inProcessUploader((r) => jira.fetch(r)), request({ server, pat }, bad)),
        "artifact_invalid",
        pat,
      );
    }
    assert.equal(jira.requests.length, 0, "nothing was sent");
  });
});

Deno.test("a malformed issue key, plain-HTTP base URL or malformed PAT sends nothing", async () => {
  await withJira({}, async ({ server, jira, pat, dir }) => {
    const file = await makeFile(dir, "f.bin", 10);
    await rejectsWith(
      uploadAttachment(https, request({ server, pat }, file, { issueKey: "SUP-1/../../x" })),
      "invalid_input",
      pat,
    );
    await rejectsWith(
      uploadAttachment(
        https,
        request({ server, pat }, file, { baseUrl: server.url.replace("https:", "http:") }),
      ),
      "invalid_input",
      pat,
    );
    const err = await rejectsWith(
      uploadAttachment(https, request({ server, pat: `${pat}\r\nX-Evil: 1` }, file)),
      "invalid_credentials",
      pat,
    );
    assert.doesNotMatch(err.message, /X-Evil/);
    assert.equal(jira.requests.length, 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Mock mode: the in-process uploader against the fake's handler directly

Deno.test("inProcessUploader streams to createFakeJira().fetch with the same headers and length", async () => {
  const jira = createFakeJira({ uploadLimit: 64 * MiB });
  const pat = makeDcPat();
  jira.addUser({ name: "fred", displayName: "Fred F. User" });
  jira.addPat("fred", pat);
  jira.addIssue({ key: "SUP-1" });
  await withTempDir(async (dir) => {
    const file = await makeFile(dir, "report.log", 5 * MiB + 17);
    const progress: number[] = [];
    const stored = await uploadAttachment(
      inProcessUploader((r) => jira.fetch(r)),
      request({ pat }, file, { filename: "répört.log", onProgress: (s) => progress.push(s) }),
    );
    assert.equal(stored[0].size, file.size);
    assert.equal(stored[0].filename, "répört.log");
    assert.equal(stored[0].mime_type, "text/plain");
    const rec = posts(jira).at(-1)!;
    assert.equal(rec.fileSha256, file.sha256);
    assert.equal(rec.contentLength, rec.bodyBytes);
    assert.ok(rec.bodyChunks! > 1, "streamed in pieces");
    assert.deepEqual(rec.violations, []);
    assert.equal(rec.headers.authorization, `Bearer ${pat}`);
    assert.equal(rec.headers["x-atlassian-token"], "no-check");
    assert.equal(rec.headers["user-agent"], USER_AGENT);
    assert.equal(progress.at(-1), file.size);
  });
});

Deno.test("inProcessUploader: abort, reset, proxy 413, oversize, and idle are classified", async () => {
  const jira = createFakeJira({ uploadLimit: 1 * MiB, failAfterBytes: 64 * 1024 });
  const pat = makeDcPat();
  jira.addUser({ name: "fred", displayName: "Fred F. User" });
  jira.addPat("fred", pat);
  jira.addIssue({ key: "SUP-1" });
  const uploader = inProcessUploader((r) => jira.fetch(r));
  await withTempDir(async (dir) => {
    const file = await makeFile(dir, "big.bin", 3 * MiB);
    await rejectsWith(uploadAttachment(uploader, request({ pat }, file)), "payload_too_large", pat);

    jira.setMode("proxy_413");
    await rejectsWith(uploadAttachment(uploader, request({ pat }, file)), "payload_too_large", pat);

    jira.setMode("reset_mid_upload");
    await rejectsWith(
      uploadAttachment(uploader, request({ pat }, file)),
      "upstream_unavailable",
      pat,
    );

    jira.setMode("normal");
    jira.setOptions({ uploadLimit: 64 * MiB, uploadBytesPerSecond: 256 * 1024 });
    const ctl = new AbortController();
    const reason = new Error("revoked in flight");
    const upload = uploadAttachment(uploader, request({ pat }, file, { signal: ctl.signal }));
    setTimeout(() => ctl.abort(reason), 200);
    const t0 = performance.now();
    assert.equal(await upload.then(() => null, (e) => e), reason);
    assert.ok(performance.now() - t0 < 1000);
    await waitFor("the fake to record the abort", () => posts(jira).at(-1)!.status !== 0);
    assert.ok(posts(jira).at(-1)!.violations.some((v) => v.startsWith("body aborted")));

    const stuck = inProcessUploader(() => new Promise<Response>(() => {}));
    await rejectsWith(
      uploadAttachment(stuck, request({ pat }, file, { idleTimeoutMs: 200 })),
      "upstream_unavailable",
      pat,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Classifying answers: uploadAttachment() with a canned uploader

function canned(status: number, body: string, headers: Record<string, string> = {}): Uploader {
  return () =>
    Promise.resolve<UploadResponse>({
      status,
      headers: new Headers({ "X-AUSERNAME": "fred", ...headers }),
      body: new Response(body).body,
    });
}

const JSON_TYPE = { "Content-Type": "application/json;charset=UTF-8" };
const bean = (size: number) => ({
  self: "https://elsewhere.example/rest/api/2/attachment/10400",
  id: "10400",
  filename: "f.bin",
  size,
  mimeType: "application/octet-stream",
  created: "2024-01-01T12:00:00.000+0100",
  author: { name: "fred", displayName: "Fred" },
  content: "https://elsewhere.example/secure/attachment/10400/f.bin",
});

Deno.test("uploadAttachment() checks that Jira stored every byte", async () => {
  const pat = makeDcPat();
  await withTempDir(async (dir) => {
    const file = await makeFile(dir, "f.bin", 10);
    const err = await rejectsWith(
      uploadAttachment(canned(200, JSON.stringify([bean(5)]), JSON_TYPE), request({ pat }, file)),
      "upstream_unavailable",
      pat,
    );
    assert.match(err.message, /^Jira stored 5 bytes of 10/);
    const ok = await uploadAttachment(
      canned(200, JSON.stringify([bean(10)]), JSON_TYPE),
      request({ pat }, file),
    );
    assert.deepEqual(ok, [{
      id: "10400",
      filename: "f.bin",
      size: 10,
      mime_type: "application/octet-stream",
      created: "2024-01-01T11:00:00.000Z",
      author: "Fred",
    }]);
    // The spec's single object (not what live Jira sends) is accepted too.
    const single = await uploadAttachment(
      canned(200, JSON.stringify(bean(10)), JSON_TYPE),
      request({ pat }, file),
    );
    assert.equal(single.length, 1);
  });
});

Deno.test("uploadAttachment() classifies answers by status, headers and content type", async () => {
  const pat = makeDcPat();
  const cases: Array<[Uploader, string]> = [
    [canned(200, "<html>login</html>", { "Content-Type": "text/html" }), "invalid_credentials"],
    [canned(200, "[]", { ...JSON_TYPE, "X-AUSERNAME": "anonymous" }), "invalid_credentials"],
    [canned(200, "[]", JSON_TYPE), "upstream_unavailable"],
    [canned(200, "{not json", JSON_TYPE), "upstream_unavailable"],
    [canned(302, "", { Location: "https://idp.example/sso" }), "invalid_credentials"],
    [canned(401, "<html>401</html>", { "Content-Type": "text/html" }), "invalid_credentials"],
    [canned(403, "XSRF check failed", { "Content-Type": "text/plain" }), "forbidden"],
    [
      canned(
        404,
        JSON.stringify({ errorMessages: ["Issue Does Not Exist"], errors: {} }),
        JSON_TYPE,
      ),
      "not_found",
    ],
    [
      canned(
        404,
        JSON.stringify({
          errorMessages: ["The field file exceeds its maximum permitted size of 10485760 bytes."],
          errors: {},
        }),
        JSON_TYPE,
      ),
      "payload_too_large",
    ],
    [
      canned(404, "The field file exceeds its maximum permitted size of 1 bytes.", {
        "Content-Type": "text/plain",
      }),
      "payload_too_large",
    ],
    [canned(413, "<html>413</html>", { "Content-Type": "text/html" }), "payload_too_large"],
    [canned(415, ""), "upstream_unavailable"],
    [canned(429, "<html>429</html>", { "Retry-After": "3" }), "rate_limited"],
    [canned(500, "<html>Oops</html>", { "Content-Type": "text/html" }), "upstream_unavailable"],
    [canned(502, "<html>502</html>", { "Content-Type": "text/html" }), "upstream_unavailable"],
    [() => Promise.reject(new Error(`socket hang up near Bearer ${pat}`)), "upstream_unavailable"],
  ];
  await withTempDir(async (dir) => {
    const file = await makeFile(dir, "f.bin", 10);
    for (const [uploader, code] of cases) {
      await rejectsWith(uploadAttachment(uploader, request({ pat }, file)), code, pat);
    }
  });
});

Deno.test("uploadAttachment() never calls the uploader twice", async () => {
  const pat = makeDcPat();
  let calls = 0;
  const failing: Uploader = () => {
    calls++;
    return Promise.resolve({ status: 503, headers: new Headers(), body: null });
  };
  await withTempDir(async (dir) => {
    const file = await makeFile(dir, "f.bin", 10);
    await rejectsWith(
      uploadAttachment(failing, request({ pat }, file)),
      "upstream_unavailable",
      pat,
    );
    assert.equal(calls, 1);
  });
});
