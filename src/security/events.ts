/**
 * Security events (DESIGN.md 7.8): stored in KV for the retention period and written to the
 * log. Never a secret: only ids, codes and outcomes.
 */
import { kvKeys } from "../kv_keys.ts";
import { timeOrderedId } from "../ids.ts";
import type { Logger } from "../log.ts";
import type { Clock } from "../clock.ts";
import { type ErrorCode, errorCodeOf } from "../errors.ts";

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
  "webhook",
] as const;
export type EventType = typeof EVENT_TYPES[number];
export type EventSource = "http" | "mcp" | "cli";

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
}

/** The approval fields an event may carry. */
export type ApprovalFields = Pick<
  SecurityEvent,
  "change_request" | "approver" | "signature_fingerprint"
>;

export type EventInput =
  & Pick<SecurityEvent, "type" | "outcome" | "user" | "source">
  & Partial<Pick<SecurityEvent, "connection_id" | "issue_key" | "error_code" | "request_id">>
  & ApprovalFields;

export interface EventFilter {
  type?: EventType;
  user?: string;
  since?: Date;
  limit?: number;
  /** Only events of gated actions under this change request. */
  cr?: string;
}

export class EventLog {
  constructor(
    private kv: Deno.Kv,
    private log: Logger,
    private clock: Clock,
    private retentionDays: number,
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
    this.log.info("security_event", { event });
    await this.kv.set(kvKeys.event(event.id), event, {
      expireIn: this.retentionDays * 86_400_000,
    });
    return event;
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

  /** Newest first. Retention is also enforced here, since KV expiry is not exact. */
  async list(filter: EventFilter = {}): Promise<SecurityEvent[]> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
    const oldest = this.clock().getTime() - this.retentionDays * 86_400_000;
    const since = Math.max(oldest, filter.since?.getTime() ?? 0);
    const out: SecurityEvent[] = [];
    const iter = this.kv.list<SecurityEvent>({ prefix: kvKeys.allEvents() }, {
      reverse: true,
      batchSize: 500,
    });
    for await (const entry of iter) {
      const e = entry.value;
      if (Date.parse(e.time) < since) break;
      if (filter.type && e.type !== filter.type) continue;
      if (filter.user && e.user !== filter.user) continue;
      if (filter.cr && e.change_request !== filter.cr) continue;
      out.push(e);
      if (out.length >= limit) break;
    }
    return out;
  }
}

function approvalFields(input: ApprovalFields): ApprovalFields {
  const out: ApprovalFields = {};
  if (input.change_request) out.change_request = input.change_request;
  if (input.approver) out.approver = input.approver;
  if (input.signature_fingerprint) out.signature_fingerprint = input.signature_fingerprint;
  return out;
}
