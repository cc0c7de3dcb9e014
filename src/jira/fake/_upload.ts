// Reads a multipart upload as it arrives: hashes and counts each part, never buffering the body.

import { createHash, type Hash } from "node:crypto";
import { MultipartError, MultipartParser, parseHeaderParams } from "./_multipart.ts";
import type { RecordedFilePart, RecordedRequest } from "./_types.ts";

export type UploadResult =
  | { kind: "ok"; files: RecordedFilePart[] }
  /** commons-fileupload's per-part size limit was hit; reading stopped there. */
  | { kind: "too_large"; field: string; limit: number }
  /** A `file` part had no plain `filename`: Jira's NPE, answered with its 500 page. */
  | { kind: "no_filename" }
  | { kind: "malformed"; message: string }
  /** The client went away mid-body. */
  | { kind: "aborted" };

export interface UploadLimits {
  uploadLimit: number;
  bytesPerSecond?: number;
}

interface OpenPart {
  record: RecordedFilePart;
  hash: Hash;
}

/** Parses `body`, filling the upload fields of `rec` as it goes. */
export async function readUpload(
  body: ReadableStream<Uint8Array> | null,
  boundary: string,
  limits: UploadLimits,
  rec: RecordedRequest,
): Promise<UploadResult> {
  let parser: MultipartParser;
  try {
    parser = new MultipartParser(boundary);
  } catch (e) {
    return { kind: "malformed", message: (e as Error).message };
  }
  rec.bodyBytes = 0;
  rec.bodyChunks = 0;
  rec.files = [];
  const parts: RecordedFilePart[] = rec.files;
  let open: OpenPart | undefined;
  let missingFilename = false;
  const throttle = throttler(limits.bytesPerSecond);
  const reader = body?.getReader();
  try {
    while (reader) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        rec.violations.push(`body aborted after ${rec.bodyBytes} bytes`);
        return { kind: "aborted" };
      }
      if (chunk.done) break;
      rec.bodyBytes += chunk.value.length;
      rec.bodyChunks++;
      let events;
      try {
        events = parser.push(chunk.value);
      } catch (e) {
        return { kind: "malformed", message: (e as Error).message };
      } finally {
        rec.maxHeldBytes = parser.maxHeldBytes;
      }
      for (const ev of events) {
        if (ev.type === "part") {
          open = startPart(ev.headers, rec);
          parts.push(open.record);
          if (open.record.partName === "file" && open.record.filename === undefined) {
            missingFilename = true;
          }
        } else if (ev.type === "data" && open) {
          open.record.bytes += ev.bytes.length;
          if (open.record.bytes > limits.uploadLimit) {
            await reader.cancel().catch(() => {});
            return { kind: "too_large", field: open.record.partName, limit: limits.uploadLimit };
          }
          open.hash.update(ev.bytes);
        } else if (ev.type === "part_end" && open) {
          open.record.sha256 = open.hash.digest("hex");
          open = undefined;
        }
      }
      await throttle(rec.bodyBytes);
    }
  } finally {
    reader?.releaseLock();
    summarise(rec);
  }
  try {
    parser.finish();
  } catch (e) {
    if (e instanceof MultipartError) return { kind: "malformed", message: e.message };
    throw e;
  }
  if (rec.contentLength != null && rec.contentLength !== rec.bodyBytes) {
    rec.violations.push("content-length mismatch");
  }
  if (missingFilename) return { kind: "no_filename" };
  const files = parts.filter((p) => p.partName === "file");
  if (files.length === 0) rec.violations.push("no part named file");
  return { kind: "ok", files };
}

function startPart(headers: Map<string, string>, rec: RecordedRequest): OpenPart {
  const { params } = parseHeaderParams(headers.get("content-disposition") ?? "");
  const partName = params.get("name") ?? "";
  const filename = params.get("filename");
  const record: RecordedFilePart = { partName, bytes: 0, sha256: "" };
  if (filename !== undefined) record.filename = filename;
  const contentType = headers.get("content-type");
  if (contentType) record.contentType = contentType;
  if (partName !== "file") rec.violations.push(`part name ${JSON.stringify(partName)} is not file`);
  if (filename === undefined) {
    // Jira 7 answered RFC 5987-only names with a 500 (pycontribs/jira#223).
    rec.violations.push(params.has("filename*") ? "filename* only" : "no filename");
  }
  return { record, hash: createHash("sha256") };
}

function summarise(rec: RecordedRequest): void {
  const parts = rec.files ?? [];
  if (parts[0]) rec.partName = parts[0].partName;
  const file = parts.find((p) => p.partName === "file") ?? parts[0];
  if (!file) return;
  if (file.filename !== undefined) rec.filename = file.filename;
  rec.fileBytes = file.bytes;
  if (file.sha256) rec.fileSha256 = file.sha256;
}

/** Sleeps so that reading never runs ahead of `bytesPerSecond`; TCP then slows the client. */
function throttler(bytesPerSecond: number | undefined): (total: number) => Promise<void> {
  const start = performance.now();
  return async (total) => {
    if (!bytesPerSecond || bytesPerSecond <= 0) return;
    const due = (total / bytesPerSecond) * 1000 - (performance.now() - start);
    if (due > 0) await new Promise((r) => setTimeout(r, due));
  };
}

/** Reads up to `limit` bytes of a body and stops: a proxy giving up mid-upload. */
export async function readSome(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<number> {
  if (!body) return 0;
  const reader = body.getReader();
  let total = 0;
  try {
    while (total < limit) {
      const chunk = await reader.read();
      if (chunk.done) break;
      total += chunk.value.length;
    }
  } catch {
    // The client gave up first; what was read still counts.
  } finally {
    reader.releaseLock();
  }
  return total;
}
