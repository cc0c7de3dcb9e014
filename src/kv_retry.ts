/**
 * Two processes (or two handles) on one local, SQLite-backed KV file contend for its write
 * lock, and Deno KV then fails the write with `database is locked` instead of waiting. Such a
 * write never happened (SQLite rolls the transaction back), so it is safe to send again; this
 * wrapper does that with a small jittered backoff, a bounded number of times, around every
 * commit (atomic, set, delete) and every read. Any other error passes through untouched.
 */

/** Attempts in all (the first try included); the backoff totals about a second at most. */
const MAX_ATTEMPTS = 12;
const BASE_DELAY_MS = 2;
const MAX_DELAY_MS = 120;

const WRAPPED = Symbol("sosvault.lockTolerantKv");

export function isDatabaseLocked(err: unknown): boolean {
  return err instanceof Error && /database is (locked|busy)/i.test(err.message);
}

function backoffMs(attempt: number): number {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  // Full jitter: two writers that collided must not retry in lockstep.
  return ceiling / 2 + Math.random() * ceiling / 2;
}

/** Runs `op`, again after a short random pause while it fails with `database is locked`. */
export async function retryOnLocked<T>(
  op: () => Promise<T>,
  attempts = MAX_ATTEMPTS,
): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (!isDatabaseLocked(err) || attempt + 1 >= attempts) throw err;
      await new Promise((r) => setTimeout(r, backoffMs(attempt)));
    }
  }
}

/**
 * The same KV handle, with commits and reads retried on `database is locked`. Idempotent:
 * wrapping a wrapped handle returns it unchanged, so every store can wrap what it is given.
 */
export function lockTolerantKv(kv: Deno.Kv): Deno.Kv {
  if ((kv as unknown as Record<symbol, unknown>)[WRAPPED]) return kv;
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === WRAPPED) return true;
      switch (prop) {
        case "get":
          return (key: Deno.KvKey, options?: { consistency?: Deno.KvConsistencyLevel }) =>
            retryOnLocked(() => target.get(key, options));
        case "getMany":
          return (keys: Deno.KvKey[], options?: { consistency?: Deno.KvConsistencyLevel }) =>
            retryOnLocked(() => target.getMany(keys, options));
        case "set":
          return (key: Deno.KvKey, value: unknown, options?: { expireIn?: number }) =>
            retryOnLocked(() => target.set(key, value, options));
        case "delete":
          return (key: Deno.KvKey) => retryOnLocked(() => target.delete(key));
        case "atomic":
          return () => lockTolerantAtomic(target.atomic());
        case "list":
          return <T>(selector: Deno.KvListSelector, options: Deno.KvListOptions = {}) =>
            new LockTolerantListIterator<T>(target, selector, options);
      }
      const value = Reflect.get(target, prop, target);
      // Deno.Kv keeps its resource in a private field: methods must run on the real handle.
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function lockTolerantAtomic(op: Deno.AtomicOperation): Deno.AtomicOperation {
  const commit = op.commit.bind(op);
  // An atomic operation may be committed again: its checks and mutations are kept as built.
  op.commit = () => retryOnLocked(commit);
  return op;
}

/** A list that, when a page read fails with `database is locked`, resumes from its cursor. */
class LockTolerantListIterator<T> implements AsyncIterableIterator<Deno.KvEntry<T>> {
  #inner: Deno.KvListIterator<T>;
  #yielded = 0;
  #lastCursor: string | undefined;

  constructor(
    private kv: Deno.Kv,
    private selector: Deno.KvListSelector,
    private options: Deno.KvListOptions,
  ) {
    this.#inner = kv.list<T>(selector, options);
  }

  get cursor(): string {
    return this.#inner.cursor;
  }

  async next(): Promise<IteratorResult<Deno.KvEntry<T>, undefined>> {
    for (let attempt = 0;; attempt++) {
      try {
        const r = await this.#inner.next();
        if (!r.done) {
          this.#yielded++;
          this.#lastCursor = this.#inner.cursor;
        }
        return r;
      } catch (err) {
        if (!isDatabaseLocked(err) || attempt + 1 >= MAX_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, backoffMs(attempt)));
        const limit = this.options.limit === undefined
          ? undefined
          : this.options.limit - this.#yielded;
        if (limit === 0) return { done: true, value: undefined };
        this.#inner = this.kv.list<T>(this.selector, {
          ...this.options,
          limit,
          cursor: this.#lastCursor ?? this.options.cursor,
        });
      }
    }
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Deno.KvEntry<T>> {
    return this;
  }
}
