// A streaming multipart/form-data parser (RFC 7578 / RFC 2046).
//
// It never holds more than one transport chunk plus a delimiter's worth of carried bytes (or one
// part's header block), so a fake Jira can accept multi-GiB uploads while hashing them.

const CRLF = new Uint8Array([13, 10]);
const CRLFCRLF = new Uint8Array([13, 10, 13, 10]);
const HYPHEN = 45;
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_PADDING_BYTES = 256;

/** What the parser saw; `data` views are only valid until the next `push()`. */
export type MultipartEvent =
  | { type: "part"; headers: Map<string, string> }
  | { type: "data"; bytes: Uint8Array }
  | { type: "part_end" }
  | { type: "end" };

/** The body is not well-formed multipart; Jira answers such bodies with its 500 page. */
export class MultipartError extends Error {
  override name = "MultipartError";
}

type State = "preamble" | "after_delimiter" | "headers" | "body" | "epilogue";

/** Push body chunks in order, consume the returned events before the next push. */
export class MultipartParser {
  #delimiter: Uint8Array;
  // A virtual CRLF lets the first "--boundary" (which has no CRLF before it) match the same
  // delimiter as every later one.
  #carry: Uint8Array = CRLF.slice();
  #state: State = "preamble";
  #maxHeldBytes = 0;

  constructor(boundary: string) {
    if (!isValidBoundary(boundary)) throw new MultipartError("Invalid multipart boundary");
    this.#delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
  }

  /** The most bytes the parser held at once: proof that the body was never buffered whole. */
  get maxHeldBytes(): number {
    return this.#maxHeldBytes;
  }

  get done(): boolean {
    return this.#state === "epilogue";
  }

  push(chunk: Uint8Array): MultipartEvent[] {
    const data = this.#carry.length === 0 ? chunk : concat(this.#carry, chunk);
    this.#maxHeldBytes = Math.max(this.#maxHeldBytes, data.length);
    const events: MultipartEvent[] = [];
    let pos = 0;
    const delim = this.#delimiter;
    loop: while (true) {
      switch (this.#state) {
        case "preamble": {
          const at = indexOf(data, delim, pos);
          if (at === -1) {
            pos = Math.max(pos, data.length - (delim.length - 1));
            break loop;
          }
          pos = at + delim.length;
          this.#state = "after_delimiter";
          break;
        }
        case "after_delimiter": {
          if (data.length - pos < 2) break loop;
          if (data[pos] === HYPHEN && data[pos + 1] === HYPHEN) {
            pos += 2;
            this.#state = "epilogue";
            events.push({ type: "end" });
            break;
          }
          const eol = indexOf(data, CRLF, pos);
          if (eol === -1) {
            if (data.length - pos > MAX_PADDING_BYTES) {
              throw new MultipartError("Garbage after multipart boundary");
            }
            break loop;
          }
          for (let i = pos; i < eol; i++) {
            // RFC 2046 allows linear whitespace ("transport padding") after a delimiter.
            if (data[i] !== 32 && data[i] !== 9) {
              throw new MultipartError("Garbage after multipart boundary");
            }
          }
          // Keep the CRLF: an empty header block is then just the "\r\n\r\n" found at `pos`.
          pos = eol;
          this.#state = "headers";
          break;
        }
        case "headers": {
          const end = indexOf(data, CRLFCRLF, pos);
          if (end === -1) {
            if (data.length - pos > MAX_HEADER_BYTES) {
              throw new MultipartError("Multipart part headers are too long");
            }
            break loop;
          }
          const raw = end > pos + 2 ? data.subarray(pos + 2, end) : new Uint8Array(0);
          events.push({ type: "part", headers: parsePartHeaders(raw) });
          pos = end + 4;
          this.#state = "body";
          break;
        }
        case "body": {
          const at = indexOf(data, delim, pos);
          if (at === -1) {
            // Hold back only what could be the start of a delimiter split across chunks.
            const safe = Math.max(pos, data.length - (delim.length - 1));
            if (safe > pos) events.push({ type: "data", bytes: data.subarray(pos, safe) });
            pos = safe;
            break loop;
          }
          if (at > pos) events.push({ type: "data", bytes: data.subarray(pos, at) });
          events.push({ type: "part_end" });
          pos = at + delim.length;
          this.#state = "after_delimiter";
          break;
        }
        case "epilogue":
          pos = data.length;
          break loop;
      }
    }
    // Copy the small remainder so the large chunk it came from can be collected.
    this.#carry = data.slice(pos);
    return events;
  }

  /** Call at end of body; a body cut short is malformed, as commons-fileupload reports it. */
  finish(): void {
    if (this.#state !== "epilogue") throw new MultipartError("Stream ended unexpectedly");
  }
}

/** RFC 2046: 1 to 70 characters from a restricted set, not ending in a space. */
export function isValidBoundary(boundary: string): boolean {
  return /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/.test(boundary);
}

/** Splits `type; a=b; c="d"` into the lower-cased type and lower-cased parameter names. */
export function parseHeaderParams(
  value: string,
): { value: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  const semi = value.indexOf(";");
  const head = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
  let i = semi === -1 ? value.length : semi + 1;
  while (i < value.length) {
    while (i < value.length && (value[i] === " " || value[i] === "\t" || value[i] === ";")) i++;
    const eq = value.indexOf("=", i);
    const nextSemi = value.indexOf(";", i);
    if (eq === -1 || (nextSemi !== -1 && nextSemi < eq)) {
      // A parameter without a value: skip it.
      i = nextSemi === -1 ? value.length : nextSemi + 1;
      continue;
    }
    const name = value.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (i < value.length && (value[i] === " " || value[i] === "\t")) i++;
    let v = "";
    if (value[i] === '"') {
      i++;
      while (i < value.length && value[i] !== '"') {
        if (value[i] === "\\" && i + 1 < value.length) i++;
        v += value[i];
        i++;
      }
      i++;
    } else {
      const stop = value.indexOf(";", i);
      v = value.slice(i, stop === -1 ? value.length : stop).trim();
      i = stop === -1 ? value.length : stop;
    }
    if (name && !params.has(name)) params.set(name, v);
  }
  return { value: head, params };
}

/** The boundary of a multipart/form-data content type, or undefined for any other type. */
export function formDataBoundary(contentType: string | null): string | undefined {
  if (!contentType) return undefined;
  const { value, params } = parseHeaderParams(contentType);
  if (value !== "multipart/form-data") return undefined;
  return params.get("boundary") ?? "";
}

function parsePartHeaders(raw: Uint8Array): Map<string, string> {
  // Browsers and Jira treat header bytes as UTF-8, which is how raw non-ASCII filenames arrive.
  const text = new TextDecoder().decode(raw);
  const headers = new Map<string, string>();
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const last = haystack.length - needle.length;
  let i = haystack.indexOf(needle[0], from);
  while (i !== -1 && i <= last) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
    i = haystack.indexOf(needle[0], i + 1);
  }
  return -1;
}
