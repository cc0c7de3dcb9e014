/**
 * SOSVAULT_EVENT_EXPORT: a copy of every stored event, signature included, for a SIEM or a
 * write-once store, so a truncated KV log can be compared with what left the host. JSON lines
 * appended to a file, or syslog (RFC 5424) over UDP or TCP (octet-counted framing, RFC 6587).
 */
import dgram from "node:dgram";
import type { EventExporter, StoredEvent } from "./events.ts";

const enc = new TextEncoder();

/** One RFC 5424 message: facility auth (4), severity notice (5) or warning (4) on failure. */
export function syslogLine(e: StoredEvent, hostname: string): string {
  const pri = 4 * 8 + (e.outcome === "failure" ? 4 : 5);
  const host = hostname.replace(/[^\x21-\x7e]/g, "").slice(0, 255) || "-";
  return `<${pri}>1 ${e.time} ${host} sosvault - ${e.type} - ${JSON.stringify(e)}`;
}

export function eventExporter(
  target:
    | { kind: "file"; path: string }
    | { kind: "syslog"; transport: "udp" | "tcp"; host: string; port: number },
): EventExporter {
  if (target.kind === "file") {
    return async (events: StoredEvent[]) => {
      await Deno.writeTextFile(target.path, events.map((e) => JSON.stringify(e) + "\n").join(""), {
        append: true,
        create: true,
        mode: 0o600,
      });
    };
  }
  let host = "-";
  try {
    host = Deno.hostname();
  } catch { /* no --allow-sys=hostname: the nil value */ }
  if (target.transport === "udp") {
    // node:dgram: Deno's own datagram API still needs --unstable-net.
    let sock: dgram.Socket | null = null;
    return async (events) => {
      if (!sock) {
        sock = dgram.createSocket(target.host.includes(":") ? "udp6" : "udp4");
        // A loopback collector is reached from a loopback address (no wildcard bind needed).
        const local = target.host === "::1" ? "::1" : /^127\./.test(target.host) ? "127.0.0.1" : "";
        if (local) await new Promise<void>((r) => sock!.bind(0, local, r));
      }
      for (const e of events) {
        await new Promise<void>((resolve, reject) =>
          sock!.send(
            syslogLine(e, host),
            target.port,
            target.host,
            (err) => err ? reject(err) : resolve(),
          )
        );
      }
    };
  }
  let conn: Deno.TcpConn | null = null;
  return async (events) => {
    try {
      conn ??= await Deno.connect({ hostname: target.host, port: target.port });
      for (const e of events) {
        const msg = enc.encode(syslogLine(e, host));
        await writeAll(conn, enc.encode(`${msg.byteLength} `));
        await writeAll(conn, msg);
      }
    } catch (err) {
      try {
        conn?.close();
      } catch { /* already closed */ }
      conn = null;
      throw err;
    }
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array) {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}
