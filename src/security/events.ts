/**
 * Security events (DESIGN.md 7.8): stored in KV for the retention period and written to the
 * log. Never a secret: only ids, codes and outcomes. Stored events form a signed chain
 * (event_chain.ts): appended with a sequence number allocated in the same atomic KV operation
 * that moves the chain's head, pruned behind a signed checkpoint, checked by `verify()`.
 */
import { kvKeys } from "../kv_keys.ts";
import { timeOrderedId } from "../ids.ts";
import type { Logger } from "../log.ts";
import type { Clock } from "../clock.ts";
import { type ErrorCode, errorCodeOf } from "../errors.ts";
import { keyFor, type Keyring, type VaultKey } from "../vault/cipher.ts";
import {
  type ChainMark,
  checkEvent,
  checkMark,
  GENESIS,
  nextChain,
  signEvent,
  signMark,
} from "./event_chain.ts";

export const EVENT_TYPES = [
  "connect",
  "verify",
  "list",
  "attach",
  "revoke",
  "expire",
  "denied",
  "sos_generate",
  "sos_fetch",
  "consent",
  "decrypt_failed",
  "secret_rejected",
  /** Jira's answer quoted the caller's own token; it was redacted and the user told. */
  "secret_in_upstream",
  "webhook",
  "credential_use",
  "secrets_bootstrap_token_expired",
  "secrets_bootstrap_wrapping_reused",
  "event_export_failed",
] as const;
export type EventType = typeof EVENT_TYPES[number];
/** `system`: raised by the server itself (the Vault token's life, the chain). */
export type EventSource = "http" | "mcp" | "cli" | "system";

export interface SecurityEvent {
  id: string;
  time: string;
  type: EventType;
  outcome: "success" | "failure";
  user: string;
  connection_id: string | null;
  issue_key: string | null;
  error_code: ErrorCode | null;
  request_id: string | null;
  source: EventSource;
  /** Change approval (issue 13): set only on gated actions, absent elsewhere. */
  change_request?: string;
  approver?: string;
  signature_fingerprint?: string;
  /** credential_use only: what the decrypted PAT was for. */
  purpose?: CredentialPurpose;
}

/** The approval fields an event may carry. */
export type ApprovalFields = Pick<
  SecurityEvent,
  "change_request" | "approver" | "signature_fingerprint"
>;

/** Why a PAT was decrypted; every decryption is a `credential_use` event with one of these. */
export type CredentialPurpose = "verify" | "list" | "attach" | "rotate" | "approval";

export type EventInput =
  & Pick<SecurityEvent, "type" | "outcome" | "user" | "source">
  & Partial<
    Pick<SecurityEvent, "connection_id" | "issue_key" | "error_code" | "request_id" | "purpose">
  >
  & ApprovalFields;
/** An event as stored: the event, its place in the chain, the key that signed it, the MAC. */
export type StoredEvent = SecurityEvent & { seq: number; kid: string; mac: string };

/** What `verify()` found. `problem` is the first break, in chain order. */
export interface VerifyReport {
  ok: boolean;
  /** Events whose MAC and place in the chain were checked and found intact. */
  verified: number;
  first_seq: number | null;
  last_seq: number | null;
  /** The last pruned seq the checkpoint names (0 when nothing was pruned). */
  checkpoint_seq: number;
  /** Events stored before the log was chained (older versions); not verifiable. */
  unchained: number;
  problem?: {
    kind: "edited" | "deleted" | "reordered" | "inserted" | "unknown_key";
    seq: number;
    message: string;
  };
}

/** Writes with more events than this are split; KV allows 1000 mutations per atomic. */
const MAX_BATCH = 64;
const APPEND_ATTEMPTS = 100;
const DAY_MS = 86_400_000;
/** Optional copy of every appended event (a file or syslog), for a SIEM. */
export type EventExporter = (events: StoredEvent[]) => Promise<void>;

export interface EventFilter {
  type?: EventType;
  user?: string;
  since?: Date;
  limit?: number;
  /** Only events of gated actions under this change request. */
  cr?: string;
}

export class EventLog {
  #pending: { event: SecurityEvent; done: (err?: unknown) => void }[] = [];
  #draining = false;
  #exports: Promise<void> = Promise.resolve();
  /** The head as this process last wrote it; null: read it again (another writer moved it). */
  #head: { mark: ChainMark | null; versionstamp: string | null } | null = null;

  constructor(
    private kv: Deno.Kv,
    private log: Logger,
    private clock: Clock,
    private retentionDays: number,
    /** Signs appended events; without it the log can be listed and verified, not appended to. */
    private keyring?: Keyring,
    private exporter?: EventExporter,
  ) {}

  async record(input: EventInput): Promise<SecurityEvent> {
    const at = this.clock();
    const event: SecurityEvent = {
      id: timeOrderedId(at),
      time: at.toISOString(),
      type: input.type,
      outcome: input.outcome,
      user: input.user,
      connection_id: input.connection_id ?? null,
      issue_key: input.issue_key ?? null,
      error_code: input.error_code ?? null,
      request_id: input.request_id ?? null,
      source: input.source,
      ...approvalFields(input),
    };
    if (input.purpose) event.purpose = input.purpose;
    this.log.info("security_event", { event });
    await new Promise<void>((resolve, reject) => {
      this.#pending.push({ event, done: (err) => (err ? reject(err) : resolve()) });
      this.#drain();
    });
    return event;
  }

  /**
   * Events recorded while a write is in flight go out together in the next atomic operation
   * (group commit): one KV round trip per batch, so the chain costs no more round trips than
   * the unchained log did, however many requests record at once.
   */
  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    (async () => {
      try {
        while (this.#pending.length > 0) {
          const batch = this.#pending.splice(0, MAX_BATCH);
          try {
            const stored = await this.#append(batch.map((b) => b.event));
            for (const b of batch) b.done();
            // In order, one batch at a time, off the request's path.
            if (this.exporter) this.#exports = this.#exports.then(() => this.#export(stored));
          } catch (err) {
            for (const b of batch) b.done(err);
          }
        }
      } finally {
        this.#draining = false;
      }
    })();
  }

  async #export(stored: StoredEvent[]): Promise<void> {
    try {
      await this.exporter!(stored);
    } catch (err) {
      // The KV chain is the record; a SIEM that is down must not stop the service.
      this.log.error("event_export_failed", { error: err, events: stored.length });
    }
  }

  async #append(events: SecurityEvent[]): Promise<StoredEvent[]> {
    if (!this.keyring) throw new Error("this event log was opened without a key: it cannot append");
    const key = this.keyring.current;
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      this.#head ??= await this.#readHead();
      const head = this.#head;
      let seq = head.mark?.seq ?? 0;
      let chain = head.mark?.chain ?? GENESIS;
      // Security: the seq is allocated by the same atomic operation that checks the head's
      // versionstamp, so two processes on one KV store can never write the same seq.
      const op = this.kv.atomic().check({
        key: kvKeys.eventHead(),
        versionstamp: head.versionstamp,
      });
      const stored: StoredEvent[] = [];
      for (const e of events) {
        seq++;
        const record = { ...e, seq, kid: key.kid } as StoredEvent;
        chain = await nextChain(chain, record);
        record.mac = await signEvent(key.events, key.kid, chain);
        op.set(kvKeys.event(seq), record);
        stored.push(record);
      }
      const mark = await this.#mark(key, "head", seq, chain);
      op.set(kvKeys.eventHead(), mark);
      const res = await op.commit();
      if (res.ok) {
        this.#head = { mark, versionstamp: res.versionstamp };
        return stored;
      }
      // Another writer moved the head: read it again, after a short random pause.
      this.#head = null;
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 + attempt * 2)));
    }
    throw new Error("the security event chain kept changing: the event was not recorded");
  }

  async #readHead() {
    const entry = await this.kv.get<ChainMark>(kvKeys.eventHead());
    return { mark: entry.value, versionstamp: entry.versionstamp };
  }

  async #mark(key: VaultKey, label: "head" | "checkpoint", seq: number, chain: string) {
    const m = { seq, chain, kid: key.kid, time: this.clock().toISOString() };
    return { ...m, mac: await signMark(key.events, label, m) };
  }

  /**
   * Records a reference refused because it is not the caller's (or does not exist): such a
   * reference answers exactly like a missing one, and this event is how an operator sees it.
   */
  async denied(
    ctx: { user: string; requestId: string; source: EventSource },
    details: Partial<Pick<SecurityEvent, "connection_id" | "error_code">> = {},
  ): Promise<void> {
    await this.record({
      type: "denied",
      outcome: "failure",
      user: ctx.user,
      request_id: ctx.requestId,
      source: ctx.source,
      error_code: details.error_code ?? "not_found",
      connection_id: details.connection_id,
    });
  }

  /** Runs `fn` and records its outcome as one event: success, or failure with the error's code. */
  async around<T>(input: Omit<EventInput, "outcome">, fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      await this.record({ ...input, outcome: "success" });
      return result;
    } catch (err) {
      await this.record({ ...input, outcome: "failure", error_code: errorCodeOf(err) });
      throw err;
    }
  }

  /** Newest first. Retention is also enforced here, since pruning runs only now and then. */
  async list(filter: EventFilter = {}): Promise<SecurityEvent[]> {
    return (await this.entries(filter)).map(publicEvent);
  }

  /** As `list()`, with each event's seq (unchained events from older versions have seq 0). */
  async entries(filter: EventFilter = {}): Promise<(SecurityEvent & { seq: number })[]> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
    const oldest = this.clock().getTime() - this.retentionDays * DAY_MS;
    const since = Math.max(oldest, filter.since?.getTime() ?? 0);
    const out: (SecurityEvent & { seq: number })[] = [];
    const iter = this.kv.list<StoredEvent>({ prefix: kvKeys.allEvents() }, {
      reverse: true,
      batchSize: 500,
    });
    for await (const entry of iter) {
      const e = entry.value;
      if (Date.parse(e.time) < since) break;
      if (filter.type && e.type !== filter.type) continue;
      if (filter.user && e.user !== filter.user) continue;
      if (filter.cr && e.change_request !== filter.cr) continue;
      out.push({ ...publicEvent(e), seq: typeof e.seq === "number" ? e.seq : 0 });
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * Deletes events older than the retention period, oldest first, and moves the signed
   * checkpoint past them in the same atomic operation, so what is left still verifies from
   * the checkpoint. Security: only a segment that verifies is pruned; a break stops pruning
   * (and is logged), so pruning never seals tampering into a checkpoint.
   */
  async prune(): Promise<number> {
    if (!this.keyring) throw new Error("this event log was opened without a key: it cannot prune");
    const cutoff = this.clock().getTime() - this.retentionDays * DAY_MS;
    let pruned = 0;
    for (let round = 0; round < 10_000; round++) {
      const cp = await this.kv.get<ChainMark>(kvKeys.eventCheckpoint());
      if (cp.value && !await this.#markValid("checkpoint", cp.value)) {
        this.log.error("event_chain_broken", { at: "checkpoint", action: "pruning stopped" });
        return pruned;
      }
      let seq = cp.value?.seq ?? 0;
      let chain = cp.value?.chain ?? GENESIS;
      const take: StoredEvent[] = [];
      for await (
        const e of this.kv.list<StoredEvent>({
          start: kvKeys.event(seq + 1),
          end: kvKeys.eventsEnd(),
        }, { limit: MAX_BATCH })
      ) {
        const r = e.value;
        if (Date.parse(r.time) >= cutoff) break;
        const key = keyFor(this.keyring, r.kid);
        const next = await nextChain(chain, r);
        if (
          e.key[1] !== seq + 1 || r.seq !== seq + 1 || !key ||
          !await checkEvent(key.events, r.kid, next, r.mac)
        ) {
          this.log.error("event_chain_broken", { seq: seq + 1, action: "pruning stopped" });
          break;
        }
        seq++;
        chain = next;
        take.push(r);
      }
      if (take.length === 0) return pruned;
      const op = this.kv.atomic().check(cp);
      for (const r of take) op.delete(kvKeys.event(r.seq));
      op.set(
        kvKeys.eventCheckpoint(),
        await this.#mark(this.keyring.current, "checkpoint", seq, chain),
      );
      if ((await op.commit()).ok) pruned += take.length;
    }
    return pruned;
  }

  async #markValid(label: "head" | "checkpoint", m: ChainMark): Promise<boolean> {
    const key = this.keyring ? keyFor(this.keyring, m.kid) : undefined;
    return !!key && await checkMark(key.events, label, m);
  }

  /**
   * Walks the chain from the checkpoint to the head and reports the first event that was
   * edited, deleted, reordered or inserted. Needs the key (current or previous) of every
   * signature it meets.
   */
  async verify(): Promise<VerifyReport> {
    if (!this.keyring) throw new Error("verifying the event chain needs the master key");
    const report: VerifyReport = {
      ok: true,
      verified: 0,
      first_seq: null,
      last_seq: null,
      checkpoint_seq: 0,
      unchained: 0,
    };
    const fail = (
      kind: NonNullable<VerifyReport["problem"]>["kind"],
      seq: number,
      message: string,
    ) => {
      report.ok = false;
      report.problem = { kind, seq, message };
      return report;
    };
    const keyOf = (kid: unknown) =>
      typeof kid === "string" ? keyFor(this.keyring!, kid) : undefined;
    const unknownKey = (seq: number, kid: unknown, what: string) =>
      fail(
        "unknown_key",
        seq,
        `${what} is signed with key ${String(kid)}, which this process does not hold: set ` +
          "TOKEN_VAULT_MASTER_KEY_PREVIOUS to that key (or run rotate-key with it) to verify it",
      );

    const cp = (await this.kv.get<ChainMark>(kvKeys.eventCheckpoint())).value;
    let seq = 0;
    let chain = GENESIS;
    if (cp) {
      if (!keyOf(cp.kid)) return unknownKey(cp.seq, cp.kid, "the retention checkpoint");
      if (!await this.#markValid("checkpoint", cp)) {
        return fail(
          "edited",
          cp.seq,
          "the retention checkpoint was edited: its signature does not match",
        );
      }
      seq = cp.seq;
      chain = cp.chain;
      report.checkpoint_seq = cp.seq;
    }

    const entries: Deno.KvEntry<StoredEvent>[] = [];
    for await (const e of this.kv.list<StoredEvent>({ prefix: kvKeys.allEvents() })) {
      if (typeof e.key[1] === "string") report.unchained++;
      else entries.push(e);
    }
    const checkAt = async (r: StoredEvent, prev: string) => {
      const key = keyOf(r.kid);
      const next = await nextChain(prev, r);
      return { key, next, ok: !!key && await checkEvent(key.events, r.kid, next, r.mac) };
    };
    for (let i = 0; i < entries.length; i++) {
      const at = entries[i].key[1];
      const r = entries[i].value;
      const expected = seq + 1;
      if (typeof at !== "number" || !Number.isSafeInteger(at) || at < expected) {
        return fail(
          "inserted",
          expected,
          `an entry at position ${String(at)} is not part of the chain (inserted)`,
        );
      }
      if (at > expected) {
        return fail(
          "deleted",
          expected,
          at === expected + 1
            ? `event ${expected} is missing (deleted)`
            : `events ${expected} to ${at - 1} are missing (deleted)`,
        );
      }
      if (r?.seq !== at) {
        const elsewhere = entries.findIndex((e) => e.value?.seq === expected);
        return elsewhere >= 0
          ? fail(
            "reordered",
            expected,
            `event ${expected} is out of order: it is stored at position ${
              String(entries[elsewhere].key[1])
            }, and position ${at} holds event ${String(r?.seq)} (reordered)`,
          )
          : fail(
            "deleted",
            expected,
            `event ${expected} is missing and later events were moved up to hide it (deleted)`,
          );
      }
      const { key, next, ok } = await checkAt(r, chain);
      if (!key) return unknownKey(at, r.kid, `event ${at}`);
      if (!ok) {
        // Was this entry slipped in, the real event n having moved one place on?
        const following = entries[i + 1]?.value;
        if (following?.seq === expected && (await checkAt(following, chain)).ok) {
          return fail(
            "inserted",
            expected,
            `the entry at position ${at} was inserted: it is not part of the chain`,
          );
        }
        return fail(
          "edited",
          expected,
          `event ${expected} was edited: its MAC does not match its content and the events before it`,
        );
      }
      seq = at;
      chain = next;
      report.verified++;
      report.first_seq ??= at;
      report.last_seq = at;
    }

    const head = (await this.kv.get<ChainMark>(kvKeys.eventHead())).value;
    if (!head) {
      if (seq > (cp?.seq ?? 0)) return fail("edited", seq, "the chain's head record was removed");
      return report;
    }
    if (!keyOf(head.kid)) return unknownKey(head.seq, head.kid, "the chain's head");
    if (!await this.#markValid("head", head)) {
      return fail(
        "edited",
        head.seq,
        "the chain's head record was edited: its signature does not match",
      );
    }
    if (head.seq > seq) {
      return fail(
        "deleted",
        seq + 1,
        head.seq === seq + 1
          ? `event ${head.seq} is missing (deleted from the end of the log)`
          : `events ${seq + 1} to ${head.seq} are missing (deleted from the end of the log)`,
      );
    }
    if (head.seq < seq || head.chain !== chain) {
      return fail(
        "inserted",
        head.seq + 1,
        `events after ${head.seq} are not part of the chain (inserted)`,
      );
    }
    return report;
  }

  /**
   * Key rotation: re-signs every chain entry (events, head, checkpoint) written under another
   * key with the current key, after checking it under its own key. The chain values do not
   * change, so each entry is re-signed on its own. A broken chain is not laundered: entries
   * from the first break on keep their old signatures (and `verify()` still reports it).
   */
  async resign(): Promise<{ resigned: number; left: number; broken: boolean }> {
    if (!this.keyring) throw new Error("re-signing the event chain needs the master key");
    const current = this.keyring.current;
    let resigned = 0;
    let broken = false;
    for (const label of ["checkpoint", "head"] as const) {
      const k = label === "head" ? kvKeys.eventHead() : kvKeys.eventCheckpoint();
      for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
        const entry = await this.kv.get<ChainMark>(k);
        const m = entry.value;
        if (!m || m.kid === current.kid) break;
        if (!await this.#markValid(label, m)) {
          broken = true;
          break;
        }
        const re = { seq: m.seq, chain: m.chain, kid: current.kid, time: m.time };
        const signed = { ...re, mac: await signMark(current.events, label, re) };
        if ((await this.kv.atomic().check(entry).set(k, signed).commit()).ok) {
          resigned++;
          if (label === "head") this.#head = null;
          break;
        }
      }
    }
    const cp = (await this.kv.get<ChainMark>(kvKeys.eventCheckpoint())).value;
    let seq = cp?.seq ?? 0;
    let chain = cp?.chain ?? GENESIS;
    let batch: { entry: Deno.KvEntry<StoredEvent>; mac: string }[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const op = this.kv.atomic();
      for (const b of batch) {
        op.check(b.entry).set(b.entry.key, { ...b.entry.value, kid: current.kid, mac: b.mac });
      }
      // A concurrent edit of one of these (there should be none) leaves them for the next run.
      if ((await op.commit()).ok) resigned += batch.length;
      batch = [];
    };
    for await (
      const e of this.kv.list<StoredEvent>({
        start: kvKeys.event(seq + 1),
        end: kvKeys.eventsEnd(),
      })
    ) {
      const r = e.value;
      const key = keyFor(this.keyring, r.kid);
      const next = await nextChain(chain, r);
      if (
        e.key[1] !== seq + 1 || r.seq !== seq + 1 || !key ||
        !await checkEvent(key.events, r.kid, next, r.mac)
      ) {
        broken = true;
        break;
      }
      seq++;
      chain = next;
      if (r.kid === current.kid) continue;
      batch.push({ entry: e, mac: await signEvent(current.events, current.kid, next) });
      if (batch.length >= 90) await flush();
    }
    await flush();
    let left = 0;
    for await (
      const e of this.kv.list<StoredEvent>({ start: kvKeys.event(0), end: kvKeys.eventsEnd() })
    ) {
      if (e.value.kid !== current.kid) left++;
    }
    if (broken) this.log.error("event_chain_broken", { action: "rotation left entries unsigned" });
    return { resigned, left, broken };
  }
}

/** The event as the API shows it: without its place in the chain and its signature. */
function publicEvent(e: StoredEvent | SecurityEvent): SecurityEvent {
  const { seq: _s, kid: _k, mac: _m, ...event } = e as StoredEvent;
  return event;
}

function approvalFields(input: ApprovalFields): ApprovalFields {
  const out: ApprovalFields = {};
  if (input.change_request) out.change_request = input.change_request;
  if (input.approver) out.approver = input.approver;
  if (input.signature_fingerprint) out.signature_fingerprint = input.signature_fingerprint;
  return out;
}
