/**
 * Secret rejection on model-visible inputs (DESIGN.md 7.4). One service, called by the MCP
 * adapter on every tool argument tree before any tool runs.
 */
import { AppError } from "../errors.ts";
import type { RequestContext } from "../context.ts";
import type { ConnectionService } from "../connections/service.ts";
import { fingerprint, type Keyring } from "../vault/cipher.ts";
import type { EventLog } from "./events.ts";
import type { Logger } from "../log.ts";
import { cleanRepeatsOf, findSecret, MIN_CANDIDATE, OWN_ID } from "./secret_scan.ts";
import { KnownSecrets } from "./known_secrets.ts";

/** Below this length a string can hold no known secret (neither exactly nor inside it). */
const SHORTEST_SECRET = Math.min(KnownSecrets.MIN_LENGTH, MIN_CANDIDATE);
const SAFE_PATH = /^\$(\.[A-Za-z_][A-Za-z0-9_]{0,40}|\[\d{1,4}\])*$/;

export class SecretGuard {
  constructor(
    private d: { connections: ConnectionService; keyring: Keyring; events: EventLog; log: Logger },
  ) {}

  /**
   * Security: stops tokens, keys and the caller's own PATs from entering tool calls, where
   * they would sit in the model's transcript. The value is never echoed.
   */
  async check(ctx: RequestContext, args: unknown): Promise<void> {
    // Most calls carry only field names and our own ids the detectors passed before; such
    // strings are too short to hold a known secret, or are our ids, which the known-secret
    // checks below skip too. Same verdict, without the walk and its awaits.
    const repeats = cleanRepeatsOf(args);
    if (repeats?.every((s) => s.length < SHORTEST_SECRET || OWN_ID.test(s))) return;
    // Loaded once per call, on the first string that needs it: one KV listing of the user's
    // connections, whose fingerprints serve every string of the arguments.
    let known: Promise<{ matcher: KnownSecrets; exact: Set<string> }> | undefined;
    const load = () =>
      known ??= this.d.connections.knownSecretsOf(ctx.user).then(({ sets, exact }) => ({
        matcher: new KnownSecrets(this.d.keyring, sets),
        exact,
      }));
    const keys = [this.d.keyring.current, this.d.keyring.previous].filter((k) => k !== undefined);
    const isKnownSecret = async (candidate: string) => {
      // Our own ids (connection, job, request) can never be a Jira PAT, and they are in almost
      // every call: skip the KV read and the HMAC for them.
      if (OWN_ID.test(candidate)) return false;
      const { exact } = await load();
      if (exact.size === 0) return false;
      for (const key of keys) if (exact.has(await fingerprint(key, candidate))) return true;
      return false;
    };
    // Security: the caller's own secrets anywhere inside any string (`notes-<PAT>.txt`).
    const searchKnown = async (text: string) => {
      // Field names (`connection_id`) and our own ids are in every call: no KV listing for them.
      if (text.length < KnownSecrets.MIN_LENGTH || OWN_ID.test(text)) return null;
      const { matcher } = await load();
      const r = matcher.search(text);
      return r.found ? "found" as const : r.exhausted ? "exhausted" as const : null;
    };
    const hit = await findSecret(args, isKnownSecret, searchKnown);
    if (!hit) return;
    if (hit.detector === "too_complex") {
      throw new AppError(
        "invalid_input",
        "the arguments are too large or too deeply nested to check: send plain, small values",
      );
    }
    // A key name may itself be the secret: name the field only when it looks like a field name.
    const where = SAFE_PATH.test(hit.path)
      ? ` in ${hit.path.replace(/^\$\.?/, "") || "the arguments"}`
      : "";
    this.d.log.warn("secret_rejected", {
      request_id: ctx.requestId,
      detector: hit.detector,
      length: hit.length,
    });
    await this.d.events.record({
      type: "secret_rejected",
      outcome: "failure",
      user: ctx.user,
      request_id: ctx.requestId,
      source: ctx.source,
      error_code: "secret_rejected",
    });
    const exposed = hit.detector === "known_secret"
      ? " It matches the personal access token of one of your connections, so that token has now been seen by the assistant: revoke it in Jira, and connect again with a new one."
      : "";
    throw new AppError(
      "secret_rejected",
      `The arguments contain what looks like a secret (${hit.detector})${where}. Never paste tokens or keys into the chat: to connect Jira, call jira_connect and enter your token on the page it opens.${exposed}`,
    );
  }
}
