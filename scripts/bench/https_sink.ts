/**
 * A loopback HTTPS sink for upload throughput: a minimal HTTP/1.1 server (the test certificate,
 * no ALPN, so every client speaks HTTP/1.1) that counts an attachment upload's bytes and drops
 * them — no parsing, no hashing — then answers like Jira with one attachment bean of the right
 * size. Every other request (myself, attachment/meta, the issue) goes to an in-process fake
 * Jira, so sosvault can connect and attach against it unchanged, and curl can upload to the
 * same URL.
 *
 * TLS is node:tls with TCP_NODELAY on every connection, as nginx, Apache and Tomcat set it.
 * Deno.listenTls (and Deno.serve) cannot set it, and then about half of the TLS 1.3 handshakes
 * from a rustls client (Deno's node:https and fetch) stall for the client's 40 ms delayed ACK:
 * the client sends its middlebox-compatibility ChangeCipherSpec early, the server answers with
 * its own 6-byte record, and Nagle holds the server's encrypted flight until that is ACKed
 * (seen with tcpdump; curl/OpenSSL sends its CCS later and never stalls). That is an artifact
 * of the test server, not of a real Jira, and it would have cost sosvault 40 ms per upload.
 *
 * Runs as its own process (so its CPU and memory are not the bench's):
 *   deno run --allow-net=127.0.0.1 --allow-read=tests/fixtures/tls scripts/bench/https_sink.ts
 * stdin: one JSON line {"pat": "...", "user": "bench", "issue": "BENCH-1"}; stdout: one JSON
 * line {"port": N}, then one line per request:
 *   {"upload": {"bytes", "fileBytes", "ms", "reads", "authorised", "at"}}   (reads: chunks)
 *   {"request": {"method", "path", "at"}}
 * ms: request head complete → last body byte; at: when the head was complete, as
 * performance.timeOrigin + performance.now() (comparable across processes on this host).
 */
import tls from "node:tls";
import { once } from "node:events";
import { createFakeJira } from "../../src/jira/fake/mod.ts";

const TLS_DIR = new URL("../../tests/fixtures/tls/", import.meta.url);
const MAX_HEAD = 64 * 1024;
const UPLOAD = /^\/rest\/api\/2\/issue\/([^/?]+)\/attachments$/;
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Head {
  method: string;
  target: string;
  headers: Headers;
  /** Bytes already read past the head. */
  rest: Uint8Array;
}

interface Config {
  pat: string;
  user: string;
  issue: string;
}

function indexOfCrlfCrlf(b: Uint8Array, from = 0): number {
  for (let i = Math.max(0, from); i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A connection as a sequence of chunks, and writes. */
interface Wire {
  /** The next chunk, or null at the end of the connection. */
  read(): Promise<Uint8Array | null>;
  write(bytes: Uint8Array): Promise<void>;
  close(): void;
}

function wireOf(socket: tls.TLSSocket): Wire {
  const chunks = (socket as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  return {
    async read() {
      const next = await chunks.next();
      return next.done ? null : next.value;
    },
    async write(bytes) {
      if (!socket.write(bytes)) await once(socket, "drain");
    },
    close() {
      socket.destroy();
    },
  };
}

/** Reads one request head; null at a clean end of the connection. */
async function readHead(wire: Wire, carry: Uint8Array): Promise<Head | null> {
  let acc = carry;
  while (true) {
    const end = indexOfCrlfCrlf(acc);
    if (end >= 0) {
      const lines = dec.decode(acc.subarray(0, end)).split("\r\n");
      const [method, target] = lines[0].split(" ");
      const headers = new Headers();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      return { method, target, headers, rest: acc.slice(end + 4) };
    }
    if (acc.length > MAX_HEAD) throw new Error("request head too large");
    const chunk = await wire.read();
    if (chunk === null) {
      if (acc.length === 0) return null;
      throw new Error("connection closed inside a request head");
    }
    acc = concat(acc, chunk);
  }
}

/**
 * Reads exactly `length` body bytes (some may already be in `rest`), keeping only the first
 * 8 KiB and the last 256 bytes; returns what follows the body.
 */
async function readBody(
  wire: Wire,
  rest: Uint8Array,
  length: number,
  keep: { first?: Uint8Array; last?: Uint8Array; reads?: number },
): Promise<Uint8Array> {
  const firstMax = 8192;
  let first: Uint8Array = rest.slice(0, Math.min(rest.length, length, firstMax));
  let last: Uint8Array = rest.slice(Math.max(0, Math.min(rest.length, length) - 256), length);
  let got = Math.min(rest.length, length);
  let reads = 0;
  let after: Uint8Array = rest.length > length ? rest.slice(length) : new Uint8Array(0);
  while (got < length) {
    let chunk = await wire.read();
    if (chunk === null) throw new Error(`body cut short at ${got} of ${length} bytes`);
    reads++;
    if (chunk.length > length - got) {
      after = chunk.slice(length - got);
      chunk = chunk.subarray(0, length - got);
    }
    if (first.length < firstMax) {
      first = concat(first, chunk.subarray(0, Math.min(chunk.length, firstMax - first.length)));
    }
    got += chunk.length;
    const tail = chunk.subarray(Math.max(0, chunk.length - 256));
    last = tail.length >= 256 ? tail.slice() : concat(last, tail).slice(-256);
  }
  keep.first = first;
  keep.last = last;
  keep.reads = reads;
  return after;
}

async function writeResponse(
  wire: Wire,
  status: number,
  headers: Headers,
  body: Uint8Array,
  close: boolean,
): Promise<void> {
  let head = `HTTP/1.1 ${status} ${status === 200 ? "OK" : "Status"}\r\n`;
  for (const [k, v] of headers) {
    if (k === "content-length" || k === "transfer-encoding" || k === "connection") continue;
    head += `${k}: ${v}\r\n`;
  }
  head += `content-length: ${body.length}\r\n`;
  if (close) head += "connection: close\r\n";
  head += "\r\n";
  await wire.write(concat(enc.encode(head), body));
}

/** The file part's size from the multipart envelope: total minus part head minus epilogue. */
function fileBytes(contentType: string, length: number, first: Uint8Array, last: Uint8Array) {
  const m = /boundary=("?)([^";]+)\1/i.exec(contentType);
  if (!m) return -1;
  const boundary = m[2];
  const partHeadEnd = indexOfCrlfCrlf(first);
  const epilogue = `\r\n--${boundary}--\r\n`;
  if (
    partHeadEnd < 0 ||
    !dec.decode(first.subarray(0, boundary.length + 2)).startsWith(`--${boundary}`)
  ) {
    return -1;
  }
  if (dec.decode(last).slice(-epilogue.length) !== epilogue) return -1;
  return length - (partHeadEnd + 4) - epilogue.length;
}

let attachmentSeq = 10_000;

function uploadAnswer(issue: string, user: string, filename: string, size: number, origin: string) {
  const id = String(++attachmentSeq);
  return [{
    self: `${origin}/rest/api/2/attachment/${id}`,
    id,
    filename,
    author: { name: user, key: user, displayName: user, active: true },
    created: new Date().toISOString().replace("Z", "+0000"),
    size,
    mimeType: "application/octet-stream",
    content: `${origin}/secure/attachment/${id}/${encodeURIComponent(filename)}`,
    issue,
  }];
}

async function serveConn(
  wire: Wire,
  cfg: Config,
  jira: ReturnType<typeof createFakeJira>,
  origin: string,
) {
  let carry: Uint8Array = new Uint8Array(0);
  try {
    while (true) {
      const head = await readHead(wire, carry);
      if (!head) return;
      const close = (head.headers.get("connection") ?? "").toLowerCase() === "close";
      if (head.headers.has("transfer-encoding")) {
        await writeResponse(wire, 411, new Headers(), enc.encode("length required"), true);
        return;
      }
      const length = Number(head.headers.get("content-length") ?? 0);
      const path = head.target.split("?")[0];
      const at = performance.timeOrigin + performance.now();
      if (head.method === "POST" && UPLOAD.test(path)) {
        const started = performance.now();
        const keep: { first?: Uint8Array; last?: Uint8Array; reads?: number } = {};
        carry = await readBody(wire, head.rest, length, keep);
        const ms = performance.now() - started;
        const size = fileBytes(
          head.headers.get("content-type") ?? "",
          length,
          keep.first!,
          keep.last!,
        );
        const authorised = head.headers.get("authorization") === `Bearer ${cfg.pat}`;
        const filename = /filename="([^"]*)"/.exec(dec.decode(keep.first!))?.[1] ?? "upload.bin";
        console.log(JSON.stringify({
          upload: { bytes: length, fileBytes: size, ms, reads: keep.reads, authorised, at },
        }));
        const ok = size >= 0 && authorised;
        const headers = new Headers({
          "content-type": "application/json;charset=UTF-8",
          "x-ausername": authorised ? cfg.user : "anonymous",
        });
        const body = ok
          ? uploadAnswer(UPLOAD.exec(path)![1], cfg.user, filename, size, origin)
          : { errorMessages: ["bad upload"], errors: {} };
        await writeResponse(wire, ok ? 200 : 400, headers, enc.encode(JSON.stringify(body)), close);
      } else {
        const keep = {};
        const rest = head.rest;
        const bodyBytes = length > 0
          ? concat(rest.subarray(0, Math.min(rest.length, length)), new Uint8Array(0))
          : null;
        carry = await readBody(wire, rest, length, keep);
        if (bodyBytes && bodyBytes.length < length) throw new Error("small bodies only");
        const res = await jira.fetch(
          new Request(`${origin}${head.target}`, {
            method: head.method,
            headers: head.headers,
            body: bodyBytes as BodyInit | null,
          }),
        );
        const out = new Uint8Array(await res.arrayBuffer());
        await writeResponse(wire, res.status, res.headers, out, close);
        console.log(JSON.stringify({ request: { method: head.method, path, at } }));
      }
      if (close) return;
    }
  } catch {
    // A client that went away; nothing to report.
  } finally {
    wire.close();
  }
}

if (import.meta.main) {
  const line = await new Response(Deno.stdin.readable).text().then((t) => t.split("\n")[0]);
  const cfg = JSON.parse(line) as Config;
  const jira = createFakeJira({
    uploadLimit: 8 * 1024 * 1024 * 1024,
    maxRecordedRequests: 50,
  });
  jira.addUser({ name: cfg.user, displayName: cfg.user });
  jira.addPat(cfg.user, cfg.pat);
  jira.addIssue({ key: cfg.issue });
  const [cert, key] = await Promise.all([
    Deno.readTextFile(new URL("server.pem", TLS_DIR)),
    Deno.readTextFile(new URL("server-key.pem", TLS_DIR)),
  ]);
  let origin = "";
  const server = tls.createServer({ cert, key }, (socket) => {
    socket.setNoDelay(true);
    socket.on("error", () => {});
    void serveConn(wireOf(socket), cfg, jira, origin);
  });
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as { port: number }).port;
    origin = `https://127.0.0.1:${port}`;
    console.log(JSON.stringify({ port }));
  });
}
