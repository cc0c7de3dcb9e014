/** The services the adapters (HTTP, MCP, CLI) are thin layers over, built once in main.ts. */
import type { Config } from "./config.ts";
import type { Clock } from "./clock.ts";
import type { Logger, SecretRegistry } from "./log.ts";
import type { ConnectionService } from "./connections/service.ts";
import type { EventLog } from "./security/events.ts";
import type { UserStore } from "./users/users.ts";
import type { SecretGuard } from "./security/secret_guard.ts";
import type { AttachmentService } from "./attachments/service.ts";
import type { ConnectLinks } from "./connect/links.ts";
import type { Keyring } from "./vault/cipher.ts";
import type { SosService } from "./sos/report.ts";
import type { FetchService } from "./sos/fetch.ts";
import type { ConsentService } from "./sos/consent.ts";
import type { RateLimiter } from "./security/rate_limit.ts";
import type { ApprovalGate } from "./approval/gate.ts";
import type { WebhookReceiver } from "./approval/webhook.ts";
import type { VaultSession } from "./vault/vault_source.ts";
import type { OidcAuth } from "./auth/oidc.ts";

export interface Services {
  config: Config;
  kv: Deno.Kv;
  clock: Clock;
  log: Logger;
  /** Secrets the process holds right now; the log pipeline masks each of them. */
  secrets: SecretRegistry;
  users: UserStore;
  connections: ConnectionService;
  events: EventLog;
  attachments: AttachmentService;
  connectLinks: ConnectLinks;
  secretGuard: SecretGuard;
  keyring: Keyring;
  sos: SosService;
  fetch: FetchService;
  consents: ConsentService;
  /** Per-user request budgets in KV (connection attempts, MCP tool calls). */
  rateLimiter: RateLimiter;
  /** Change approval before generate_sosreport (a no-op when SOSVAULT_APPROVAL=off). */
  approval: ApprovalGate;
  /** Signed Jira webhooks; null unless SOSVAULT_WEBHOOK_SECRET_FILE is set. */
  webhooks: WebhookReceiver | null;
  version: string;
  /** SOSVAULT_KEY_SOURCE=vault: the session that fetched the key and keeps its token alive. */
  vault?: VaultSession;
  /** Set exactly when SOSVAULT_AUTH=oidc. */
  oidc?: OidcAuth;
}
