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
// Float slack: `count` requests of seconds/count each must fit exactly into the window.
const EPSILON_MS = 0.001;

const WHAT: Record<RateBucket, string> = {
  connect: "connection attempts",
  tool: "tool calls",
};

export class RateLimiter {
  readonly #kv: Deno.Kv;

  constructor(kv: Deno.Kv, private clock: Clock, private limits: RateLimits) {
    this.#kv = lockTolerantKv(kv);
  }

  /**
   * Spends one request of the user's budget for `bucket`, or throws `rate_limited` with the
   * number of seconds after which one more request is allowed.
   */
  async take(bucket: RateBucket, user: string): Promise<void> {
    const limit = this.limits[bucket];
    if (limit.count <= 0) return;
    const windowMs = limit.seconds * 1000;
    const interval = windowMs / limit.count;
    const key = kvKeys.rateLimit(bucket, user);
    for (let attempt = 0; attempt < CONTENTION_ATTEMPTS; attempt++) {
      const entry = await this.#kv.get<Stored>(key);
      const now = this.clock().getTime();
      const stored = typeof entry.value?.tat === "number" ? entry.value.tat : now;
      // Clamped: a budget stored under a longer window (before a config change) cannot lock
      // a user out for longer than the current window.
      const tat = Math.min(Math.max(stored, now), now + windowMs);
      const next = tat + interval;
      if (next - now > windowMs + EPSILON_MS) {
        const retryAfter = Math.max(1, Math.ceil((next - windowMs - now) / 1000));
        throw new AppError(
          "rate_limited",
          `Too many ${WHAT[bucket]}: at most ${limit.count} ${
            per(limit.seconds)
          } for each user. Try again in ${duration(retryAfter)}.`,
          { retryAfter, detail: { bucket } },
        );
      }
      const res = await this.#kv.atomic()
        .check(entry)
        // expireIn only garbage-collects: a budget that is full again needs no entry.
        .set(key, { tat: next } satisfies Stored, { expireIn: Math.ceil(next - now) + 1000 })
        .commit();
      if (res.ok) return;
      await new Promise((r) => setTimeout(r, 1 + Math.random() * 4));
    }
    throw new AppError(
      "rate_limited",
      `Too many ${WHAT[bucket]} at the same moment: try again in a second.`,
      { retryAfter: 1, detail: { bucket, contention: true } },
    );
  }
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
