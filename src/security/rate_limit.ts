/**
 * Per-user request budgets kept in KV, so every instance sharing the store enforces one limit.
 *
 * Each (bucket, user) holds a single number, the GCRA "theoretical arrival time": a budget of
 * `count` requests per `seconds` refills one request every seconds/count, and a full budget
 * may be spent at once. Updates are check-and-set on the entry's versionstamp, retried (a
 * bounded number of times) when another request or instance wrote it first. Time comes from
 * the injected clock.
 */
import { AppError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import { kvKeys } from "../kv_keys.ts";
import { lockTolerantKv } from "../kv_retry.ts";

export type RateBucket = "connect" | "tool";

/** `count` requests per `seconds`; a count of 0 turns the limit off. */
export interface RateLimit {
  count: number;
  seconds: number;
}

export type RateLimits = Record<RateBucket, RateLimit>;

interface Stored {
  /** Epoch ms at which the budget would be full again. */
  tat: number;
}

const CONTENTION_ATTEMPTS = 32;
/** Budgets whose last committed entry a limiter remembers. */
const COMMITTED_MAX = 10_000;
// Float slack: `count` requests of seconds/count each must fit exactly into the window.
const EPSILON_MS = 0.001;

const WHAT: Record<RateBucket, string> = {
  connect: "connection attempts",
  tool: "tool calls",
};

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class RateLimiter {
  readonly #kv: Deno.Kv;
  /** Takers waiting for the one transaction in flight for their (bucket, user), in order. */
  readonly #queues = new Map<string, Waiter[]>();
  /**
   * What this limiter last committed for each budget. The next transaction checks against it
   * instead of reading first; if another instance wrote since, the check fails and the entry is
   * read afresh, so a stale copy costs a retry, never a wrong grant.
   */
  readonly #committed = new Map<string, Deno.KvEntry<Stored>>();

  constructor(kv: Deno.Kv, private clock: Clock, private limits: RateLimits) {
    this.#kv = lockTolerantKv(kv);
  }

  /**
   * Spends one request of the user's budget for `bucket`, or throws `rate_limited` with the
   * number of seconds after which one more request is allowed.
   *
   * Concurrent takes of one budget in this process are grouped: while one check-and-set is in
   * flight the next takers queue, and the next transaction spends for all of them at once
   * (admitting, in arrival order, as many as the budget holds). Without that, takers of one key
   * would mostly fail each other's versionstamp checks and retry; with it, one KV round trip
   * serves a whole burst, and the count stays exact because every grant is still committed
   * against the versionstamp it was computed from (other instances included).
   */
  take(bucket: RateBucket, user: string): Promise<void> {
    const limit = this.limits[bucket];
    if (limit.count <= 0) return Promise.resolve();
    const id = `${bucket}\u0000${user}`;
    return new Promise<void>((resolve, reject) => {
      const queue = this.#queues.get(id);
      if (queue) {
        queue.push({ resolve, reject });
        return;
      }
      const fresh = [{ resolve, reject }];
      this.#queues.set(id, fresh);
      void this.#drain(id, bucket, user, limit, fresh);
    });
  }

  async #drain(id: string, bucket: RateBucket, user: string, limit: RateLimit, queue: Waiter[]) {
    while (queue.length > 0) {
      const batch = queue.splice(0);
      try {
        const granted = await this.#spend(id, bucket, user, limit, batch.length);
        batch.slice(0, granted).forEach((w) => w.resolve());
        if (granted < batch.length) {
          const refusal = await this.#refusal(bucket, user, limit);
          batch.slice(granted).forEach((w) => w.reject(refusal));
        }
      } catch (err) {
        batch.forEach((w) => w.reject(err));
      }
    }
    this.#queues.delete(id);
  }

  /** Spends up to `wanted` requests in one committed transaction; returns how many it spent. */
  async #spend(id: string, bucket: RateBucket, user: string, limit: RateLimit, wanted: number) {
    const windowMs = limit.seconds * 1000;
    const interval = windowMs / limit.count;
    const key = kvKeys.rateLimit(bucket, user);
    for (let attempt = 0; attempt < CONTENTION_ATTEMPTS; attempt++) {
      const cached = attempt === 0 ? this.#committed.get(id) : undefined;
      this.#committed.delete(id);
      const entry: Deno.KvEntryMaybe<Stored> = cached ?? await this.#kv.get<Stored>(key);
      const now = this.clock().getTime();
      const tat = clampedTat(entry.value, now, windowMs);
      // Each request moves tat on by one interval; it fits while tat stays within the window.
      const fits = Math.floor((now + windowMs + EPSILON_MS - tat) / interval);
      const granted = Math.max(0, Math.min(wanted, fits));
      if (granted === 0) return 0;
      const next = tat + granted * interval;
      const res = await this.#kv.atomic()
        .check(entry)
        // expireIn only garbage-collects: a budget that is full again needs no entry.
        .set(key, { tat: next } satisfies Stored, { expireIn: Math.ceil(next - now) + 1000 })
        .commit();
      if (res.ok) {
        if (this.#committed.size >= COMMITTED_MAX) {
          this.#committed.delete(this.#committed.keys().next().value!);
        }
        this.#committed.set(id, { key, value: { tat: next }, versionstamp: res.versionstamp });
        return granted;
      }
      // A failed check against our own last write only means another instance wrote: no wait.
      if (cached) continue;
      await new Promise((r) => setTimeout(r, 1 + Math.random() * 4));
    }
    throw new AppError(
      "rate_limited",
      `Too many ${WHAT[bucket]} at the same moment: try again in a second.`,
      { retryAfter: 1, detail: { bucket, contention: true } },
    );
  }

  /** The refusal for a budget that is spent, with when the next request will fit. */
  async #refusal(bucket: RateBucket, user: string, limit: RateLimit): Promise<AppError> {
    const windowMs = limit.seconds * 1000;
    const entry = await this.#kv.get<Stored>(kvKeys.rateLimit(bucket, user));
    const now = this.clock().getTime();
    const next = clampedTat(entry.value, now, windowMs) + windowMs / limit.count;
    const retryAfter = Math.max(1, Math.ceil((next - windowMs - now) / 1000));
    return new AppError(
      "rate_limited",
      `Too many ${WHAT[bucket]}: at most ${limit.count} ${
        per(limit.seconds)
      } for each user. Try again in ${duration(retryAfter)}.`,
      { retryAfter, detail: { bucket } },
    );
  }
}

/**
 * The stored tat, clamped: a budget stored under a longer window (before a config change)
 * cannot lock a user out for longer than the current window.
 */
function clampedTat(stored: Stored | null, now: number, windowMs: number): number {
  const tat = typeof stored?.tat === "number" ? stored.tat : now;
  return Math.min(Math.max(tat, now), now + windowMs);
}

function per(seconds: number): string {
  return "per " + duration(seconds).replace(/^an? /, "");
}

function duration(seconds: number): string {
  if (seconds % 3600 === 0) return plural(seconds / 3600, "hour");
  if (seconds % 60 === 0 && seconds >= 60) return plural(seconds / 60, "minute");
  return plural(seconds, "second");
}

function plural(n: number, unit: string): string {
  return n === 1 ? (unit === "hour" ? "an hour" : `a ${unit}`) : `${n} ${unit}s`;
}
