/**
 * The tamper-evident event log (issue 15). Each test writes real events through a real
 * EventLog on a KV file, then tampers with that file through a second, independent KV handle
 * (as an intruder with write access to the store would), and `verify()` — and the
 * `sosvault events verify` command — must name the first edited, deleted, reordered or
 * inserted event.
 */
import assert from "node:assert/strict";
import { EventLog, type StoredEvent } from "../../src/security/events.ts";
import { canonicalJson } from "../../src/security/event_chain.ts";
import { createKeyring, type Keyring } from "../../src/vault/cipher.ts";
import { createLogger } from "../../src/log.ts";
import { kvKeys } from "../../src/kv_keys.ts";
import { lockTolerantKv } from "../../src/kv_retry.ts";
import { TestClock } from "../helpers/clock.ts";
import { freshDir } from "../helpers/paths.ts";
import { randomMasterKey } from "../helpers/server.ts";
import { runSosvault } from "../helpers/process.ts";

const hexKey = (hex: string) => Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));

interface Fixture {
  path: string;
  kv: Deno.Kv;
  /** A second handle on the same file: the intruder's. */
  raw: Deno.Kv;
  log: EventLog;
  keyring: Keyring;
  clock: TestClock;
  lines: string[];
  close(): void;
}

async function fixture(options: { retentionDays?: number; key?: string } = {}): Promise<Fixture> {
  const dir = await freshDir("event-chain");
  const path = `${dir}/sosvault.kv`;
  const kv = lockTolerantKv(await Deno.openKv(path));
  const raw = lockTolerantKv(await Deno.openKv(path));
  const keyring = await createKeyring(hexKey(options.key ?? randomMasterKey()));
  const clock = new TestClock();
  const lines: string[] = [];
  const log = new EventLog(
    kv,
    createLogger((l) => lines.push(l)),
    clock.now,
    options.retentionDays ?? 90,
    keyring,
  );
  return {
    path,
    kv,
    raw,
    log,
    keyring,
    clock,
    lines,
    close() {
      kv.close();
      raw.close();
    },
  };
}

async function recordN(f: Fixture, n: number, user = "alice") {
  for (let i = 0; i < n; i++) {
    await f.log.record({
      type: i % 2 ? "list" : "credential_use",
      outcome: "success",
      user,
      connection_id: "jc_" + "a".repeat(32),
      request_id: `req_${i}`,
      source: "mcp",
      ...(i % 2 ? { issue_key: "SUP-1" } : { purpose: "list" as const }),
    });
    f.clock.advance(1000);
  }
}

const stored = async (kv: Deno.Kv, seq: number) =>
  (await kv.get<StoredEvent>(kvKeys.event(seq))).value!;

Deno.test("an untouched chain verifies: every event has its own seq, in order", async () => {
  const f = await fixture();
  try {
    await recordN(f, 12);
    const r = await f.log.verify();
    assert.deepEqual(r, {
      ok: true,
      verified: 12,
      first_seq: 1,
      last_seq: 12,
      checkpoint_seq: 0,
      unchained: 0,
    });
    const entries = await f.log.entries({ limit: 1000 });
    assert.deepEqual(entries.map((e) => e.seq), [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    // The API shape is unchanged: no seq, kid or MAC in what list() returns.
    const [newest] = await f.log.list();
    assert.ok(!("seq" in newest) && !("mac" in newest) && !("kid" in newest));
  } finally {
    f.close();
  }
});

Deno.test("events verify names an edited event (one field changed in the KV file)", async () => {
  const f = await fixture();
  try {
    await recordN(f, 10);
    const e = await stored(f.raw, 6);
    await f.raw.set(kvKeys.event(6), { ...e, user: "mallory" });
    const r = await f.log.verify();
    assert.equal(r.ok, false);
    assert.deepEqual([r.problem!.kind, r.problem!.seq, r.verified], ["edited", 6, 5]);
  } finally {
    f.close();
  }
});

Deno.test("events verify names an edited event whose MAC the intruder recomputed without the key", async () => {
  const f = await fixture();
  try {
    await recordN(f, 5);
    const e = await stored(f.raw, 3);
    // A MAC made with a key the intruder does have (another master key): still refused.
    const other = await createKeyring(hexKey(randomMasterKey()));
    const mac = Array.from(
      new Uint8Array(await crypto.subtle.sign("HMAC", other.current.events, new Uint8Array(8))),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    await f.raw.set(kvKeys.event(3), { ...e, outcome: "failure", mac });
    assert.deepEqual((await f.log.verify()).problem?.kind, "edited");
  } finally {
    f.close();
  }
});

Deno.test("events verify names a field added to an event (every field is covered)", async () => {
  const f = await fixture();
  try {
    await recordN(f, 4);
    const e = await stored(f.raw, 2);
    await f.raw.set(kvKeys.event(2), { ...e, approver: "mallory" });
    const r = await f.log.verify();
    assert.deepEqual([r.problem!.kind, r.problem!.seq], ["edited", 2]);
  } finally {
    f.close();
  }
});

Deno.test("events verify names a deleted event, in the middle and at the end", async () => {
  const f = await fixture();
  try {
    await recordN(f, 8);
    await f.raw.delete(kvKeys.event(4));
    let r = await f.log.verify();
    assert.deepEqual([r.problem!.kind, r.problem!.seq], ["deleted", 4]);
    assert.match(r.problem!.message, /event 4 is missing/);

    const f2 = await fixture();
    try {
      await recordN(f2, 8);
      await f2.raw.delete(kvKeys.event(8));
      await f2.raw.delete(kvKeys.event(7));
      r = await f2.log.verify();
      assert.deepEqual([r.problem!.kind, r.problem!.seq], ["deleted", 7]);
      assert.match(r.problem!.message, /events 7 to 8 are missing/);
    } finally {
      f2.close();
    }
  } finally {
    f.close();
  }
});

Deno.test("events verify names a deletion hidden by moving the later events up", async () => {
  const f = await fixture();
  try {
    await recordN(f, 6);
    for (let seq = 3; seq < 6; seq++) {
      await f.raw.set(kvKeys.event(seq), await stored(f.raw, seq + 1));
    }
    await f.raw.delete(kvKeys.event(6));
    const r = await f.log.verify();
    assert.deepEqual([r.problem!.kind, r.problem!.seq], ["deleted", 3]);
  } finally {
    f.close();
  }
});

Deno.test("events verify names two swapped events as reordered", async () => {
  const f = await fixture();
  try {
    await recordN(f, 7);
    const [a, b] = [await stored(f.raw, 3), await stored(f.raw, 5)];
    await f.raw.atomic().set(kvKeys.event(3), b).set(kvKeys.event(5), a).commit();
    const r = await f.log.verify();
    assert.deepEqual([r.problem!.kind, r.problem!.seq], ["reordered", 3]);
    assert.match(r.problem!.message, /stored at position 5/);
  } finally {
    f.close();
  }
});

Deno.test("events verify names an inserted event, at a new key or with the rest moved down", async () => {
  const f = await fixture();
  try {
    await recordN(f, 5);
    const fake = { ...await stored(f.raw, 2), user: "mallory", id: "forged" };
    // Between two seqs (KV orders 2 < 2.5 < 3).
    await f.raw.set(["event", 2.5], fake);
    let r = await f.log.verify();
    assert.deepEqual([r.problem!.kind, r.problem!.seq], ["inserted", 3]);
    await f.raw.delete(["event", 2.5]);
    assert.equal((await f.log.verify()).ok, true, "removing it heals the chain");

    // At seq 3, events 3..5 moved to 4..6 with their content untouched.
    for (let seq = 5; seq >= 3; seq--) {
      await f.raw.set(kvKeys.event(seq + 1), await stored(f.raw, seq));
    }
    await f.raw.set(kvKeys.event(3), { ...fake, seq: 3 });
    r = await f.log.verify();
    assert.deepEqual([r.problem!.kind, r.problem!.seq], ["inserted", 3]);
  } finally {
    f.close();
  }
});

Deno.test("events verify names an edited head or checkpoint", async () => {
  const f = await fixture({ retentionDays: 1 });
  try {
    await recordN(f, 4);
    const head = (await f.raw.get<{ seq: number }>(kvKeys.eventHead())).value!;
    await f.raw.set(kvKeys.eventHead(), { ...head, seq: 3 });
    assert.equal((await f.log.verify()).problem?.kind, "edited");
    await f.raw.set(kvKeys.eventHead(), head);
    assert.equal((await f.log.verify()).ok, true);

    f.clock.advance(2 * 86_400_000);
    await recordN(f, 2);
    assert.equal(await f.log.prune(), 4);
    const cp = (await f.raw.get<{ seq: number }>(kvKeys.eventCheckpoint())).value!;
    assert.equal(cp.seq, 4);
    await f.raw.set(kvKeys.eventCheckpoint(), { ...cp, seq: 5 });
    assert.equal((await f.log.verify()).problem?.kind, "edited");
    await f.raw.delete(kvKeys.eventCheckpoint());
    const r = await f.log.verify();
    assert.deepEqual([r.problem?.kind, r.problem?.seq], ["deleted", 1], "pruned events missing");
  } finally {
    f.close();
  }
});

Deno.test("pruning deletes events past retention behind a signed checkpoint; the rest still verifies", async () => {
  const f = await fixture({ retentionDays: 1 });
  try {
    await recordN(f, 5);
    f.clock.advance(86_400_000 + 1);
    await recordN(f, 3);
    assert.equal(await f.log.prune(), 5);
    assert.equal(await f.log.prune(), 0, "nothing more to prune");
    const r = await f.log.verify();
    assert.deepEqual(r, {
      ok: true,
      verified: 3,
      first_seq: 6,
      last_seq: 8,
      checkpoint_seq: 5,
      unchained: 0,
    });
    assert.equal((await Array.fromAsync(f.raw.list({ prefix: kvKeys.allEvents() }))).length, 3);
    // An edit after the checkpoint is still caught.
    await f.raw.set(kvKeys.event(7), { ...await stored(f.raw, 7), type: "connect" });
    assert.deepEqual((await f.log.verify()).problem?.seq, 7);
  } finally {
    f.close();
  }
});

Deno.test("pruning never seals tampering into a checkpoint: it stops at the first break", async () => {
  const f = await fixture({ retentionDays: 1 });
  try {
    await recordN(f, 6);
    f.clock.advance(2 * 86_400_000);
    await f.raw.set(kvKeys.event(3), { ...await stored(f.raw, 3), user: "mallory" });
    assert.equal(await f.log.prune(), 2);
    assert.ok(f.lines.some((l) => l.includes('"msg":"event_chain_broken"')));
    assert.deepEqual((await f.log.verify()).problem?.seq, 3);
  } finally {
    f.close();
  }
});

Deno.test("two writers on one KV file never share a seq, and the chain verifies", async () => {
  const f = await fixture();
  const second = lockTolerantKv(await Deno.openKv(f.path));
  try {
    const other = new EventLog(second, createLogger(() => {}), f.clock.now, 90, f.keyring);
    const writers = [f.log, other].flatMap((log, li) =>
      Array.from({ length: 4 }, async (_, wi) => {
        for (let i = 0; i < 25; i++) {
          await log.record({
            type: "list",
            outcome: "success",
            user: `w${li}${wi}`,
            request_id: `req_${li}_${wi}_${i}`,
            source: "http",
          });
        }
      })
    );
    await Promise.all(writers);
    const r = await f.log.verify();
    assert.equal(r.ok, true, JSON.stringify(r.problem));
    assert.equal(r.verified, 200);
    const seqs = (await f.log.entries({ limit: 1000 })).map((e) => e.seq);
    assert.equal(new Set(seqs).size, 200);
    assert.deepEqual([Math.min(...seqs), Math.max(...seqs)], [1, 200]);
  } finally {
    second.close();
    f.close();
  }
});

Deno.test("re-signing for a key rotation keeps the chain verifiable without the previous key", async () => {
  const oldKey = randomMasterKey();
  const newKey = randomMasterKey();
  const f = await fixture({ key: oldKey, retentionDays: 1 });
  try {
    await recordN(f, 4);
    f.clock.advance(2 * 86_400_000);
    await recordN(f, 3);
    await f.log.prune();
    const both = await createKeyring(hexKey(newKey), hexKey(oldKey));
    const rotating = new EventLog(f.kv, createLogger(() => {}), f.clock.now, 1, both);
    await recordN({ ...f, log: rotating }, 2);
    const onlyNew = new EventLog(
      f.kv,
      createLogger(() => {}),
      f.clock.now,
      1,
      await createKeyring(hexKey(newKey)),
    );
    const before = await onlyNew.verify();
    assert.equal(before.problem?.kind, "unknown_key", "old signatures need the old key");
    const res = await rotating.resign();
    // The 3 old events and the checkpoint; the head moved to the new key with the new events.
    assert.deepEqual(res, { resigned: 4, left: 0, broken: false });
    const after = await onlyNew.verify();
    assert.equal(after.ok, true, JSON.stringify(after.problem));
    assert.deepEqual([after.verified, after.checkpoint_seq], [5, 4]);
    // And an edit is still caught under the new signatures.
    await f.raw.set(kvKeys.event(6), { ...await stored(f.raw, 6), user: "mallory" });
    assert.deepEqual((await onlyNew.verify()).problem?.seq, 6);
  } finally {
    f.close();
  }
});

Deno.test("canonical JSON sorts keys at every depth and refuses what JSON cannot hold", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [1, "x"], c: null }, u: undefined }),
    '{"a":{"c":null,"d":[1,"x"]},"b":1}',
  );
  assert.throws(() => canonicalJson({ a: new Date(0) }));
  assert.throws(() => canonicalJson({ a: NaN }));
});

Deno.test("sosvault events verify exits 0 on an intact chain and 1 naming the first edited event", async () => {
  const dir = await freshDir("events-verify-cli");
  const env = { TOKEN_VAULT_MASTER_KEY: randomMasterKey(), SOSVAULT_KV_PATH: `${dir}/sosvault.kv` };
  for (const name of ["carol", "dave", "erin"]) {
    const r = await runSosvault(dir, ["users", "add", name], env);
    assert.equal(r.code, 0, r.stderr);
  }
  // revoke-all with nothing to revoke records no event; connect a few through the library.
  const kv = await Deno.openKv(env.SOSVAULT_KV_PATH);
  try {
    const log = new EventLog(
      kv,
      createLogger(() => {}),
      () => new Date(),
      90,
      await createKeyring(hexKey(env.TOKEN_VAULT_MASTER_KEY)),
    );
    for (let i = 0; i < 3; i++) {
      await log.record({ type: "revoke", outcome: "success", user: "carol", source: "cli" });
    }
  } finally {
    kv.close();
  }
  let r = await runSosvault(dir, ["events", "verify"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Event chain intact: 3 verified, events 1 to 3\./);
  const raw = await Deno.openKv(env.SOSVAULT_KV_PATH);
  try {
    const e = (await raw.get<StoredEvent>(kvKeys.event(2))).value!;
    await raw.set(kvKeys.event(2), { ...e, user: "dave" });
  } finally {
    raw.close();
  }
  r = await runSosvault(dir, ["events", "verify"], env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /event chain BROKEN at event 2 \(edited\)/);
  r = await runSosvault(dir, ["events", "verify", "--json"], env);
  assert.equal(r.code, 1);
  assert.deepEqual(JSON.parse(r.stdout).problem.kind, "edited");
  r = await runSosvault(dir, ["events"], env);
  assert.match(r.stdout, /^#3 /);
});
