/**
 * Streams one local file to `POST {base}/rest/api/2/issue/{key}/attachments` as multipart/form-data
 * with an exact Content-Length, and classifies Jira's answer (JIRA_FACTS.md A.5, A.6; DESIGN.md
 * 6a). The file is never read into memory, and an upload is never retried.
 *
 * Why node:https and not fetch (checked on Deno 2.9.6 against the fake Jira over HTTPS, see
 * tests/jira/upload_test.ts): fetch with a ReadableStream body drops a hand-set Content-Length
 * and sends `Transfer-Encoding: chunked` (the fake records contentLength null); node:https keeps
 * the Content-Length we set and writes exactly that many bytes. A proxy in front of Jira can then
 * refuse an oversize file at once instead of cutting the connection mid-stream.
 *
 * Trust: node:https takes `ca` the way Node does, as the whole trust store. With a CA file, the
 * upload trusts exactly that bundle (fetch adds `caCerts` to the default roots instead). Without
 * one, Deno's node:https reads the default store only when NODE_EXTRA_CA_CERTS is set, and that
 * read needs `--allow-sys` and `--allow-env=NODE_USE_SYSTEM_CA`.
 *
 * Security: the PAT goes only into the Authorization header. It is never put into an error
 * message, and it is scrubbed from the log-only `detail` of every error raised here.
 */
import fs from "node:fs";
import https from "node:https";
import { once } from "node:events";
import { z } from "zod";
import { AppError } from "../errors.ts";
import { readJsonOrThrow, USER_AGENT } from "./client.ts";
import { type JiraAuth, toAuth } from "./auth.ts";
import {
  type AttachmentInfo,
  issueNotFoundMessage,
  jiraAttachmentSchema,
  normaliseIssueKey,
} from "./attachments.ts";

export interface UploadRequest {
  baseUrl: string;
  issueKey: string;
  /** The Data Center PAT, or (Cloud) the API token: scrubbed from every error's detail. */
  pat: string;
  /**
   * Cloud (or any non-default route): the auth scheme and REST route; `baseUrl` is then
   * ignored in favour of `auth.apiBase`. Absent: Bearer `pat` on `{baseUrl}/rest/api/2`.
   */
  auth?: JiraAuth;
  filePath: string;
  /** The attachment's name in Jira. */
  filename: string;
  /** Bytes, measured by the caller (lstat); the opened file must still have this size. */
  size: number;
  /** Aborting cancels the upload at once (a connection revoked in flight). */
  signal: AbortSignal;
  /** JIRA_TIMEOUT_SECONDS for uploads: how long nothing may move, not the total time. */
  idleTimeoutMs: number;
  /**
   * File bytes handed to the connection so far (buffers let this run a few MiB ahead of what
   * Jira has received). Called at most every 250 ms, monotone, and last with sentBytes = size.
   */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
  /**
   * Given: the answer describing the stored file, if it quotes the caller's token, is used
   * with it replaced by [redacted] and reported here (the file is in Jira by then, so refusing
   * would only hide that it was stored); absent: such an answer is refused.
   */
  onSecret?: (paths: string[]) => void;
}

export interface UploadResponse {
  status: number;
  headers: Headers;
  body: ReadableStream<Uint8Array> | null;
}

/**
 * Sends the upload and returns Jira's answer unclassified. Network, TLS and idle failures are
 * thrown as upstream_unavailable; an abort throws `signal.reason`.
 */
export type Uploader = (req: UploadRequest) => Promise<UploadResponse>;

/**
 * The file is read into READ_BUFFERS buffers of READ_CHUNK_BYTES, allocated once per upload and
 * reused: a buffer is refilled only after the connection has flushed (write callback) every slice
 * written from it, so at most 2 MiB of file data is in flight. fs.createReadStream, used before,
 * allocates a new buffer for every read; V8 counts those as external memory and collects them only
 * once about 64 MiB have piled up (its external-allocation soft limit). Measured on Deno 2.9.6
 * (2 vCPU, a 1 GiB file to a loopback HTTPS sink that discards the body, the uploader alone,
 * medians of 5): createReadStream grew RSS by 77 MiB, of which 64 MiB external; this ring by
 * 14 MiB (2 MiB external), with ~15% less CPU. Reads of 1 MiB cost less CPU than 256 KiB reads
 * (4 × 256 KiB: 20 MiB growth, +30% CPU); 64 KiB reads halved the throughput. Earlier, with
 * createReadStream and a 256 MiB file, 64 KiB / 1 MiB / 4 MiB chunks gave 721 / 1200 / 1204 MiB/s
 * to a server that discards the body: 4 MiB buys nothing. `deno task bench` re-measures this
 * (BENCHMARKS.md, "Upload memory").
 */
export const READ_CHUNK_BYTES = 1024 * 1024;
const READ_BUFFERS = 2;
/**
 * Reads are written in slices this big, and each slice the connection flushes counts as
 * activity for the idle timeout, so a slow but live link is not taken for a stalled one. Bytes
 * already in socket buffers are invisible to us: on loopback several MiB sit there, on a slow
 * real link the kernel keeps its send buffer small. Slicing did not change throughput measurably.
 */
const WRITE_SLICE_BYTES = 256 * 1024;
const PROGRESS_INTERVAL_MS = 250;
/** One attachment bean is about 1 KiB; anything near this is not Jira's upload answer. */
const MAX_ANSWER_BYTES = 1024 * 1024;
/** Enough of a 404 body to find commons-fileupload's size message (JIRA_FACTS A.5). */
const TOO_LARGE_PREFIX_BYTES = 1024;

const FORBIDDEN_MESSAGE =
  "Jira refused the upload: you may lack the Create Attachments permission on this issue, or attachments are disabled";
const PROXY_TOO_LARGE_MESSAGE =
  "a proxy in front of Jira refused the file as too large: ask the Jira administrator to raise the proxy's upload limit, or attach a smaller file";
const JIRA_TOO_LARGE_MESSAGE =
  "Jira refused the file as larger than its attachment size limit (jira.attachment.size): ask a Jira administrator to raise it, or attach a smaller file";

// ---------------------------------------------------------------------------------------------
// The multipart body

export interface MultipartEnvelope {
  boundary: string;
  /** The Content-Type header of the request. */
  contentType: string;
  /** Everything before the file's bytes. */
  preamble: Uint8Array;
  /** Everything after them. */
  epilogue: Uint8Array;
  /** preamble + size + epilogue: the exact Content-Length. */
  contentLength: number;
}

/** 48 random hex characters after a fixed prefix: 192 bits, valid for RFC 2046. */
export function newBoundary(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return "sosvault-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The part's Content-Type, from the name. Jira keeps it unless it is octet-stream. */
export function partContentType(filename: string): string {
  const lower = filename.toLowerCase();
  if (lower.endsWith(".xz")) return "application/x-xz"; // .tar.xz, the sosreport format
  if (lower.endsWith(".gz") || lower.endsWith(".tgz")) return "application/gzip";
  if (lower.endsWith(".txt") || lower.endsWith(".log")) return "text/plain";
  return "application/octet-stream";
}

/**
 * The name as it goes between the quotes of `filename="…"`: raw UTF-8 (as browsers send it;
 * Jira answers RFC 5987 `filename*` alone with a 500, JIRA_FACTS A.5), control characters
 * (CR and LF included) removed so no header can be injected, `\` and `"` backslash-escaped.
 * Note: commons-fileupload, which Jira uses, honours the escape while parsing but keeps the
 * backslash in the value, so a real Jira would show `a\"b` for a name `a"b`. Plain names, and
 * every sosreport name, are unaffected.
 */
export function quoteFilename(filename: string): string {
  // deno-lint-ignore no-control-regex
  const visible = filename.replace(/[\u0000-\u001f\u007f]/g, "");
  if (visible.trim() === "") {
    throw new AppError("invalid_input", "filename must contain at least one visible character");
  }
  return visible.replace(/[\\"]/g, (c) => `\\${c}`);
}

export function multipartEnvelope(
  filename: string,
  size: number,
  boundary: string = newBoundary(),
): MultipartEnvelope {
  const enc = new TextEncoder();
  const preamble = enc.encode(
    `--${boundary}\r\n` +
      `Content-Disposition: form-data; name="file"; filename="${quoteFilename(filename)}"\r\n` +
      `Content-Type: ${partContentType(filename)}\r\n\r\n`,
  );
  const epilogue = enc.encode(`\r\n--${boundary}--\r\n`);
  return {
    boundary,
    contentType: `multipart/form-data; boundary=${boundary}`,
    preamble,
    epilogue,
    contentLength: preamble.length + size + epilogue.length,
  };
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of both uploaders

interface Prepared {
  url: string;
  envelope: MultipartEnvelope;
  headers: Record<string, string>;
}

function prepare(req: UploadRequest): Prepared {
  const key = normaliseIssueKey(req.issueKey);
  const auth = req.auth ?? toAuth(req.baseUrl, req.pat);
  let base: URL;
  try {
    base = new URL(auth.apiBase);
  } catch {
    throw new AppError("invalid_input", "base_url is not a valid URL");
  }
  // Security: the PAT never travels over plain HTTP.
  if (base.protocol !== "https:") {
    throw new AppError("invalid_input", "base_url must use https");
  }
  // Security: a PAT with a control character or space could split the header.
  if (!/^[\x21-\x7e]+$/.test(req.pat) || !/^[\x21-\x7e]+ [\x21-\x7e]+$/.test(auth.authorization)) {
    throw new AppError(
      "invalid_credentials",
      "the stored personal access token is malformed: create a new token in Jira and reconnect",
    );
  }
  if (!Number.isSafeInteger(req.size) || req.size < 0) {
    throw new AppError("artifact_invalid", "the artifact's size is not a byte count");
  }
  const envelope = multipartEnvelope(req.filename, req.size);
  const url = `${auth.apiBase.replace(/\/+$/, "")}${auth.restPrefix}/issue/${
    encodeURIComponent(key)
  }/attachments`;
  return {
    url,
    envelope,
    headers: {
      "Authorization": auth.authorization,
      // Jira's XSRF filter refuses multipart POSTs without it (JIRA_FACTS A.5).
      "X-Atlassian-Token": "no-check",
      "Accept": "application/json",
      // Non-browser: a Mozilla UA fails the XSRF check even with no-check.
      "User-Agent": USER_AGENT,
      "Content-Type": envelope.contentType,
      "Content-Length": String(envelope.contentLength),
    },
  };
}

interface ProgressReporter {
  report(sent: number): void;
  stop(): void;
}

/**
 * Throttles `onProgress` to one call per 250 ms. A value held back is delivered when its
 * interval ends, so the caller never sits on a stale figure; the final value goes out at once.
 */
function progressReporter(req: UploadRequest): ProgressReporter {
  let lastAt = -Infinity;
  let lastSent = -1;
  let latest = -1;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const emit = () => {
    timer = undefined;
    if (stopped || latest === lastSent) return;
    lastAt = performance.now();
    lastSent = latest;
    try {
      req.onProgress?.(latest, req.size);
    } catch {
      // A failing progress listener must not break the upload.
    }
  };
  return {
    report(sent) {
      if (!req.onProgress || stopped) return;
      latest = sent;
      const final = sent === req.size;
      if (timer !== undefined) {
        if (!final) return;
        clearTimeout(timer);
      }
      const wait = lastAt + PROGRESS_INTERVAL_MS - performance.now();
      if (final || wait <= 0) emit();
      else timer = setTimeout(emit, wait);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** Security: removes the PAT from text bound for the server log. */
function scrub(text: string, pat: string, auth?: JiraAuth): string {
  let out = pat ? text.split(pat).join("[redacted]") : text;
  for (const s of auth?.secrets ?? []) if (s) out = out.split(s).join("[redacted]");
  return out;
}

function idleError(idleTimeoutMs: number): AppError {
  const seconds = Math.max(1, Math.round(idleTimeoutMs / 1000));
  return new AppError(
    "upstream_unavailable",
    `Jira took no upload data and sent no answer for ${seconds} seconds, so the upload was stopped: try again later, or ask the operator to raise JIRA_TIMEOUT_SECONDS`,
  );
}

function fileChangedError(): AppError {
  return new AppError(
    "artifact_invalid",
    "the artifact changed while it was being uploaded (its size differs from the checked size): attach it again once it is complete",
  );
}

const BROKE_DURING_UPLOAD =
  "the connection to Jira broke during the upload, and sosvault does not retry uploads: try again; if it keeps failing, a proxy in front of Jira may limit upload size or duration";
const BROKE_DURING_ANSWER =
  "the connection to Jira broke while it was answering the upload: the file may have been stored, so list the issue's attachments before trying again";

/** A network, TLS or stream failure as the contract's error; the cause text stays in detail. */
function transportError(
  err: unknown,
  req: Pick<UploadRequest, "pat" | "auth">,
  answered: boolean,
): AppError {
  if (err instanceof AppError) return err;
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | undefined;
  const code = typeof e?.code === "string" ? e.code : "";
  const text = scrub(String(e?.message ?? err), req.pat, req.auth);
  const detail = { error: text, code, name: String(e?.name ?? "") };
  if (/CERT|SSL|TLS|HANDSHAKE/i.test(code) || /certificate|tls|handshake/i.test(text)) {
    return new AppError(
      "upstream_unavailable",
      "Jira could not be reached over TLS: check that its certificate is trusted (JIRA_CA_FILE) and valid for the base_url host",
      { detail },
    );
  }
  if (/^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)$/.test(code)) {
    return new AppError(
      "upstream_unavailable",
      "Jira could not be reached (network failure): check base_url and try again later",
      { detail },
    );
  }
  if (e?.name === "NotCapable") {
    // Deno's node:https reads the default CA store when NODE_EXTRA_CA_CERTS is set.
    return new AppError(
      "upstream_unavailable",
      "sosvault could not open a TLS connection to Jira: ask the operator to check the server log",
      {
        detail: {
          ...detail,
          hint: "set JIRA_CA_FILE, or grant --allow-sys and --allow-env=NODE_USE_SYSTEM_CA",
        },
      },
    );
  }
  return new AppError(
    "upstream_unavailable",
    answered ? BROKE_DURING_ANSWER : BROKE_DURING_UPLOAD,
    { detail },
  );
}

function artifactUnreadable(err: unknown): AppError {
  const code = (err as { code?: unknown })?.code;
  return new AppError(
    "artifact_invalid",
    "the artifact cannot be opened for reading (missing, not permitted, or not a regular file)",
    { detail: { code: typeof code === "string" ? code : String((err as Error)?.name ?? "") } },
  );
}

interface Identity {
  dev: number;
  ino: number | null;
  size: number;
  isFile: boolean;
}

/**
 * Security: the opened file must be the regular file the path named when we looked (same
 * device and inode, not a symlink), with the size the caller measured: a swap of the path
 * between the caller's checks and our open is refused instead of uploading another file.
 */
function checkSameFile(before: Identity, after: Identity, size: number): void {
  if (!before.isFile || !after.isFile || before.dev !== after.dev || before.ino !== after.ino) {
    throw new AppError(
      "artifact_invalid",
      "the artifact was replaced while it was being opened: attach it again",
    );
  }
  if (after.size !== size) throw fileChangedError();
}

function nodeCall<T>(fn: (cb: (err: Error | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => err ? reject(err) : resolve(value)));
}

/** Opens `path` with node:fs after the identity check; returns the fd. */
async function openNodeFile(path: string, size: number): Promise<number> {
  let before: fs.Stats;
  let fd: number;
  try {
    before = await nodeCall<fs.Stats>((cb) => fs.lstat(path, cb));
    fd = await nodeCall<number>((cb) => fs.open(path, "r", cb));
  } catch (err) {
    throw artifactUnreadable(err);
  }
  try {
    const after = await nodeCall<fs.Stats>((cb) => fs.fstat(fd, cb));
    checkSameFile(
      { dev: before.dev, ino: before.ino, size: before.size, isFile: before.isFile() },
      { dev: after.dev, ino: after.ino, size: after.size, isFile: after.isFile() },
      size,
    );
    return fd;
  } catch (err) {
    fs.close(fd, () => {});
    throw err instanceof AppError ? err : artifactUnreadable(err);
  }
}

/** Opens `path` with Deno.open after the identity check. */
async function openDenoFile(path: string, size: number): Promise<Deno.FsFile> {
  let before: Deno.FileInfo;
  let file: Deno.FsFile;
  try {
    before = await Deno.lstat(path);
    file = await Deno.open(path, { read: true });
  } catch (err) {
    throw artifactUnreadable(err);
  }
  try {
    const after = await file.stat();
    checkSameFile(
      { dev: before.dev, ino: before.ino, size: before.size, isFile: before.isFile },
      { dev: after.dev, ino: after.ino, size: after.size, isFile: after.isFile },
      size,
    );
    return file;
  } catch (err) {
    file.close();
    throw err instanceof AppError ? err : artifactUnreadable(err);
  }
}

function nodeHeaders(raw: Record<string, string | string[] | undefined>): Headers {
  const h = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      try {
        h.append(name, v);
      } catch {
        // A header value Headers refuses is not one we read.
      }
    }
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// The real uploader: node:https

/** Uploads over HTTPS with node:https; `caPem` is then the whole trust store (see above). */
export function httpsUploader(options: { caPem?: string } = {}): Uploader {
  const ca = options.caPem;
  return async (req) => {
    req.signal.throwIfAborted();
    const prepared = prepare(req);
    const fd = await openNodeFile(req.filePath, req.size);
    if (req.signal.aborted) {
      fs.close(fd, () => {});
      throw req.signal.reason;
    }
    return await sendWithHttps(req, prepared, fd, ca);
  };
}

function sendWithHttps(
  req: UploadRequest,
  { url, envelope, headers }: Prepared,
  fd: number,
  ca: string | undefined,
): Promise<UploadResponse> {
  return new Promise<UploadResponse>((resolve, reject) => {
    const progress = progressReporter(req);
    // Stops the pump: on failure, abort, or an answer that comes before the body is sent.
    const stopPump = new AbortController();
    // Until the pump takes it over (it closes it when it stops), the fd is ours to close.
    let fdOwned = true;
    let request: ReturnType<typeof https.request> | undefined;
    let idle: ReturnType<typeof setTimeout> | undefined;
    let settled = false;
    let done = false;
    let answered = false;
    let bodyController: ReadableStreamDefaultController<Uint8Array> | undefined;

    const cleanup = () => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      progress.stop();
      req.signal.removeEventListener("abort", onAbort);
      stopPump.abort();
      if (fdOwned) fs.close(fd, () => {});
      fdOwned = false;
      // agent:false: the connection is this request's own and ends with it.
      request?.destroy();
    };
    const fail = (err: unknown) => {
      cleanup();
      if (!settled) {
        settled = true;
        reject(err);
      } else {
        try {
          bodyController?.error(err);
        } catch {
          // The answer's body was already closed or cancelled.
        }
      }
    };
    const touch = () => {
      if (done) return;
      clearTimeout(idle);
      idle = setTimeout(() => fail(idleError(req.idleTimeoutMs)), req.idleTimeoutMs);
    };
    const onAbort = () => fail(req.signal.reason);
    req.signal.addEventListener("abort", onAbort, { once: true });

    try {
      request = https.request(url, { method: "POST", headers, ca, agent: false });
    } catch (err) {
      fail(transportError(err, req, false));
      return;
    }
    request.on("error", (err) => fail(transportError(err, req, answered)));
    request.on("response", (res) => {
      if (done) {
        res.destroy();
        return;
      }
      answered = true;
      // Jira (size limit) or a proxy (413) may answer before the body is sent: stop sending.
      stopPump.abort();
      touch();
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          bodyController = controller;
          res.on("data", (chunk: Uint8Array) => {
            touch();
            controller.enqueue(new Uint8Array(chunk));
            if ((controller.desiredSize ?? 1) <= 0) res.pause();
          });
          let ended = false;
          res.on("end", () => {
            ended = true;
            try {
              controller.close();
            } catch {
              // Already cancelled.
            }
            cleanup();
          });
          res.on("error", (err) => fail(transportError(err, req, true)));
          res.on("close", () => {
            if (!ended) fail(transportError(new Error("answer cut short"), req, true));
          });
        },
        pull() {
          res.resume();
        },
        cancel() {
          cleanup();
        },
      });
      settled = true;
      resolve({ status: res.statusCode ?? 0, headers: nodeHeaders(res.headers), body });
    });

    const stopped = new Promise<void>((resolve) => {
      stopPump.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    /**
     * Writes one chunk and waits while the connection's buffer is full. `flushed` settles once
     * the connection has flushed the chunk and every chunk before it (then their memory may be
     * reused); it may never settle if the connection is destroyed, so race it with `stopped`.
     */
    const write = async (chunk: Uint8Array): Promise<{ flushed: Promise<void> }> => {
      let more = true;
      const flushed = new Promise<void>((resolve) => {
        more = request!.write(chunk, (err?: Error | null) => {
          if (!err) touch();
          resolve();
        });
      });
      if (!more) await once(request!, "drain", { signal: stopPump.signal });
      return { flushed };
    };
    const readAt = (buf: Uint8Array, length: number, position: number) =>
      nodeCall<number>((cb) => fs.read(fd, buf, 0, length, position, cb));
    const pump = async () => {
      // The fd is the pump's from here: it is closed when the pump stops, never under a read.
      fdOwned = false;
      try {
        touch();
        await write(envelope.preamble);
        // A file smaller than one buffer needs one buffer of its size.
        const bytes = Math.min(READ_CHUNK_BYTES, req.size);
        const count = req.size > bytes ? READ_BUFFERS : 1;
        const ring = Array.from({ length: count }, () => new Uint8Array(bytes));
        // Per buffer: settles when the connection has flushed the last slice written from it
        // (writes flush in order, so every earlier slice too).
        const released: Promise<void>[] = ring.map(() => Promise.resolve());
        let sent = 0;
        for (let i = 0; sent < req.size; i++) {
          const slot = i % ring.length;
          await Promise.race([released[slot], stopped]);
          if (stopPump.signal.aborted) return;
          const buf = ring[slot];
          let n: number;
          try {
            n = await readAt(buf, Math.min(buf.length, req.size - sent), sent);
          } catch (err) {
            if (stopPump.signal.aborted) return;
            throw artifactUnreadable(err);
          }
          // The file shrank after it was checked: handled below.
          if (n === 0) break;
          for (let at = 0; at < n; at += WRITE_SLICE_BYTES) {
            if (stopPump.signal.aborted) return;
            const slice = buf.subarray(at, Math.min(n, at + WRITE_SLICE_BYTES));
            released[slot] = (await write(slice)).flushed;
            sent += slice.length;
            progress.report(sent);
          }
        }
        if (stopPump.signal.aborted) return;
        // The file shrank after it was checked: the promised Content-Length cannot be met.
        if (sent !== req.size) throw fileChangedError();
        progress.report(sent);
        request!.end(envelope.epilogue);
        touch();
      } finally {
        fs.close(fd, () => {});
      }
    };
    pump().catch((err) => {
      if (stopPump.signal.aborted && !(err instanceof AppError)) return;
      fail(err instanceof AppError ? err : transportError(err, req, answered));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Mock mode: the embedded fake Jira, in process

/**
 * Hands the upload to a web-standard handler (the embedded fake Jira in JIRA_MOCK_MODE) as a
 * Request whose body streams preamble, file and epilogue, with the same headers as on the wire.
 */
export function inProcessUploader(handler: (req: Request) => Promise<Response>): Uploader {
  return async (req) => {
    req.signal.throwIfAborted();
    const { url, envelope, headers } = prepare(req);
    const file = await openDenoFile(req.filePath, req.size);
    const reader = file.readable.getReader();
    const progress = progressReporter(req);
    let idle: ReturnType<typeof setTimeout> | undefined;
    let bodyController: ReadableStreamDefaultController<Uint8Array> | undefined;
    let fail: (err: unknown) => void = () => {};
    let settled = false;
    const touch = () => {
      if (settled) return;
      clearTimeout(idle);
      idle = setTimeout(() => fail(idleError(req.idleTimeoutMs)), req.idleTimeoutMs);
    };

    let phase: "preamble" | "file" | "epilogue" | "closed" = "preamble";
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        bodyController = controller;
      },
      async pull(controller) {
        if (settled || phase === "closed") return;
        touch();
        if (phase === "preamble") {
          phase = "file";
          controller.enqueue(envelope.preamble);
          return;
        }
        if (phase === "file") {
          let next: ReadableStreamReadResult<Uint8Array> = { done: true, value: undefined };
          try {
            if (sent < req.size) next = await reader.read();
          } catch (err) {
            fail(artifactUnreadable(err));
            return;
          }
          if (settled) return;
          if (!next.done) {
            const chunk = next.value.subarray(0, req.size - sent);
            sent += chunk.length;
            progress.report(sent);
            controller.enqueue(chunk);
            return;
          }
          if (sent !== req.size) {
            fail(fileChangedError());
            return;
          }
          progress.report(sent);
          phase = "epilogue";
        }
        if (phase === "epilogue") {
          phase = "closed";
          controller.enqueue(envelope.epilogue);
          controller.close();
        }
      },
      cancel() {
        phase = "closed";
      },
    }, { highWaterMark: 0 });

    try {
      return await new Promise<UploadResponse>((resolve, reject) => {
        fail = (err) => {
          try {
            bodyController?.error(err);
          } catch {
            // The body was already closed.
          }
          reject(err);
        };
        const onAbort = () => fail(req.signal.reason);
        req.signal.addEventListener("abort", onAbort, { once: true });
        touch();
        handler(new Request(url, { method: "POST", headers, body })).then((res) => {
          if (res.type === "error") {
            // The fake dropping the connection (Response.error()).
            reject(transportError(new Error("connection dropped"), req, false));
          } else {
            resolve({ status: res.status, headers: res.headers, body: res.body });
          }
        }, (err) => reject(transportError(err, req, false))).finally(() => {
          req.signal.removeEventListener("abort", onAbort);
        });
      });
    } finally {
      settled = true;
      clearTimeout(idle);
      progress.stop();
      // Closes the file whether or not the handler read the body to the end.
      await reader.cancel().catch(() => {});
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Classifying Jira's answer

const uploadAnswerSchema = z.union([
  z.array(jiraAttachmentSchema),
  // Atlassian's DC OpenAPI types the answer as one object; live Jira sends an array.
  jiraAttachmentSchema.transform((a) => [a]),
]);

async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  cap: number,
): Promise<Uint8Array<ArrayBuffer>> {
  if (!body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > cap) {
        await reader.cancel().catch(() => {});
        throw new AppError(
          "upstream_unavailable",
          "Jira answered the upload with an unexpectedly large body: list the issue's attachments to see whether the file was stored",
        );
      }
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Up to `max` bytes of a body as text, then the rest is dropped; "" if reading fails. */
async function readPrefix(body: ReadableStream<Uint8Array> | null, max: number): Promise<string> {
  if (!body) return "";
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < max) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value.subarray(0, max - total));
      total += Math.min(value.length, max - total);
    }
  } catch {
    // An unreadable error body is classified by its status alone.
  } finally {
    await reader.cancel().catch(() => {});
  }
  const dec = new TextDecoder();
  return parts.map((p) => dec.decode(p, { stream: true })).join("");
}

async function classify(res: UploadResponse, req: UploadRequest, key: string) {
  const { status, headers } = res;
  if (status < 200 || status > 599) {
    await res.body?.cancel().catch(() => {});
    throw new AppError("upstream_unavailable", `Jira answered the upload with HTTP ${status}`);
  }
  if (status >= 200 && status < 300) {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await readCapped(res.body, MAX_ANSWER_BYTES);
    } catch (err) {
      if (req.signal.aborted) throw req.signal.reason;
      throw transportError(err, req, true);
    }
    const nullBody = status === 204 || status === 205;
    // The content type and X-AUSERNAME checks (an SSO page or an anonymous answer) live there.
    const json = await readJsonOrThrow(
      new Response(nullBody ? null : bytes, { status, headers }),
      { onSecret: req.onSecret },
      req.auth,
    );
    const parsed = uploadAnswerSchema.safeParse(json);
    if (!parsed.success || parsed.data.length === 0) {
      throw new AppError(
        "upstream_unavailable",
        "Jira accepted the upload but did not describe the stored attachment: list the issue's attachments before trying again",
      );
    }
    for (const a of parsed.data) {
      // A runbook check: what Jira stored must be the whole file (JIRA_FACTS A.5).
      if (a.size !== req.size) {
        throw new AppError(
          "upstream_unavailable",
          `Jira stored ${a.size} bytes of ${req.size}: the attachment (id ${a.id}) is incomplete; delete it and attach the file again`,
        );
      }
    }
    return parsed.data;
  }
  if (status === 404) {
    // Security: the prefix is only tested, never copied into a message.
    const prefix = await readPrefix(res.body, TOO_LARGE_PREFIX_BYTES);
    if (/exceeds its maximum permitted size/i.test(prefix)) {
      throw new AppError("payload_too_large", JIRA_TOO_LARGE_MESSAGE);
    }
    throw new AppError("not_found", issueNotFoundMessage(key));
  }
  if (status === 413) {
    await res.body?.cancel().catch(() => {});
    throw new AppError("payload_too_large", PROXY_TOO_LARGE_MESSAGE);
  }
  // Every other status throws there: 401, 403, 429, 3xx, 5xx.
  await readJsonOrThrow(new Response(res.body, { status, headers }), {
    forbidden: FORBIDDEN_MESSAGE,
    notFound: issueNotFoundMessage(key),
    scope: "write:jira-work",
  }, req.auth);
  throw new AppError("upstream_unavailable", `Jira answered the upload with HTTP ${status}`);
}

/**
 * Uploads one file and returns what Jira stored. Never retries: a retry after an unclear
 * failure could store the file twice, and it resends gigabytes.
 */
export async function uploadAttachment(
  uploader: Uploader,
  req: UploadRequest,
): Promise<AttachmentInfo[]> {
  const key = normaliseIssueKey(req.issueKey);
  req.signal.throwIfAborted();
  let res: UploadResponse;
  try {
    res = await uploader(req);
  } catch (err) {
    if (req.signal.aborted) throw req.signal.reason;
    throw transportError(err, req, false);
  }
  try {
    return await classify(res, req, key);
  } catch (err) {
    if (req.signal.aborted) throw req.signal.reason;
    if (err instanceof AppError) throw err;
    throw transportError(err, req, true);
  }
}
