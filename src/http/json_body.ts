/**
 * Reads a JSON request body strictly: the right content type, a size cap enforced while
 * reading, valid UTF-8, a JSON object, and a zod schema that rejects unknown fields. Messages
 * name what is wrong but never echo values, since a body may hold a PAT.
 */
import type { Context } from "hono";
import type { z } from "zod";
import { AppError } from "../errors.ts";

export const MAX_JSON_BODY = 64 * 1024;
const decoder = new TextDecoder("utf-8", { fatal: true });

export async function readJsonBody<S extends z.ZodType>(
  c: Context,
  schema: S,
): Promise<z.infer<S>> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i.test(type.trim())) {
    throw new AppError(
      "invalid_input",
      "the body must be JSON, sent with Content-Type: application/json",
    );
  }
  const bytes = await readLimited(c.req.raw, MAX_JSON_BODY);
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new AppError("invalid_input", "the body is not valid UTF-8");
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new AppError("invalid_input", "the body is not valid JSON");
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new AppError("invalid_input", "the body must be a JSON object");
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new AppError("invalid_input", describeIssues(parsed.error));
  return parsed.data;
}

/**
 * Reads a request body up to `limit` bytes, enforcing the cap while reading (a lying or absent
 * Content-Length cannot make us buffer more). Over the cap: `tooLarge()`.
 */
export async function readLimited(
  req: Request,
  limit: number,
  tooLarge: () => AppError = () => tooLargeBody(limit),
  unreadable = "the request body could not be read completely",
): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (declared > limit) throw tooLarge();
  if (Number.isSafeInteger(declared)) {
    // The HTTP server frames the body by its Content-Length, so it cannot be longer: one read
    // (without first asking for `req.body`, which would build a stream only to drain it).
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await req.arrayBuffer());
    } catch {
      throw new AppError("invalid_input", unreadable);
    }
    if (bytes.byteLength > limit) throw tooLarge();
    return bytes;
  }
  if (!req.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel();
        throw tooLarge();
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError("invalid_input", unreadable);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const ch of chunks) {
    out.set(ch, offset);
    offset += ch.byteLength;
  }
  return out;
}

function tooLargeBody(limit: number) {
  return new AppError("payload_too_large", `the request body is larger than ${limit / 1024} KiB`);
}

const SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/;

/** Field names are echoed only when they look like field names: a key may itself be a secret. */
export function describeIssues(error: z.ZodError): string {
  const parts = error.issues.slice(0, 5).map((issue) => {
    const path = issue.path.map(String).filter((p) => SAFE_NAME.test(p) || /^\d+$/.test(p)).join(
      ".",
    );
    if (issue.code === "unrecognized_keys") {
      const keys = issue.keys.filter((k) => SAFE_NAME.test(k));
      return keys.length === issue.keys.length && keys.length > 0
        ? `unknown field${keys.length > 1 ? "s" : ""}: ${keys.join(", ")}`
        : "the body has unknown fields";
    }
    const where = path || "the body";
    if (issue.code === "invalid_type") {
      return issue.input === undefined
        ? `${where} is required`
        : `${where} must be a ${issue.expected}`;
    }
    return `${where}: ${issue.message}`;
  });
  return parts.join("; ");
}
