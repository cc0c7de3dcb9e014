/**
 * One-time connect links (DESIGN.md section 5): `{SOSVAULT_PUBLIC_URL}/connect/{code}`, bound to
 * the user who asked for it, valid for 10 minutes, usable once. The code is the capability:
 * whoever submits the page with it creates a connection that belongs to the link's user, which
 * is why the page names that user before anything is submitted.
 *
 * Only SHA-256(code) is stored. Every state change is one `kv.atomic()` guarded by the entry's
 * versionstamp, so on every instance sharing the KV a code is submitted by one request at a
 * time and consumed at most once. Expiry is decided by comparing `expires_at` with the clock;
 * `expireIn` only garbage-collects, and keeps the record (a tombstone once used) past expiry
 * so a late visitor is told "expired" or "already used" rather than "unknown".
 */
import { AppError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { RequestContext } from "../context.ts";
import { newConnectCode } from "../ids.ts";
import { kvKeys } from "../kv_keys.ts";
import { toHex } from "../vault/cipher.ts";

export interface ConnectLinkRecord {
  user: string;
  base_url: string | null;
  created_at: string;
  expires_at: string;
  /** Failed submissions so far. */
  attempts: number;
}

/** The failed submissions a link survives; the last one burns it. */
export const MAX_CONNECT_ATTEMPTS = 5;

type LinkState =
  | "open"
  /** A submission is running: one at a time per code, on every instance (versionstamp check). */
  | "pending"
  | "used"
  | "burned";

interface StoredLink extends ConnectLinkRecord {
  state: LinkState;
  used_at: string | null;
}

export type ConnectLinkRefusal = "unknown" | "expired" | "used" | "burned" | "busy";

/** Why a code cannot be used, so the page can pick its status and wording. */
export class ConnectLinkError extends AppError {
  readonly reason: ConnectLinkRefusal;
  constructor(reason: ConnectLinkRefusal, message: string) {
    super(reason === "busy" ? "conflict" : "not_found", message);
    this.name = "ConnectLinkError";
    this.reason = reason;
  }
}

// newConnectCode() makes 32 base64url characters; anything else is unknown without a KV read.
const CODE_SHAPE = /^[A-Za-z0-9_-]{32}$/;
const MAX_BASE_URL_LENGTH = 2048;
// Records outlive their expiry by this much so late visits get a precise answer.
const TOMBSTONE_GRACE_MS = 86_400_000;
const COMMIT_RETRIES = 10;

export async function hashConnectCode(code: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(code));
  return toHex(new Uint8Array(digest));
}

export class ConnectLinks {
  constructor(
    private kv: Deno.Kv,
    private clock: Clock,
    private publicUrl: () => string,
    private ttlMs = 600_000,
  ) {}

  /**
   * A one-time link bound to the calling user, valid 10 minutes. Only sha256(code) is stored.
   * `baseUrl` only pre-fills the form (the submission is validated like any other intake); pass
   * it through `ConnectionService.validateBaseUrl` first to refuse a bad one early.
   */
  async create(
    ctx: RequestContext,
    baseUrl?: string,
  ): Promise<{ connect_url: string; expires_at: string }> {
    if (baseUrl !== undefined && !isPlausibleUrl(baseUrl)) {
      throw new AppError(
        "invalid_input",
        "base_url is not a valid URL: give the Jira base URL, for example https://jira.example.com",
      );
    }
    const code = newConnectCode();
    const key = kvKeys.connectCode(await hashConnectCode(code));
    const now = this.clock();
    const record: StoredLink = {
      user: ctx.user,
      base_url: baseUrl ?? null,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + this.ttlMs).toISOString(),
      attempts: 0,
      state: "open",
      used_at: null,
    };
    const res = await this.kv.atomic()
      .check({ key, versionstamp: null })
      .set(key, record, { expireIn: this.ttlMs + TOMBSTONE_GRACE_MS })
      .commit();
    if (!res.ok) {
      // 192 random bits do not collide; if they did, refusing beats sharing a record.
      throw new AppError("unexpected_error", "Could not create a connect link: try again");
    }
    const base = this.publicUrl().replace(/\/+$/, "");
    return { connect_url: `${base}/connect/${code}`, expires_at: record.expires_at };
  }

  /**
   * For GET: the record, or a ConnectLinkError (`not_found`) saying whether the code is
   * unknown, expired, already used or burned. The answer for a code says nothing about any
   * other code or user.
   */
  async open(code: string): Promise<ConnectLinkRecord> {
    const { entry } = await this.read(code);
    return publicRecord(this.usable(entry.value));
  }

  /**
   * Runs `run` (the connect) for the link's user and consumes the code only when it succeeds.
   * A failure counts an attempt; the MAX_CONNECT_ATTEMPTS-th burns the code. While one
   * submission runs, others are refused (`busy`), on every instance sharing the KV, so a code
   * can never create two connections.
   */
  async redeem<T>(code: string, run: (record: ConnectLinkRecord) => Promise<T>): Promise<T> {
    const claimed = await this.claim(code);
    let result: T;
    try {
      result = await run(publicRecord(claimed.value));
    } catch (err) {
      // The connect's own error is the answer; an unsettled link stays pending until it expires.
      await this.settle(claimed.key, "failure").catch(() => {});
      throw err;
    }
    await this.settle(claimed.key, "success");
    return result;
  }

  /** Moves open → pending with a versionstamp check: exactly one submission wins the code. */
  private async claim(code: string) {
    const first = await this.read(code);
    let entry = first.entry;
    for (let i = 0; i < COMMIT_RETRIES; i++) {
      const record = this.usable(entry.value);
      if (record.state === "pending") throw busy();
      const pending: StoredLink = { ...record, state: "pending" };
      const res = await commit(
        this.kv.atomic().check(entry).set(first.key, pending, { expireIn: this.gcAfter(pending) }),
      );
      if (res.ok) return { key: first.key, value: pending };
      entry = await this.kv.get<StoredLink>(first.key);
    }
    throw busy();
  }

  private async settle(key: Deno.KvKey, outcome: "success" | "failure"): Promise<void> {
    for (let i = 0; i < COMMIT_RETRIES; i++) {
      const entry = await this.kv.get<StoredLink>(key);
      const next = outcome === "success" ? this.asUsed(entry.value) : asFailed(entry.value);
      if (!next) return;
      const res = await commit(
        this.kv.atomic().check(entry).set(key, next, { expireIn: this.gcAfter(next) }),
      );
      if (res.ok) return;
    }
    if (outcome === "success") {
      throw new AppError(
        "unexpected_error",
        "The connection was created, but the connect link could not be closed: check your connections, and tell the operator",
      );
    }
  }

  /** Security: a used link is kept as a tombstone, so a replay fails on every instance. */
  private asUsed(current: StoredLink | null): StoredLink {
    // No record only when it was garbage-collected while the submission ran: write a tombstone.
    const base = current ?? { ...placeholder(), expires_at: this.clock().toISOString() };
    return { ...base, state: "used", used_at: this.clock().toISOString() };
  }

  private async read(code: string) {
    // Security: a malformed code is refused before hashing or any KV read.
    if (!CODE_SHAPE.test(code)) throw unknownConnectLink();
    const key = kvKeys.connectCode(await hashConnectCode(code));
    const entry = await this.kv.get<StoredLink>(key);
    return { key, entry };
  }

  /** Security: expiry comes from the clock, never from whether KV still holds the record. */
  private usable(record: StoredLink | null): StoredLink {
    if (!record) throw unknownConnectLink();
    if (record.state === "used") {
      throw new ConnectLinkError(
        "used",
        "This connect link has already been used: each link works once. If you did not connect just now, someone else used it: tell your operator. For a new connection, ask your assistant for a new link.",
      );
    }
    if (this.clock().getTime() >= Date.parse(record.expires_at)) {
      throw new ConnectLinkError(
        "expired",
        `This connect link has expired (links are valid for ${
          Math.round(this.ttlMs / 60_000)
        } minutes): ask your assistant for a new one.`,
      );
    }
    if (record.state === "burned") {
      throw new ConnectLinkError(
        "burned",
        `This connect link was locked after ${MAX_CONNECT_ATTEMPTS} failed attempts: ask your assistant for a new one.`,
      );
    }
    return record;
  }

  private gcAfter(record: StoredLink): number {
    const left = Date.parse(record.expires_at) - this.clock().getTime();
    return Math.max(left, 0) + TOMBSTONE_GRACE_MS;
  }
}

function publicRecord(r: StoredLink): ConnectLinkRecord {
  return {
    user: r.user,
    base_url: r.base_url,
    created_at: r.created_at,
    expires_at: r.expires_at,
    attempts: r.attempts,
  };
}

/**
 * Commits, treating SQLite's transient "database is locked" (instances sharing one local KV
 * file) like a lost versionstamp race: the caller re-reads and decides again.
 */
async function commit(op: Deno.AtomicOperation): Promise<{ ok: boolean }> {
  try {
    return await op.commit();
  } catch (err) {
    if (!(err instanceof Error) || !/database is locked|database is busy/i.test(err.message)) {
      throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    return { ok: false };
  }
}

function asFailed(current: StoredLink | null): StoredLink | null {
  if (!current || current.state === "used") return null;
  const attempts = current.attempts + 1;
  return { ...current, attempts, state: attempts >= MAX_CONNECT_ATTEMPTS ? "burned" : "open" };
}

function placeholder(): StoredLink {
  return {
    user: "",
    base_url: null,
    created_at: new Date(0).toISOString(),
    expires_at: new Date(0).toISOString(),
    attempts: 0,
    state: "used",
    used_at: null,
  };
}

/** The refusal for a code that is malformed or was never issued (or is long gone). */
export function unknownConnectLink(): ConnectLinkError {
  return new ConnectLinkError(
    "unknown",
    "This connect link is not valid: check that you opened the whole link, or ask your assistant for a new one.",
  );
}

function busy() {
  return new ConnectLinkError(
    "busy",
    "This connect link is being submitted right now (from another tab or window?): wait a few seconds and try again. If this keeps happening, ask your assistant for a new link.",
  );
}

function isPlausibleUrl(s: string): boolean {
  if (s.length === 0 || s.length > MAX_BASE_URL_LENGTH) return false;
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}
