/**
 * SOSVAULT_EVENT_EXPORT: every stored event, with its seq and MAC, also leaves the host — as
 * JSON lines in a file, or as RFC 5424 syslog messages over UDP or TCP (to loopback here).
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { EventLog, type StoredEvent } from "../../src/security/events.ts";
import { eventExporter } from "../../src/security/event_export.ts";
import { createKeyring } from "../../src/vault/cipher.ts";
import { createLogger } from "../../src/log.ts";
import { kvKeys } from "../../src/kv_keys.ts";
import { parseConfig } from "../../src/config.ts";
import { freshDir } from "../helpers/paths.ts";
import { randomMasterKey } from "../helpers/server.ts";

const hexKey = (hex: string) => Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));

async function logWith(target: Parameters<typeof eventExporter>[0]) {
  const dir = await freshDir("event-export");
  const kv = await Deno.openKv(`${dir}/sosvault.kv`);
  const keyring = await createKeyring(hexKey(randomMasterKey()));
  const log = new EventLog(
    kv,
    createLogger(() => {}),
    () => new Date(),
    90,
    keyring,
    eventExporter(target),
  );
  return { dir, kv, log };
}

const record = (log: EventLog, i: number) =>
  log.record({
    type: i % 2 ? "denied" : "connect",
    outcome: i % 2 ? "failure" : "success",
    user: "alice",
    request_id: `req_${i}`,
    source: "http",
    error_code: i % 2 ? "not_found" : undefined,
  });

/** Exports run after the KV write; wait (bounded) until `n` arrived. */
async function until(check: () => boolean | Promise<boolean>) {
  for (let i = 0; i < 200 && !await check(); i++) await new Promise((r) => setTimeout(r, 10));
}

Deno.test("file export: one JSON line per event, identical to the stored event with its seq and MAC", async () => {
  const dir = await freshDir("event-export-file");
  const path = `${dir}/events.jsonl`;
  const { kv, log } = await logWith({ kind: "file", path });
  try {
    for (let i = 0; i < 4; i++) await record(log, i);
    const read = async () =>
      (await Deno.readTextFile(path).catch(() => "")).trim().split("\n").filter(Boolean);
    await until(async () => (await read()).length === 4);
    const lines = (await read()).map((l) => JSON.parse(l) as StoredEvent);
    assert.deepEqual(lines.map((e) => e.seq), [1, 2, 3, 4]);
    for (const e of lines) assert.deepEqual(e, (await kv.get(kvKeys.event(e.seq))).value);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    kv.close();
  }
});

Deno.test("syslog over UDP: RFC 5424 messages, facility auth, notice or warning by outcome", async () => {
  const server = dgram.createSocket("udp4");
  const got: string[] = [];
  server.on("message", (m) => got.push(m.toString()));
  await new Promise<void>((r) => server.bind(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const { kv, log } = await logWith({ kind: "syslog", transport: "udp", host: "127.0.0.1", port });
  try {
    for (let i = 0; i < 2; i++) await record(log, i);
    await until(() => got.length === 2);
    const m = /^<(\d+)>1 (\S+) (\S+) sosvault - (\S+) - (\{.*\})$/.exec(got[0]);
    assert.ok(m, got[0]);
    assert.equal(m[1], "37", "auth (4) * 8 + notice (5)");
    assert.equal(m[4], "connect");
    assert.equal(JSON.parse(m[5]).seq, 1);
    assert.match(got[1], /^<36>1 /, "a failure is a warning (4)");
  } finally {
    kv.close();
    server.close();
  }
});

Deno.test("syslog over TCP: octet-counted frames (RFC 6587)", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let received = "";
  const reading = (async () => {
    const conn = await listener.accept();
    const dec = new TextDecoder();
    for await (const chunk of conn.readable) {
      received += dec.decode(chunk);
      if (received.split(" sosvault - ").length > 3) break;
    }
  })();
  const { kv, log } = await logWith({
    kind: "syslog",
    transport: "tcp",
    host: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  try {
    for (let i = 0; i < 3; i++) await record(log, i);
    await reading;
    const frames: string[] = [];
    let rest = received;
    while (rest.length > 0) {
      const sp = rest.indexOf(" ");
      const n = Number(rest.slice(0, sp));
      const bytes = new TextEncoder().encode(rest.slice(sp + 1));
      frames.push(new TextDecoder().decode(bytes.slice(0, n)));
      rest = new TextDecoder().decode(bytes.slice(n));
    }
    assert.equal(frames.length, 3);
    assert.ok(frames.every((f) => /^<3[67]>1 .* sosvault - \w+ - \{/.test(f)));
  } finally {
    kv.close();
    listener.close();
  }
});

Deno.test("SOSVAULT_EVENT_EXPORT parses file:, syslog: and syslog+tcp:, and refuses anything else", () => {
  const key = { TOKEN_VAULT_MASTER_KEY: randomMasterKey() };
  assert.deepEqual(
    parseConfig({ ...key, SOSVAULT_EVENT_EXPORT: "file:/var/log/s.jsonl" }).eventExport,
    {
      kind: "file",
      path: "/var/log/s.jsonl",
    },
  );
  assert.deepEqual(
    parseConfig({ ...key, SOSVAULT_EVENT_EXPORT: "syslog+tcp:127.0.0.1:6514" }).eventExport,
    {
      kind: "syslog",
      transport: "tcp",
      host: "127.0.0.1",
      port: 6514,
    },
  );
  assert.equal(
    parseConfig({ ...key, SOSVAULT_EVENT_EXPORT: "syslog:siem:514" }).eventExport?.kind,
    "syslog",
  );
  assert.throws(
    () => parseConfig({ ...key, SOSVAULT_EVENT_EXPORT: "http://siem" }),
    /SOSVAULT_EVENT_EXPORT must be file:PATH/,
  );
});
