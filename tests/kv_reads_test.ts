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
    assert.deepEqual(calls, [10, 10, 7], "Deno KV's limit of 10 keys per getMany");
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
