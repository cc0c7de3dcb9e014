/**
 * Consent to run a sosreport: only a human can give it (DESIGN.md section 6). Either the MCP
 * client shows the user a form and the user accepts, or the user mints a one-time token through
 * the HTTP API (outside MCP) and hands it over. Tokens are stored as hashes, bound to the user,
 * valid ten minutes, and consumed atomically in KV so a replay fails on every instance.
 */
import { AppError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { RequestContext } from "../context.ts";
import { randomId } from "../ids.ts";
import { hashToken } from "../users/users.ts";
import type { EventLog } from "../security/events.ts";

const TTL_MS = 10 * 60_000;
const KEY = (hash: string) => ["sos_consent", hash] as const;

interface ConsentRecord {
  user: string;
  expires_at: string;
}

const HOW =
  "A sosreport runs as root and collects system configuration and logs, so it needs your consent: accept the confirmation your client shows, or create a one-time consent token with `curl -X POST -H 'Authorization: Bearer <your sosvault token>' <sosvault>/api/sos/consents` and pass it as consent_token.";

export class ConsentService {
  constructor(private kv: Deno.Kv, private clock: Clock, private events: EventLog) {}

  async mint(ctx: RequestContext): Promise<{ consent_token: string; expires_at: string }> {
    const token = randomId("sc_", 32);
    const expires_at = new Date(this.clock().getTime() + TTL_MS).toISOString();
    await this.kv.set(
      KEY(await hashToken(token)),
      { user: ctx.user, expires_at } satisfies ConsentRecord,
      {
        expireIn: TTL_MS + 60_000,
      },
    );
    await this.events.record({
      type: "consent",
      outcome: "success",
      user: ctx.user,
      request_id: ctx.requestId,
      source: ctx.source,
    });
    return { consent_token: token, expires_at };
  }

  /** Consumes a token; throws consent_required when it is missing, used, expired or not the caller's. */
  async consume(ctx: RequestContext, token: string): Promise<void> {
    const fail = async (why: string, denied = false) => {
      await this.events.record({
        type: denied ? "denied" : "consent",
        outcome: "failure",
        user: ctx.user,
        request_id: ctx.requestId,
        source: ctx.source,
        error_code: "consent_required",
      });
      return new AppError("consent_required", `${why}. ${HOW}`);
    };
    if (!/^sc_[A-Za-z0-9_-]{40,60}$/.test(token)) {
      throw await fail("consent_token is not a valid consent token");
    }
    const key = KEY(await hashToken(token));
    const entry = await this.kv.get<ConsentRecord>(key);
    // Security: another user's token is answered exactly like an unknown one.
    if (!entry.value) throw await fail("consent_token is unknown or was already used");
    if (entry.value.user !== ctx.user) {
      throw await fail("consent_token is unknown or was already used", true);
    }
    if (this.clock().getTime() >= Date.parse(entry.value.expires_at)) {
      await this.kv.delete(key);
      throw await fail("consent_token has expired (tokens are valid ten minutes)");
    }
    const res = await this.kv.atomic().check(entry).delete(key).commit();
    if (!res.ok) throw await fail("consent_token is unknown or was already used");
  }

  static missing(): AppError {
    return new AppError("consent_required", `No consent was given. ${HOW}`);
  }

  static declined(): AppError {
    return new AppError(
      "consent_required",
      "You declined the confirmation, so no sosreport was run.",
    );
  }
}
