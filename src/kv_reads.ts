/**
 * Single-key KV reads on the hot path, sent together as `getMany` calls.
 *
 * Under load many requests are in flight at once, and each reads a key or two (its user, its
 * connection). Every KV call is an op with a fixed cost that dwarfs the lookup itself, and
 * requests arrive each in its own turn of the event loop, so merging only reads of one turn
 * merges almost nothing. Instead a reader keeps at most one batch in flight: reads asked for
 * while it runs wait and go together in the next one (up to getMany's limit of 10 distinct
 * keys per call), and callers asking for the same key in one batch share its lookup (an
 * agent's calls in flight mostly name the same user and connection).
 *
 * Nothing is served from memory or from a read that started before its caller asked: every
 * batch is sent after all its callers asked and answers from one consistent snapshot, so a
 * write made by any process before a read was asked for is seen by it. A caller waits at most
 * for the batch in flight to finish, then for its own.
 */
import { lockTolerantKv } from "./kv_retry.ts";

/** Deno KV's limit on keys in one getMany. */
const MAX_KEYS = 10;

interface Waiter {
  resolve(entry: Deno.KvEntryMaybe<unknown>): void;
  reject(err: unknown): void;
}

interface Pending {
  key: Deno.KvKey;
  waiters: Waiter[];
}

export type KvReader = <T>(key: Deno.KvKey) => Promise<Deno.KvEntryMaybe<T>>;

/**
 * A KV key as a string that is equal exactly when the keys are: each part tagged with its
 * type, so the string "1" and the number 1 (or the bigint 1n) stay apart.
 */
function keyId(key: Deno.KvKey): string {
  let id = "";
  for (const part of key) {
    id += part instanceof Uint8Array
      ? "u" + Array.from(part).join(",") + "\u0000"
      : (typeof part)[0] + String(part) + "\u0000";
  }
  return id;
}

const readers = new WeakMap<Deno.Kv, KvReader>();

/** The reader of `kv`: one per store, so the user and connection reads of a call go together. */
export function coalescingReader(kv: Deno.Kv): KvReader {
  let reader = readers.get(kv);
  if (!reader) readers.set(kv, reader = newReader(kv));
  return reader;
}

function newReader(kv: Deno.Kv): KvReader {
  const store = lockTolerantKv(kv);
  let pending = new Map<string, Pending>();
  let scheduled = false;
  let inFlight = false;

  function send(chunk: Pending[]): Promise<void> {
    return store.getMany(chunk.map((p) => p.key)).then(
      (entries) =>
        chunk.forEach((p, j) => {
          // Callers of one key share its entry, so it is frozen: none can change another's.
          const entry = deepFreeze(entries[j]);
          p.waiters.forEach((w) => w.resolve(entry));
        }),
      (err) => chunk.forEach((p) => p.waiters.forEach((w) => w.reject(err))),
    );
  }

  function flush() {
    scheduled = false;
    const batch = [...pending.values()];
    pending = new Map();
    inFlight = true;
    const chunks: Promise<void>[] = [];
    for (let i = 0; i < batch.length; i += MAX_KEYS) {
      chunks.push(send(batch.slice(i, i + MAX_KEYS)));
    }
    void Promise.all(chunks).then(() => {
      inFlight = false;
      if (pending.size > 0) flush();
    });
  }

  return <T>(key: Deno.KvKey) =>
    new Promise<Deno.KvEntryMaybe<T>>((resolve, reject) => {
      const id = keyId(key);
      const waiter = { resolve: resolve as Waiter["resolve"], reject };
      const known = pending.get(id);
      if (known) known.waiters.push(waiter);
      else pending.set(id, { key, waiters: [waiter] });
      // Reads of this turn go together; while a batch is in flight, the next one waits for it.
      if (!scheduled && !inFlight) {
        scheduled = true;
        queueMicrotask(flush);
      }
    });
}

/** Freezes plain data in place (bytes cannot be frozen; the hot-path records hold none). */
function deepFreeze<T>(value: T): T {
  if (
    value !== null && typeof value === "object" && !ArrayBuffer.isView(value) &&
    !Object.isFrozen(value)
  ) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
