/**
 * Single-key KV reads that start in the same turn of the event loop, sent as one `getMany`.
 *
 * Under load many requests are in flight at once, and each reads a key or two on its own hot
 * path (its user, its connection). Every KV call is an op with a fixed cost that dwarfs the
 * lookup itself, so reads issued together are merged (up to getMany's limit of 10 keys) and
 * each caller gets its own entry. Every read is still sent after its caller asked for it and
 * answers from one consistent snapshot, so nothing is served from memory: a write made by any
 * process before the read is seen.
 */
import { lockTolerantKv } from "./kv_retry.ts";

/** Deno KV's limit on keys in one getMany. */
const MAX_KEYS = 10;

interface Pending {
  key: Deno.KvKey;
  resolve(entry: Deno.KvEntryMaybe<unknown>): void;
  reject(err: unknown): void;
}

export type KvReader = <T>(key: Deno.KvKey) => Promise<Deno.KvEntryMaybe<T>>;

export function coalescingReader(kv: Deno.Kv): KvReader {
  const store = lockTolerantKv(kv);
  let pending: Pending[] = [];

  function flush() {
    const batch = pending;
    pending = [];
    for (let i = 0; i < batch.length; i += MAX_KEYS) {
      const chunk = batch.slice(i, i + MAX_KEYS);
      store.getMany(chunk.map((p) => p.key)).then(
        (entries) => chunk.forEach((p, j) => p.resolve(entries[j])),
        (err) => chunk.forEach((p) => p.reject(err)),
      );
    }
  }

  return <T>(key: Deno.KvKey) =>
    new Promise<Deno.KvEntryMaybe<T>>((resolve, reject) => {
      if (pending.length === 0) queueMicrotask(flush);
      pending.push({ key, resolve: resolve as Pending["resolve"], reject });
    });
}
