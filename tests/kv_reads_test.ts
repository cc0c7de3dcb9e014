import assert from "node:assert/strict";
import { coalescingReader } from "../src/kv_reads.ts";
import { freshDir } from "./helpers/paths.ts";

async function withKv(fn: (kv: Deno.Kv) => Promise<void>) {
  const kv = await Deno.openKv(`${await freshDir("kv-reads")}/reads.kv`);
  try {
    await fn(kv);
  } finally {
    kv.close();
  }
}

Deno.test("coalescingReader() sends reads started together as getMany, each caller its own entry", async () => {
  await withKv(async (kv) => {
    for (let i = 0; i < 25; i++) await kv.set(["k", i], `v${i}`);
    const calls: number[] = [];
    const counting = new Proxy(kv, {
      get(target, prop) {
        if (prop === "getMany") {
          return (keys: Deno.KvKey[]) => {
            calls.push(keys.length);
            return target.getMany(keys);
          };
        }
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const read = coalescingReader(counting);
    const keys = [...Array.from({ length: 25 }, (_, i) => ["k", i]), ["missing"], ["k", 3]];
    const entries = await Promise.all(keys.map((k) => read<string>(k)));
    assert.deepEqual(entries.map((e) => e.value), [
      ...Array.from({ length: 25 }, (_, i) => `v${i}`),
      null,
      "v3",
    ]);
    assert.deepEqual(entries[26].key, ["k", 3]);
    assert.equal(entries[26], entries[3], "callers of one key in a batch share its lookup");
    assert.deepEqual(calls, [10, 10, 6], "26 distinct keys, Deno KV's limit of 10 per getMany");
  });
});

Deno.test("coalescingReader() merges reads asked in separate turns while a batch is in flight", async () => {
  await withKv(async (kv) => {
    await kv.set(["user"], { name: "alice", roles: ["ops"] });
    await kv.set(["conn"], { status: "connected" });
    const calls: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const gated = new Proxy(kv, {
      get(target, prop) {
        if (prop === "getMany") {
          return async (keys: Deno.KvKey[]) => {
            calls.push(keys.length);
            if (calls.length === 1) await gate;
            return target.getMany(keys);
          };
        }
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const read = coalescingReader(gated);
    const first = read(["user"]);
    // Each of these is asked in its own macrotask, as requests arriving over HTTP are.
    const later: Promise<Deno.KvEntryMaybe<unknown>>[] = [];
    for (const key of [["user"], ["conn"], ["user"], ["conn"]]) {
      await new Promise((r) => setTimeout(r, 1));
      later.push(read(key));
    }
    // The batch is sent only after its callers asked, so even a write made since is seen.
    await kv.set(["conn"], { status: "revoked" });
    release();
    const [a, b, c, d, e] = await Promise.all([first, ...later]);
    assert.deepEqual(calls, [1, 2], "one read in flight, then one for everything asked meanwhile");
    assert.deepEqual((c.value as { status: string }).status, "revoked");
    assert.equal(b, d);
    assert.equal(c, e);
    assert.ok(Object.isFrozen(a.value) && Object.isFrozen((a.value as { roles: string[] }).roles));
    assert.throws(() => (b.value as { roles: string[] }).roles.push("admin"), TypeError);
  });
});

Deno.test("coalescingReader() reads afresh every time: a write before the read is seen", async () => {
  await withKv(async (kv) => {
    const read = coalescingReader(kv);
    await kv.set(["user"], "alice");
    assert.equal((await read(["user"])).value, "alice");
    await kv.delete(["user"]);
    assert.equal((await read(["user"])).value, null);
    await kv.set(["user"], "bob");
    const [x, y] = await Promise.all([read(["user"]), read(["user"])]);
    assert.equal(x.value, "bob");
    assert.equal(y.value, "bob");
  });
});

Deno.test("coalescingReader() fails every read of a batch whose getMany fails", async () => {
  const kv = await Deno.openKv(`${await freshDir("kv-reads")}/reads.kv`);
  const read = coalescingReader(kv);
  kv.close();
  const results = await Promise.allSettled([read(["a"]), read(["b"])]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
});
