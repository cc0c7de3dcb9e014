/**
 * Signed Jira webhooks: HMAC-SHA256 over the raw body with a shared secret, compared in
 * constant time, each delivery accepted once within a replay window. An issue-updated event of
 * the CR project records the CR's new status (24 h) and stops runs under a CR that left the
 * approved status, at once.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { z } from "zod";
import { AppError } from "../errors.ts";
import type { ApprovalConfig } from "../config.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { EventLog } from "../security/events.ts";
import type { SosService } from "../sos/report.ts";
import { kvKeys } from "../kv_keys.ts";
import { type CachedCrStatus, CR_CACHE_TTL_MS } from "./gate.ts";

export const MAX_WEBHOOK_BODY = 256 * 1024;
/** A delivery older (or newer) than this, by its timestamp, is refused as a replay. */
export const REPLAY_WINDOW_MS = 5 * 60_000;

export interface WebhookDeps {
  secret: Uint8Array;
  approval: ApprovalConfig;
  kv: Deno.Kv;
  clock: Clock;
  events: EventLog;
  sos: SosService;
  log: Logger;
}

export interface WebhookResult {
  accepted: true;
  change_request?: string;
  status?: string;
  stopped_runs?: number;
}

const payloadSchema = z.object({
  timestamp: z.number().int().positive(),
  webhookEvent: z.string(),
  issue: z.object({
    key: z.string(),
    fields: z.object({ status: z.object({ name: z.string() }).optional() }).loose().optional(),
  }).loose().optional(),
  changelog: z.object({
    items: z.array(z.object({ field: z.string(), toString: z.string().nullish() }).loose())
      .optional(),
  }).loose().optional(),
}).loose();

/** `sha256=<hex>` (X-Hub-Signature) or bare hex (some senders' X-Webhook-Signature). */
function signatureBytes(header: string | null): Buffer | null {
  if (!header) return null;
  const m = /^(?:sha256=)?([0-9a-fA-F]{64})$/.exec(header.trim());
  return m ? Buffer.from(m[1], "hex") : null;
}

export class WebhookReceiver {
  constructor(private d: WebhookDeps) {}

  /** Signs a body as Jira does (tests, and the fake Jira's sender). */
  static sign(secret: Uint8Array, body: Uint8Array): string {
    return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
  }

  async receive(headers: Headers, body: Uint8Array, requestId: string): Promise<WebhookResult> {
    const event = {
      type: "webhook" as const,
      user: "jira-webhook",
      request_id: requestId,
      source: "http" as const,
    };
    const given = signatureBytes(
      headers.get("x-hub-signature") ?? headers.get("x-webhook-signature"),
    );
    const expected = createHmac("sha256", this.d.secret).update(body).digest();
    // Security: constant-time compare of equal-length MACs stops forged deliveries and timing
    // probes of the secret.
    if (!given || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      await this.d.events.record({ ...event, outcome: "failure", error_code: "unauthenticated" });
      throw new AppError("unauthenticated", "the webhook signature is missing or wrong");
    }
    let payload: z.infer<typeof payloadSchema>;
    try {
      const parsed = payloadSchema.safeParse(JSON.parse(new TextDecoder().decode(body)));
      if (!parsed.success) throw new Error("shape");
      payload = parsed.data;
    } catch {
      await this.d.events.record({ ...event, outcome: "failure", error_code: "invalid_input" });
      throw new AppError("invalid_input", "the webhook body is not a Jira webhook event");
    }
    const now = this.d.clock().getTime();
    // Security: a captured delivery cannot be replayed later (timestamp window) or within the
    // window (each delivery's identifier is remembered for twice the window).
    if (Math.abs(now - payload.timestamp) > REPLAY_WINDOW_MS) {
      await this.d.events.record({ ...event, outcome: "failure", error_code: "conflict" });
      throw new AppError("conflict", "the webhook delivery is outside the replay window");
    }
    // Both the sender's delivery id and the body itself: a replay with the id header changed
    // or stripped is still the same signed body.
    const ids = [`body:${createHash("sha256").update(body).digest("hex")}`];
    const header = headers.get("x-atlassian-webhook-identifier")?.trim().slice(0, 200);
    if (header) ids.push(`id:${header}`);
    const op = this.d.kv.atomic();
    for (const id of ids) {
      op.check({ key: kvKeys.webhookSeen(id), versionstamp: null }).set(
        kvKeys.webhookSeen(id),
        { at: new Date(now).toISOString() },
        { expireIn: 2 * REPLAY_WINDOW_MS },
      );
    }
    const fresh = await op.commit();
    if (!fresh.ok) {
      await this.d.events.record({ ...event, outcome: "failure", error_code: "conflict" });
      throw new AppError("conflict", "this webhook delivery was already received");
    }

    const key = payload.issue?.key?.toUpperCase();
    const statusItem = payload.changelog?.items?.findLast((i) => i.field === "status");
    const status = statusItem?.toString ?? payload.issue?.fields?.status?.name;
    const inProject = key && /^[A-Z][A-Z0-9_]*-\d+$/.test(key) &&
      key.startsWith(`${this.d.approval.project}-`);
    if (!inProject || !status || !/^jira:issue_(updated|deleted)$/.test(payload.webhookEvent)) {
      await this.d.events.record({ ...event, outcome: "success" });
      return { accepted: true };
    }
    const effective = payload.webhookEvent === "jira:issue_deleted" ? "(deleted)" : status;
    const cached: CachedCrStatus = {
      status: effective,
      at: new Date(payload.timestamp).toISOString(),
    };
    // Deliveries can arrive out of order: an older one never overwrites what a newer one said.
    const prior = await this.d.kv.get<CachedCrStatus>(kvKeys.approvalCr(key));
    if (!prior.value || Date.parse(prior.value.at) <= payload.timestamp) {
      await this.d.kv.set(kvKeys.approvalCr(key), cached, { expireIn: CR_CACHE_TTL_MS });
    }
    let stopped = 0;
    if (effective !== this.d.approval.status) {
      stopped = this.d.sos.stopUnder(
        key,
        `change request ${key} moved to ${effective}, out of ${this.d.approval.status}`,
      );
    }
    this.d.log.info("approval_cr_status", { change_request: key, status: effective, stopped });
    await this.d.events.record({ ...event, outcome: "success", change_request: key });
    return { accepted: true, change_request: key, status: effective, stopped_runs: stopped };
  }
}
