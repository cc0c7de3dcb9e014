/**
 * Per-user request budgets kept in KV, so every instance sharing the store enforces one limit.
 *
 * Each (bucket, user) holds a single number, the GCRA "theoretical arrival time": a budget of
 * `count` requests per `seconds` refills one request every seconds/count, and a full budget
 * may be spent at once. Updates are check-and-set on the entry's versionstamp, retried (a
 * bounded number of times) when another request or instance wrote it first. Time comes from
 * the injected clock.
 *
 * A budget with lots of slack (a generous limit, or one far from spent) would still cost a KV
 * commit on every busy instant of every call. So when what is left dwarfs the demand, a commit
 * may spend a few requests more than its takers need and keep them as a short lease that the
 * next takers in this process use without a round trip. A lease is committed like any grant,
 * so every instance together never admits more than the budget; it is at most 1/LEASE_SHARE
 * of what the budget still holds and lives LEASE_MS, so a budget near its end (and any small
 * budget, such as the connect brake) is spent exactly, one committed request at a time, and an
 * idle lease wastes no more than a sliver of a budget that was nowhere near its limit.
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
/** A lease is never more than this share of the requests the budget still holds. */
const LEASE_SHARE = 256;
/** How long spare requests stay usable; the expired rest stays spent. */
const LEASE_MS = 100;

const WHAT: Record<RateBucket, string> = {
  connect: "connection attempts",
  tool: "tool calls",
};

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/** Requests already committed to the store and not yet handed to a taker. */
interface Lease {
  spare: number;
  /** Clock ms after which the spare requests are not used. */
  until: number;
  /** Takes of this budget since its last commit: the demand the next lease is sized to. */
  demand: number;
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
  readonly #leases = new Map<string, Lease>();

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
    const lease = this.#leases.get(id);
    if (lease) {
      lease.demand++;
      if (fromLease(lease, 1, this.clock().getTime()) === 1) return Promise.resolve();
    }
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
      // The commit just made may have leased spares that cover those who queued behind it.
      const lease = this.#leases.get(id);
      const leased = lease ? fromLease(lease, queue.length, this.clock().getTime()) : 0;
      queue.splice(0, leased).forEach((w) => w.resolve());
      if (queue.length === 0) break;
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
      const spare = Math.min(
        this.#spareWanted(id, wanted),
        Math.floor((fits - granted) / LEASE_SHARE),
      );
      const next = tat + (granted + spare) * interval;
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
        this.#lease(id, spare, now);
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

  /**
   * How many spare requests the next commit should lease: none for a budget not used lately
   * (a caller now and then gains nothing from a lease), the demand since the last commit when
   * the last lease outlived it, twice that when it ran out first, so a busy budget quickly
   * needs few commits while an idle lease costs at most about one lease period of its demand.
   */
  #spareWanted(id: string, wanted: number): number {
    const lease = this.#leases.get(id);
    if (!lease || this.clock().getTime() >= lease.until + LEASE_MS) return 0;
    const demand = Math.max(wanted, lease.demand);
    return lease.spare === 0 ? 2 * demand : demand;
  }

  #lease(id: string, spare: number, now: number) {
    // Kept even when empty: demand is counted from here, so a busy budget leases next time.
    this.#leases.delete(id);
    if (this.#leases.size >= COMMITTED_MAX) this.#leases.delete(this.#leases.keys().next().value!);
    this.#leases.set(id, { spare, until: now + LEASE_MS, demand: 0 });
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
/** Hands out up to `wanted` requests of a lease still live at `now`; returns how many. */
function fromLease(lease: Lease, wanted: number, now: number): number {
  if (now >= lease.until) return 0;
  const n = Math.min(wanted, lease.spare);
  lease.spare -= n;
  return n;
}

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
