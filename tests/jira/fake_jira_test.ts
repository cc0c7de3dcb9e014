// Drives the fake Jira over real loopback HTTPS and proves it behaves as JIRA_FACTS.md says.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import https from "node:https";
import {
  createFakeJira,
  type FakeJira,
  isDataCenterPatShape,
  mockModeJira,
  type RecordedRequest,
} from "../../src/jira/fake/mod.ts";
import { MultipartParser } from "../../src/jira/fake/_multipart.ts";
import {
  type RunningFakeJira,
  startFakeJira,
  type StartFakeJiraOptions,
  testCaPem,
} from "../helpers/fake_jira_server.ts";

const enc = new TextEncoder();
const CA = await testCaPem();
const UA = "sosvault-test/1.0";

/** A Data Center-shaped PAT: base64 of "<digits>:<20 bytes>". */
function dcPat(id: string, fill: string): string {
  return btoa(`${id}:${fill.repeat(33 - id.length - 1).slice(0, 33 - id.length - 1)}`);
}
const FRED_PAT = dcPat("102938475610", "f");
const WILMA_PAT = dcPat("564738291045", "w");

interface Env {
  server: RunningFakeJira;
  jira: FakeJira;
  client: Deno.HttpClient;
  /** GET/POST relative to the REST root with Bearer auth, no redirects followed. */
  call(path: string, init?: RequestInit & { pat?: string | null }): Promise<Response>;
}

/** Starts a fake with users fred and wilma, runs `fn`, and always cleans up. */
async function withJira(
  options: StartFakeJiraOptions,
  fn: (env: Env) => Promise<void>,
): Promise<void> {
  const server = await startFakeJira(options);
  const { jira } = server;
  if (!options.acceptAnyDcPat) {
    jira.addUser({ name: "fred", displayName: "Fred F. User", key: "JIRAUSER10100" });
    jira.addUser({ name: "wilma", displayName: "Wilma Flintstone" });
    jira.addPat("fred", FRED_PAT);
    jira.addPat("wilma", WILMA_PAT);
  }
  const client = Deno.createHttpClient({ caCerts: [CA] });
  const call: Env["call"] = (path, init = {}) => {
    const { pat = FRED_PAT, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (pat !== null && !headers.has("authorization")) {
      headers.set("Authorization", `Bearer ${pat}`);
    }
    if (!headers.has("user-agent")) headers.set("User-Agent", UA);
    const url = path.startsWith("https://") ? path : `${server.url}/rest/api/2${path}`;
    return fetch(url, { ...rest, headers, client, redirect: "manual" });
  };
  try {
    await fn({ server, jira, client, call });
  } finally {
    client.close();
    await server.close();
  }
}

function last(jira: FakeJira): RecordedRequest {
  const r = jira.requests.at(-1);
  assert.ok(r, "the fake recorded no request");
  return r;
}

interface Part {
  name: string;
  filename?: string;
  /** Raw Content-Disposition parameters appended as-is, e.g. `filename*=utf-8''x`. */
  extra?: string;
  contentType?: string;
  data: Uint8Array | string;
}

const BOUNDARY = "----sosvaultTestBoundary7MA4YWxkTrZu0gW";

/** A multipart body built by hand, so tests control every byte (raw UTF-8 names included). */
function multipart(parts: Part[], boundary = BOUNDARY): Uint8Array<ArrayBuffer> {
  const chunks: Uint8Array[] = [];
  for (const p of parts) {
    let disposition = `form-data; name="${p.name}"`;
    if (p.filename !== undefined) disposition += `; filename="${p.filename}"`;
    if (p.extra) disposition += `; ${p.extra}`;
    let head = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n`;
    if (p.contentType) head += `Content-Type: ${p.contentType}\r\n`;
    chunks.push(enc.encode(`${head}\r\n`));
    chunks.push(typeof p.data === "string" ? enc.encode(p.data) : p.data);
    chunks.push(enc.encode("\r\n"));
  }
  chunks.push(enc.encode(`--${boundary}--\r\n`));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function uploadInit(body: BodyInit, extra: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    body,
    headers: {
      "X-Atlassian-Token": "no-check",
      "Content-Type": `multipart/form-data; boundary=${BOUNDARY}`,
      ...extra,
    },
  };
}

function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Deterministic pseudo-random bytes (xorshift32), so big uploads need no files. */
function seededChunks(seed: number, total: number, chunkSize = 256 * 1024) {
  let state = seed >>> 0 || 1;
  let produced = 0;
  return {
    next(): Uint8Array | undefined {
      if (produced >= total) return undefined;
      const n = Math.min(chunkSize, total - produced);
      const chunk = new Uint8Array(n);
      const words = new Uint32Array(chunk.buffer, 0, n >>> 2);
      for (let i = 0; i < words.length; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        words[i] = state >>> 0;
      }
      produced += n;
      return chunk;
    },
  };
}

/**
 * Streams a generated file with node:https, which (unlike fetch with a stream body) keeps an
 * exact Content-Length.
 */
function nodeUpload(
  url: string,
  fileSize: number,
  seed: number,
): Promise<{ status: number; body: string; sha256: string; contentLength: number }> {
  const head = enc.encode(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n` +
      `Content-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = enc.encode(`\r\n--${BOUNDARY}--\r\n`);
  const contentLength = head.length + fileSize + tail.length;
  const hash = createHash("sha256");
  const gen = seededChunks(seed, fileSize);
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: "POST",
      ca: CA,
      agent: false,
      headers: {
        "Authorization": `Bearer ${FRED_PAT}`,
        "User-Agent": UA,
        "X-Atlassian-Token": "no-check",
        "Content-Type": `multipart/form-data; boundary=${BOUNDARY}`,
        "Content-Length": String(contentLength),
      },
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => body += d);
      res.on(
        "end",
        () =>
          resolve({ status: res.statusCode ?? 0, body, sha256: hash.digest("hex"), contentLength }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.write(head);
    const pump = () => {
      for (let chunk = gen.next(); chunk; chunk = gen.next()) {
        hash.update(chunk);
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
      req.end(tail);
    };
    pump();
  });
}

// ---------------------------------------------------------------------------------------------
// Authentication and /myself

Deno.test("fake Jira answers /myself with the UserBean and Jira's headers for a valid PAT", async () => {
  await withJira({}, async ({ call, jira }) => {
    const res = await call("/myself");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json;charset=UTF-8");
    assert.equal(res.headers.get("x-ausername"), "fred");
    assert.equal(res.headers.get("x-seraph-loginreason"), "OK");
    assert.match(res.headers.get("x-arequestid") ?? "", /^\d+x\d+x1$/);
    assert.ok(res.headers.get("x-asen"));
    assert.equal(res.headers.get("cache-control"), "no-cache, no-store, no-transform");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.match(res.headers.getSetCookie().join("\n"), /atlassian\.xsrf\.token=[^;]+_lin;/);
    const body = await res.json();
    assert.equal(body.name, "fred");
    assert.equal(body.key, "JIRAUSER10100");
    assert.equal(body.displayName, "Fred F. User");
    assert.equal(body.active, true);
    assert.equal(body.accountId, undefined);
    assert.ok(body.self.endsWith("/rest/api/2/user?username=fred"));
    assert.deepEqual(Object.keys(body.avatarUrls).sort(), ["16x16", "24x24", "32x32", "48x48"]);
    const rec = last(jira);
    assert.equal(rec.user, "fred");
    assert.equal(rec.status, 200);
    assert.equal(rec.headers.authorization, `Bearer ${FRED_PAT}`);
    assert.deepEqual(rec.violations, []);
  });
});

Deno.test("fake Jira answers /myself with 401 HTML and X-Seraph-LoginReason for a revoked PAT", async () => {
  await withJira({}, async ({ call, jira, server }) => {
    jira.revokePat(FRED_PAT);
    const res = await call("/myself");
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("content-type"), "text/html;charset=UTF-8");
    assert.equal(res.headers.get("x-ausername"), "anonymous");
    assert.equal(res.headers.get("x-seraph-loginreason"), "AUTHENTICATED_FAILED");
    assert.equal(
      res.headers.get("www-authenticate"),
      `OAuth realm="${encodeURIComponent(server.url)}"`,
    );
    assert.match(res.headers.getSetCookie().join("\n"), /atlassian\.xsrf\.token=[^;]+_lout;/);
    assert.match(await res.text(), /<title>Unauthorized \(401\)<\/title>/);
    assert.equal(last(jira).user, undefined);
  });
});

Deno.test("fake Jira answers an unknown PAT with the REST status JSON when configured so", async () => {
  await withJira({ unauthorizedBody: "json" }, async ({ call }) => {
    const res = await call("/myself", { pat: dcPat("999", "x") });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("content-type"), "application/json;charset=UTF-8");
    assert.equal(res.headers.get("x-ausername"), "anonymous");
    assert.equal(res.headers.get("x-seraph-loginreason"), "AUTHENTICATED_FAILED");
    assert.deepEqual(await res.json(), {
      message: "Client must be authenticated to access this resource.",
      "status-code": 401,
    });
  });
});

Deno.test("fake Jira answers a request without credentials with 401 and records the omission", async () => {
  await withJira({}, async ({ call, jira }) => {
    const res = await call("/myself", { pat: null });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("x-ausername"), "anonymous");
    assert.equal(res.headers.get("x-seraph-loginreason"), null);
    assert.ok(res.headers.get("www-authenticate")?.startsWith("OAuth realm="));
    assert.equal((await res.json())["status-code"], 401);
    assert.deepEqual(last(jira).violations, ["missing Authorization"]);
  });
});

Deno.test("fake Jira refuses Basic user:PAT, supporting Bearer only", async () => {
  await withJira({}, async ({ call, jira }) => {
    const res = await call("/myself", {
      headers: { Authorization: `Basic ${btoa(`fred:${FRED_PAT}`)}` },
    });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    assert.ok(last(jira).violations.includes("Authorization is not Bearer"));
  });
});

Deno.test("fake Jira records cookie, Origin and browser User-Agent as client violations", async () => {
  await withJira({}, async ({ call, jira }) => {
    const res = await call("/myself", {
      headers: {
        Cookie: "JSESSIONID=ABC",
        Origin: "https://evil.example",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)",
      },
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    assert.deepEqual(last(jira).violations, ["cookie sent", "origin sent", "browser user-agent"]);
  });
});

Deno.test("fake Jira answers serverInfo anonymously with deploymentType Server", async () => {
  await withJira({}, async ({ call }) => {
    const res = await call("/serverInfo", { pat: null });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.deploymentType, "Server");
  });
});

// ---------------------------------------------------------------------------------------------
// GET issue

Deno.test("fake Jira returns attachments shaped like Jira DC, with URLs on the advertised base", async () => {
  const now = () => new Date("2018-09-20T01:15:01.060Z");
  await withJira(
    { advertisedBaseUrl: "https://jira.example.com/jira/", now },
    async ({ call, jira }) => {
      jira.addIssue({
        key: "ABC-1",
        attachments: [
          { filename: "sosreport-host-2024.tar.xz", size: 97613, author: "fred" },
          { filename: "Prüfbericht ü.txt", size: 12, author: "wilma" },
          { filename: "Prüfbericht ü.txt", size: 13, author: "fred" },
          { filename: "screen.png", size: 5, created: "2020-01-02T03:04:05.006+0530" },
        ],
      });
      jira.addIssue({ key: "ABC-2" });
      const res = await call("/issue/ABC-1?fields=attachment");
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.key, "ABC-1");
      assert.equal(body.id, "10001");
      assert.equal(body.self, "https://jira.example.com/jira/rest/api/2/issue/10001");
      const list = body.fields.attachment;
      assert.equal(list.length, 4);
      const [xz, a, b, png] = list;
      assert.equal(typeof xz.id, "string");
      assert.equal(xz.size, 97613);
      assert.equal(xz.mimeType, "application/x-xz");
      assert.equal(xz.created, "2018-09-19T18:15:01.060-0700");
      assert.equal(xz.author.name, "fred");
      assert.equal(xz.author.key, "JIRAUSER10100");
      assert.equal(xz.thumbnail, undefined);
      assert.equal(
        xz.content,
        `https://jira.example.com/jira/secure/attachment/${xz.id}/sosreport-host-2024.tar.xz`,
      );
      assert.equal(xz.self, `https://jira.example.com/jira/rest/api/2/attachment/${xz.id}`);
      assert.equal(a.filename, b.filename);
      assert.notEqual(a.id, b.id);
      assert.equal(
        a.content,
        `https://jira.example.com/jira/secure/attachment/${a.id}/Pr%C3%BCfbericht%20%C3%BC.txt`,
      );
      assert.equal(png.created, "2020-01-02T03:04:05.006+0530");
      assert.equal(
        png.thumbnail,
        `https://jira.example.com/jira/secure/thumbnail/${png.id}/_thumb_${png.id}.png`,
      );

      const empty = await (await call("/issue/ABC-2?fields=attachment")).json();
      assert.deepEqual(empty.fields, { attachment: [] });
      const summaryOnly = await (await call("/issue/ABC-1?fields=summary")).json();
      assert.equal(summaryOnly.fields.attachment, undefined);
    },
  );
});

Deno.test("fake Jira answers 404 Issue Does Not Exist for a missing or hidden issue", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "SECRET-1", browsers: ["wilma"] });
    for (const key of ["NOPE-1", "SECRET-1", "10001"]) {
      const res = await call(`/issue/${key}?fields=attachment`);
      assert.equal(res.status, 404);
      assert.equal(res.headers.get("content-type"), "application/json;charset=UTF-8");
      assert.deepEqual(await res.json(), { errorMessages: ["Issue Does Not Exist"], errors: {} });
    }
  });
});

Deno.test("fake Jira hides an issue from users without Browse, and shows it to those with it", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "SECRET-1", browsers: ["wilma"] });
    const hidden = await call("/issue/SECRET-1?fields=attachment");
    assert.equal(hidden.status, 404);
    await hidden.body?.cancel();
    const shown = await call("/issue/SECRET-1?fields=attachment", { pat: WILMA_PAT });
    assert.equal(shown.status, 200);
    await shown.body?.cancel();
  });
});

Deno.test("fake Jira answers a moved issue's old key with the canonical key, and by id", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "NEW-7", id: "20007", movedFrom: ["OLD-7"] });
    const moved = await (await call("/issue/OLD-7?fields=attachment")).json();
    assert.equal(moved.key, "NEW-7");
    const byId = await (await call("/issue/20007?fields=attachment")).json();
    assert.equal(byId.key, "NEW-7");
    assert.equal(jira.issue("OLD-7")?.key, "NEW-7");
  });
});

Deno.test("fake Jira springs the anonymous-200 trap on GET issue in anonymous_ok mode", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "PUB-1" });
    jira.revokePat(FRED_PAT);
    jira.setMode("anonymous_ok");
    const res = await call("/issue/PUB-1?fields=attachment");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json;charset=UTF-8");
    assert.equal(res.headers.get("x-ausername"), "anonymous");
    assert.equal(res.headers.get("x-seraph-loginreason"), "AUTHENTICATED_FAILED");
    assert.equal((await res.json()).key, "PUB-1");
    // /myself cannot be reached anonymously, so it still exposes the dead PAT.
    const myself = await call("/myself");
    assert.equal(myself.status, 401);
    await myself.body?.cancel();
  });
});

// ---------------------------------------------------------------------------------------------
// Attachment metadata

Deno.test("fake Jira reports attachment/meta and serves attachment/{id}", async () => {
  await withJira({}, async ({ call, jira }) => {
    assert.deepEqual(await (await call("/attachment/meta")).json(), {
      enabled: true,
      uploadLimit: 10485760,
    });
    jira.setOptions({ attachmentsEnabled: false, uploadLimit: 1000 });
    assert.deepEqual(await (await call("/attachment/meta")).json(), {
      enabled: false,
      uploadLimit: 1000,
    });
    jira.setOptions({ attachmentsEnabled: true });
    jira.addIssue({ key: "ABC-1", attachments: [{ filename: "a.txt", size: 3, author: "fred" }] });
    const id = jira.issue("ABC-1")!.attachments[0].id;
    const one = await call(`/attachment/${id}`);
    assert.equal(one.status, 200);
    const bean = await one.json();
    assert.equal(bean.id, id);
    assert.equal(bean.filename, "a.txt");
    const missing = await call("/attachment/99999");
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });
});

Deno.test("fake Jira deletes an attachment for its author with no-check, and refuses others", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1", attachments: [{ filename: "a.txt", size: 3, author: "fred" }] });
    const id = jira.issue("ABC-1")!.attachments[0].id;
    const xsrf = await call(`/attachment/${id}`, { method: "DELETE" });
    assert.equal(xsrf.status, 403);
    await xsrf.body?.cancel();
    const notAuthor = await call(`/attachment/${id}`, {
      method: "DELETE",
      pat: WILMA_PAT,
      headers: { "X-Atlassian-Token": "no-check" },
    });
    assert.equal(notAuthor.status, 403);
    await notAuthor.body?.cancel();
    const ok = await call(`/attachment/${id}`, {
      method: "DELETE",
      headers: { "X-Atlassian-Token": "no-check" },
    });
    assert.equal(ok.status, 204);
    assert.equal(jira.issue("ABC-1")!.attachments.length, 0);
  });
});

// ---------------------------------------------------------------------------------------------
// POST attachments

Deno.test("fake Jira accepts a multipart upload and answers a JSON array of attachments", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const form = new FormData();
    form.append("file", new Blob(["hello sos\n"], { type: "text/plain" }), "sos.txt");
    const res = await call("/issue/ABC-1/attachments", {
      method: "POST",
      body: form,
      headers: { "X-Atlassian-Token": "no-check" },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json;charset=UTF-8");
    const body = await res.json();
    assert.ok(Array.isArray(body));
    assert.equal(body.length, 1);
    assert.equal(body[0].filename, "sos.txt");
    assert.equal(body[0].size, 10);
    assert.equal(body[0].mimeType, "text/plain");
    assert.equal(body[0].author.name, "fred");
    assert.match(body[0].created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$/);
    const stored = jira.issue("ABC-1")!.attachments;
    assert.equal(stored.length, 1);
    assert.equal(stored[0].sha256, sha256("hello sos\n"));
    const rec = last(jira);
    assert.equal(rec.status, 200);
    assert.equal(rec.partName, "file");
    assert.equal(rec.filename, "sos.txt");
    assert.equal(rec.fileBytes, 10);
    assert.equal(rec.fileSha256, sha256("hello sos\n"));
    assert.equal(rec.bodyBytes, rec.contentLength);
    assert.deepEqual(rec.violations, []);
  });
});

Deno.test("fake Jira keeps duplicate names as new attachments and takes several file parts", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const body = multipart([
      { name: "file", filename: "dup.txt", data: "one" },
      { name: "file", filename: "dup.txt", data: "two!" },
    ]);
    const res = await call("/issue/ABC-1/attachments", uploadInit(body));
    assert.equal(res.status, 200);
    const list = await res.json();
    assert.equal(list.length, 2);
    assert.notEqual(list[0].id, list[1].id);
    assert.deepEqual(list.map((a: { size: number }) => a.size), [3, 4]);
    assert.equal(jira.issue("ABC-1")!.attachments.length, 2);
  });
});

Deno.test("fake Jira accepts a raw UTF-8 filename", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const name = "sosreport-Ünïcødé 報告.tar.xz";
    const res = await call(
      "/issue/ABC-1/attachments",
      uploadInit(multipart([{ name: "file", filename: name, data: "xz" }])),
    );
    assert.equal(res.status, 200);
    const [a] = await res.json();
    assert.equal(a.filename, name);
    assert.equal(a.mimeType, "application/x-xz");
    assert.ok(a.content.endsWith(`/${encodeURIComponent(name)}`));
  });
});

Deno.test("fake Jira refuses an upload without X-Atlassian-Token with 403 XSRF check failed", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const body = multipart([{ name: "file", filename: "a.txt", data: "a" }]);
    const res = await call("/issue/ABC-1/attachments", {
      method: "POST",
      body,
      headers: { "Content-Type": `multipart/form-data; boundary=${BOUNDARY}` },
    });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("content-type"), "text/plain;charset=UTF-8");
    assert.equal(await res.text(), "XSRF check failed");
    assert.ok(last(jira).violations.includes("missing X-Atlassian-Token"));
    assert.equal(jira.issue("ABC-1")!.attachments.length, 0);
  });
});

Deno.test("fake Jira fails the XSRF check for a browser User-Agent even with no-check", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const body = multipart([{ name: "file", filename: "a.txt", data: "a" }]);
    const res = await call(
      "/issue/ABC-1/attachments",
      uploadInit(body, { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0" }),
    );
    assert.equal(res.status, 403);
    assert.equal(await res.text(), "XSRF check failed");
  });
});

Deno.test("fake Jira accepts the deprecated nocheck token but records it", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const body = multipart([{ name: "file", filename: "a.txt", data: "a" }]);
    const res = await call(
      "/issue/ABC-1/attachments",
      uploadInit(body, { "X-Atlassian-Token": "nocheck" }),
    );
    assert.equal(res.status, 200);
    await res.body?.cancel();
    assert.deepEqual(last(jira).violations, ["deprecated X-Atlassian-Token nocheck"]);
  });
});

Deno.test("fake Jira answers 415 to a body that is not multipart/form-data", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const res = await call("/issue/ABC-1/attachments", {
      method: "POST",
      body: JSON.stringify({ file: "x" }),
      headers: { "X-Atlassian-Token": "no-check", "Content-Type": "application/json" },
    });
    assert.equal(res.status, 415);
    await res.body?.cancel();
  });
});

Deno.test("fake Jira refuses uploads in Jira's order: 401, 403 XSRF, 415, 404, 403 permissions", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "RO-1", attachers: ["wilma"] });
    jira.addIssue({ key: "DONE-1", editable: false });
    jira.addIssue({ key: "HID-1", browsers: ["wilma"] });
    const body = () => multipart([{ name: "file", filename: "a.txt", data: "a" }]);
    const expect = async (
      path: string,
      init: RequestInit & { pat?: string | null },
      status: number,
      text?: string,
    ) => {
      const res = await call(path, init);
      assert.equal(res.status, status, `${path} answered ${res.status}`);
      const got = await res.text();
      if (text !== undefined) assert.equal(got, text);
    };
    const noXsrf = { "Content-Type": `multipart/form-data; boundary=${BOUNDARY}` };
    await expect("/issue/NOPE-1/attachments", {
      method: "POST",
      body: body(),
      headers: noXsrf,
      pat: "bad",
    }, 401);
    await expect(
      "/issue/NOPE-1/attachments",
      { method: "POST", body: body(), headers: noXsrf },
      403,
      "XSRF check failed",
    );
    await expect("/issue/NOPE-1/attachments", {
      ...uploadInit("x", { "Content-Type": "text/plain" }),
    }, 415);
    await expect(
      "/issue/NOPE-1/attachments",
      uploadInit(body()),
      404,
      JSON.stringify({ errorMessages: ["Issue Does Not Exist"], errors: {} }),
    );
    await expect("/issue/HID-1/attachments", uploadInit(body()), 404);
    await expect(
      "/issue/RO-1/attachments",
      uploadInit(body()),
      403,
      JSON.stringify({
        errorMessages: ["You do not have permission to create attachments for this issue."],
        errors: {},
      }),
    );
    await expect(
      "/issue/DONE-1/attachments",
      uploadInit(body()),
      403,
      JSON.stringify({
        errorMessages: [
          "You can not create attachments as the issue is in a non-editable workflow state.",
        ],
        errors: {},
      }),
    );
    jira.setOptions({ attachmentsEnabled: false });
    await expect(
      "/issue/RO-1/attachments",
      uploadInit(body()),
      403,
      JSON.stringify({
        errorMessages: ["Attachments have been disabled for this instance of JIRA."],
        errors: {},
      }),
    );
  });
});

Deno.test("fake Jira answers an oversize file with 404 and commons-fileupload's plain text", async () => {
  await withJira({ uploadLimit: 1000 }, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const body = multipart([{ name: "file", filename: "big.bin", data: new Uint8Array(1001) }]);
    const res = await call("/issue/ABC-1/attachments", uploadInit(body));
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("content-type"), "text/plain;charset=UTF-8");
    assert.equal(
      await res.text(),
      "The field file exceeds its maximum permitted size of 1000 bytes.",
    );
    assert.equal(jira.issue("ABC-1")!.attachments.length, 0);
    const exact = multipart([{ name: "file", filename: "ok.bin", data: new Uint8Array(1000) }]);
    const ok = await call("/issue/ABC-1/attachments", uploadInit(exact));
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  });
});

Deno.test("fake Jira stops reading an oversize upload instead of swallowing it", async () => {
  await withJira({ uploadLimit: 64 * 1024 }, async ({ server, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    // 8 MiB against a 64 KiB limit: the answer may race the client's writes, as with Tomcat.
    const result = await nodeUpload(`${server.url}/rest/api/2/issue/ABC-1/attachments`, 8 << 20, 7)
      .catch((e: Error) => ({ status: -1, body: String(e) }));
    if (result.status !== -1) {
      assert.equal(result.status, 404);
      assert.match(result.body, /exceeds its maximum permitted size of 65536 bytes/);
    }
    const rec = last(jira);
    assert.equal(rec.status, 404);
    assert.ok(rec.bodyBytes! < 8 << 20, `read ${rec.bodyBytes} bytes`);
  });
});

Deno.test("fake Jira answers 500 Oops to a file part without filename or with filename* only", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    for (
      const [part, violation] of [
        [{ name: "file", data: "x" }, "no filename"],
        [{ name: "file", extra: "filename*=utf-8''%C3%BC.txt", data: "x" }, "filename* only"],
      ] as const
    ) {
      const res = await call("/issue/ABC-1/attachments", uploadInit(multipart([part])));
      assert.equal(res.status, 500);
      assert.equal(res.headers.get("content-type"), "text/html;charset=UTF-8");
      assert.match(await res.text(), /Oops - an error has occurred/);
      assert.ok(last(jira).violations.includes(violation));
    }
    assert.equal(jira.issue("ABC-1")!.attachments.length, 0);
  });
});

Deno.test("fake Jira ignores parts not named file and records the mistake", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const res = await call(
      "/issue/ABC-1/attachments",
      uploadInit(multipart([{ name: "attachment", filename: "a.txt", data: "a" }])),
    );
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), []);
    assert.deepEqual(last(jira).violations, [
      'part name "attachment" is not file',
      "no part named file",
    ]);
  });
});

Deno.test("fake Jira streams a 64 MiB upload: bytes match Content-Length and SHA-256 matches", async () => {
  await withJira({ uploadLimit: 1 << 30 }, async ({ server, jira }) => {
    jira.addIssue({ key: "BIG-1" });
    const size = 64 * 1024 * 1024;
    const sent = await nodeUpload(`${server.url}/rest/api/2/issue/BIG-1/attachments`, size, 42);
    assert.equal(sent.status, 200, sent.body);
    const [bean] = JSON.parse(sent.body);
    assert.equal(bean.size, size);
    const rec = last(jira);
    assert.equal(rec.contentLength, sent.contentLength);
    assert.equal(rec.bodyBytes, sent.contentLength);
    assert.equal(rec.transferEncoding, null);
    assert.equal(rec.fileBytes, size);
    assert.equal(rec.fileSha256, sent.sha256);
    assert.deepEqual(rec.violations, []);
    // The parser held at most one transport chunk plus a delimiter, never the body.
    assert.ok(rec.maxHeldBytes! < 2 * 1024 * 1024, `held ${rec.maxHeldBytes} bytes`);
    assert.equal(jira.issue("BIG-1")!.attachments[0].sha256, sent.sha256);
  });
});

Deno.test("fake Jira records a chunked upload: no Content-Length, Transfer-Encoding chunked", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const bytes = multipart([{ name: "file", filename: "s.txt", data: "streamed" }]);
    const res = await call("/issue/ABC-1/attachments", uploadInit(ReadableStream.from([bytes])));
    assert.equal(res.status, 200);
    await res.body?.cancel();
    const rec = last(jira);
    assert.equal(rec.contentLength, null);
    assert.equal(rec.transferEncoding, "chunked");
    assert.equal(rec.bodyBytes, bytes.length);
    assert.equal(rec.fileSha256, sha256("streamed"));
  });
});

Deno.test("fake Jira finds a boundary split across network chunks", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const content = "before-the-boundary\r\n--not-a-boundary\r\n".repeat(50);
    const bytes = multipart([{ name: "file", filename: "split.txt", data: content }]);
    const text = new TextDecoder().decode(bytes);
    // Cut inside the closing delimiter ("\r\n--" + half the boundary) and inside the header.
    const cuts = [30, text.lastIndexOf(BOUNDARY) - 1, text.lastIndexOf(BOUNDARY) + 10];
    let from = 0;
    const pieces = [...cuts, bytes.length].map((to) => bytes.slice(from, from = to));
    const stream = new ReadableStream<Uint8Array>({
      async pull(c) {
        const next = pieces.shift();
        if (!next) return c.close();
        // A pause so each piece reaches the server as its own read.
        await new Promise((r) => setTimeout(r, 30));
        c.enqueue(next);
      },
    });
    const res = await call("/issue/ABC-1/attachments", uploadInit(stream));
    assert.equal(res.status, 200);
    const [a] = await res.json();
    assert.equal(a.size, enc.encode(content).length);
    const rec = last(jira);
    assert.equal(rec.fileSha256, sha256(content));
    assert.ok(rec.bodyChunks! >= cuts.length + 1, `${rec.bodyChunks} reads`);
  });
});

Deno.test("multipart parser finds the same parts at every possible chunk split", () => {
  const body = multipart([
    { name: "file", filename: "a.bin", data: "\r\n--\r\n-" + BOUNDARY.slice(0, 10) },
    { name: "file", filename: "b.bin", data: "" },
  ]);
  const expected = ["\r\n--\r\n-" + BOUNDARY.slice(0, 10), ""];
  for (let i = 0; i <= body.length; i++) {
    for (const j of [i, Math.min(body.length, i + 1), Math.min(body.length, i + 37)]) {
      const parser = new MultipartParser(BOUNDARY);
      const got: string[] = [];
      let current = "";
      for (const piece of [body.subarray(0, i), body.subarray(i, j), body.subarray(j)]) {
        for (const ev of parser.push(piece)) {
          if (ev.type === "part") current = "";
          if (ev.type === "data") current += new TextDecoder().decode(ev.bytes);
          if (ev.type === "part_end") got.push(current);
        }
      }
      parser.finish();
      assert.deepEqual(got, expected, `split at ${i}/${j}`);
    }
  }
});

Deno.test("fake Jira throttles a slow upload to uploadBytesPerSecond", async () => {
  await withJira({ uploadBytesPerSecond: 512 * 1024 }, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const body = multipart([{
      name: "file",
      filename: "slow.bin",
      data: new Uint8Array(512 * 1024),
    }]);
    const started = performance.now();
    const res = await call("/issue/ABC-1/attachments", uploadInit(body));
    const elapsed = performance.now() - started;
    assert.equal(res.status, 200);
    await res.body?.cancel();
    assert.ok(elapsed >= 900, `took ${elapsed} ms`);
  });
});

Deno.test("fake Jira delays every response by latencyMs", async () => {
  await withJira({ latencyMs: 300 }, async ({ call }) => {
    const started = performance.now();
    const res = await call("/myself");
    await res.body?.cancel();
    assert.ok(performance.now() - started >= 290);
  });
});

// ---------------------------------------------------------------------------------------------
// Gateways, proxies and failure modes

Deno.test("fake Jira behind an SSO gateway answers 302 to the IdP without Jira headers", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.setMode("sso_redirect");
    const res = await call("/myself");
    assert.equal(res.status, 302);
    await res.body?.cancel();
    assert.match(res.headers.get("location") ?? "", /^https:\/\/idp\.example\/sso\?SAMLRequest=/);
    assert.equal(res.headers.get("x-ausername"), null);
    assert.equal(last(jira).status, 302);
  });
});

Deno.test("fake Jira behind an SSO gateway answers 200 text/html with a SAML auto-post form", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.setMode("sso_saml_form");
    const res = await call("/issue/ABC-1?fields=attachment");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    const html = await res.text();
    assert.match(html, /<form method="POST" action="https:\/\/idp\.example\/[^"]*"/);
    assert.match(html, /name="SAMLRequest"/);
  });
});

Deno.test("fake Jira answers with its 200 login page in login_page mode", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.setMode("login_page");
    const res = await call("/myself");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/html;charset=UTF-8");
    assert.match(await res.text(), /<title>Log in - Jira<\/title>/);
  });
});

Deno.test("fake Jira answers 429 with Tomcat HTML, Retry-After and X-RateLimit headers", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.setMode("rate_limited");
    const res = await call("/myself");
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("content-type"), "text/html;charset=UTF-8");
    assert.equal(res.headers.get("retry-after"), "2");
    assert.equal(res.headers.get("x-ratelimit-limit"), "5");
    assert.equal(res.headers.get("x-ratelimit-remaining"), "0");
    assert.equal(res.headers.get("x-ratelimit-fillrate"), "5");
    assert.equal(res.headers.get("x-ratelimit-interval-seconds"), "1");
    assert.match(await res.text(), /HTTP Status 429 – Too Many Requests/);
  });
});

Deno.test("fake Jira answers 500 Oops in server_error mode and 503 in unavailable mode", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.setMode("server_error");
    const oops = await call("/myself");
    assert.equal(oops.status, 500);
    assert.match(await oops.text(), /Oops - an error has occurred/);
    jira.setMode("unavailable");
    const down = await call("/myself");
    assert.equal(down.status, 503);
    assert.match(await down.text(), /503 Service Temporarily Unavailable/);
  });
});

Deno.test("fake Jira behind nginx answers POSTs with 413 HTML and leaves GETs alone", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    jira.setMode("proxy_413");
    const res = await call(
      "/issue/ABC-1/attachments",
      uploadInit(multipart([{ name: "file", filename: "a.txt", data: "a" }])),
    );
    assert.equal(res.status, 413);
    assert.match(await res.text(), /<title>413 Request Entity Too Large<\/title>/);
    assert.equal(last(jira).bodyBytes, undefined);
    const get = await call("/issue/ABC-1?fields=attachment");
    assert.equal(get.status, 200);
    await get.body?.cancel();
  });
});

Deno.test("fake Jira drops the connection mid-upload in reset_mid_upload mode", async () => {
  await withJira({ failAfterBytes: 256 * 1024 }, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    jira.setMode("reset_mid_upload");
    const body = multipart([{ name: "file", filename: "a.bin", data: new Uint8Array(4 << 20) }]);
    await assert.rejects(call("/issue/ABC-1/attachments", uploadInit(ReadableStream.from([body]))));
    const rec = last(jira);
    assert.equal(rec.status, 0);
    assert.ok(rec.bodyBytes! >= 256 * 1024 && rec.bodyBytes! < body.length);
    assert.equal(jira.issue("ABC-1")!.attachments.length, 0);
  });
});

Deno.test("fake Jira behind nginx answers 502 after failAfterBytes of an upload", async () => {
  await withJira({ failAfterBytes: 1024 }, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    jira.setMode("bad_gateway_mid_upload");
    const body = multipart([{ name: "file", filename: "a.bin", data: new Uint8Array(4096) }]);
    const res = await call("/issue/ABC-1/attachments", uploadInit(body));
    assert.equal(res.status, 502);
    assert.match(await res.text(), /502 Bad Gateway/);
  });
});

// ---------------------------------------------------------------------------------------------
// Paths, context path and TLS

Deno.test("fake Jira serves REST under its context path and 404s outside it", async () => {
  await withJira({ contextPath: "/jira" }, async ({ call, server }) => {
    assert.ok(server.url.endsWith("/jira"));
    const ok = await call("/myself");
    assert.equal(ok.status, 200);
    const me = await ok.json();
    assert.equal(me.self, `${server.url}/rest/api/2/user?username=fred`);
    assert.match(ok.headers.getSetCookie().join("\n"), /Path=\/jira;/);

    const outside = await call(`${server.origin}/rest/api/2/myself`);
    assert.equal(outside.status, 404);
    assert.match(outside.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(outside.headers.get("x-arequestid"), null);
    await outside.body?.cancel();

    const page = await call(`${server.url}/secure/Nothing.jspa`);
    assert.equal(page.status, 404);
    assert.match(await page.text(), /dead link/);

    const rest = await call("/nothing");
    assert.equal(rest.status, 404);
    assert.equal(rest.headers.get("content-type"), "application/json;charset=UTF-8");
    assert.match((await rest.json()).message, /^null for uri: /);
  });
});

Deno.test("fake Jira served with the rogue chain fails TLS verification against the test CA", async () => {
  await withJira({ tls: "rogue" }, async ({ call }) => {
    await assert.rejects(call("/myself"), (e: Error) => {
      assert.match(String(e.cause ?? e), /UnknownIssuer|certificate/);
      return true;
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Mock mode

Deno.test("isDataCenterPatShape() accepts DC PATs and rejects other strings", () => {
  assert.equal(isDataCenterPatShape(FRED_PAT), true);
  assert.equal(isDataCenterPatShape(dcPat("1", "z")), true);
  assert.equal(isDataCenterPatShape(FRED_PAT.slice(1)), false);
  assert.equal(isDataCenterPatShape(btoa("abcdefghijkl:" + "x".repeat(20))), false);
  assert.equal(isDataCenterPatShape(btoa("123456789012345678:" + "x".repeat(14))), false);
  assert.equal(isDataCenterPatShape("ATATT3xFfGF0" + "a".repeat(32)), false);
  assert.equal(isDataCenterPatShape("A".repeat(44)), false);
});

Deno.test("fake Jira in mock mode accepts any DC-shaped PAT and auto-creates issues", async () => {
  await withJira({ jira: mockModeJira() }, async ({ call, jira }) => {
    const pat = dcPat("4242", "m");
    const me = await (await call("/myself", { pat })).json();
    assert.equal(me.name, "mock-4242");
    assert.equal(me.displayName, "Mock User 4242");
    assert.equal((await call("/myself", { pat: "not-a-pat" })).status, 401);

    const meta = await (await call("/attachment/meta", { pat })).json();
    assert.equal(meta.uploadLimit, 1024 * 1024 * 1024);

    const body = () => multipart([{ name: "file", filename: "a.txt", data: "a" }]);
    const demo1 = await call("/issue/DEMO-1/attachments", { ...uploadInit(body()), pat });
    assert.equal(demo1.status, 200);
    await demo1.body?.cancel();
    const demo2 = await call("/issue/DEMO-2/attachments", { ...uploadInit(body()), pat });
    assert.equal(demo2.status, 403);
    await demo2.body?.cancel();
    const seen = await call("/issue/DEMO-2?fields=attachment", { pat });
    assert.equal(seen.status, 200);
    await seen.body?.cancel();
    const fresh = await call("/issue/SOS-17/attachments", { ...uploadInit(body()), pat });
    assert.equal(fresh.status, 200);
    await fresh.body?.cancel();
    assert.equal(jira.issue("SOS-17")?.attachments.length, 1);
    const badKey = await call("/issue/not-a-key?fields=attachment", { pat });
    assert.equal(badKey.status, 404);
    await badKey.body?.cancel();

    // Security: mock mode keeps no PAT in its request log.
    assert.equal(last(jira).headers.authorization, "Bearer [redacted]");
    jira.revokePat(pat);
    const revoked = await call("/myself", { pat });
    assert.equal(revoked.status, 401);
    await revoked.body?.cancel();
  });
});

Deno.test("createFakeJira() with acceptAnyDcPat makes an auto-created DEMO-2 read-only", async () => {
  await withJira({ jira: createFakeJira({ acceptAnyDcPat: true }) }, async ({ call }) => {
    const pat = dcPat("77", "q");
    const body = multipart([{ name: "file", filename: "a.txt", data: "a" }]);
    const res = await call("/issue/DEMO-2/attachments", { ...uploadInit(body), pat });
    assert.equal(res.status, 403);
    await res.body?.cancel();
  });
});

// ---------------------------------------------------------------------------------------------
// Secret boundary

Deno.test("fake Jira never echoes the PAT in any response", async () => {
  await withJira({}, async ({ call, jira }) => {
    jira.addIssue({ key: "ABC-1" });
    const revoked = dcPat("31337", "r");
    const seen: string[] = [];
    const probe = async (res: Response) => {
      seen.push(JSON.stringify([...res.headers]), await res.text());
    };
    for (
      const mode of [
        "normal",
        "sso_redirect",
        "sso_saml_form",
        "login_page",
        "rate_limited",
      ] as const
    ) {
      jira.setMode(mode);
      await probe(await call("/myself"));
      await probe(await call("/myself", { pat: revoked }));
      await probe(await call("/issue/ABC-1?fields=attachment", { pat: revoked }));
      await probe(await call("/nothing", { pat: revoked }));
    }
    jira.setMode("normal");
    await probe(
      await call("/issue/ABC-1/attachments", uploadInit(multipart([{ name: "file", data: "x" }]))),
    );
    for (const text of seen) {
      assert.ok(!text.includes(FRED_PAT) && !text.includes(revoked), "a response echoed a PAT");
    }
  });
});
