/**
 * Composition: turns a parsed Config into running services. main.ts and the tests both call
 * this, so the tests exercise exactly what production wires together.
 */
import { type Config, ConfigError } from "./config.ts";
import { type Clock, systemClock } from "./clock.ts";
import { createLogger, type Logger, type LogSink, SecretRegistry, stderrSink } from "./log.ts";
import { resolveMasterKey } from "./vault/master_key.ts";
import { VaultSession, vaultStartError, WrappingReusedError } from "./vault/vault_source.ts";
import type { VaultFetch } from "./vault/hashicorp.ts";
import { eventExporter } from "./security/event_export.ts";
import { createKeyring, toBase64, toHex } from "./vault/cipher.ts";
import { checkSentinel } from "./vault/sentinel.ts";
import { ConnectionStore } from "./connections/store.ts";
import { ConnectionService } from "./connections/service.ts";
import { JiraClient } from "./jira/client.ts";
import { httpTransport, inProcessTransport, type JiraTransport } from "./jira/transport.ts";
import { isMockCloudHost, mockModeJira, mockModeJiraCloud } from "./jira/fake/mod.ts";
import { EventLog } from "./security/events.ts";
import { UserStore } from "./users/users.ts";
import type { Services } from "./services.ts";
import { VERSION } from "./version.ts";
import { SecretGuard } from "./security/secret_guard.ts";
import { AttachmentService } from "./attachments/service.ts";
import { ConnectLinks } from "./connect/links.ts";
import { httpsUploader, inProcessUploader, type Uploader } from "./jira/upload.ts";
import { SosService } from "./sos/report.ts";
import { FetchService } from "./sos/fetch.ts";
import { ConsentService } from "./sos/consent.ts";
import { type CommandRunner, processRunner } from "./sos/runner.ts";
import { locateSos } from "./sos/locate.ts";
import { RateLimiter } from "./security/rate_limit.ts";
import { lockTolerantKv } from "./kv_retry.ts";
import { ApprovalGate } from "./approval/gate.ts";
import { dataCenterApprovalJira } from "./approval/jira_cr.ts";
import { cloudApprovalJira } from "./approval/jira_cr_cloud.ts";
import { TrustStore } from "./approval/signature.ts";
import { WebhookReceiver } from "./approval/webhook.ts";
import { createOidcAuth } from "./auth/oidc.ts";

export interface RuntimeOptions {
  clock?: Clock;
  logSink?: LogSink;
  /** Replaces the Jira transport (tests of the client's failure handling). */
  transport?: JiraTransport;
  uploader?: Uploader;
  /** The command runner for sudo/sos (tests of failure paths inject their own programs). */
  runner?: CommandRunner;
  /** Where to look for sos (default /usr/sbin/sos, /usr/bin/sos). */
  sosCandidates?: string[];
  /** How long generate_sosreport waits before answering `running`. */
  sosWaitMs?: number;
  sosTimeoutMs?: number;
  /**
   * Where scoped Jira Cloud tokens are sent (default https://api.atlassian.com). Internal: tests
   * point it at the fake Cloud on loopback; operators have no reason to change it.
   */
  cloudGatewayUrl?: string;
  /** The process's live-secret registry (main.ts shares it with the console capture). */
  secrets?: SecretRegistry;
  /** How requests reach Vault (tests: the fake Vault's CA); default: fetch with VAULT_CACERT. */
  vaultFetch?: VaultFetch;
  /** Renew the Vault token on a timer (default). Tests turn it off and call `step()`. */
  vaultAutoRenew?: boolean;
  /** How the OIDC issuer is fetched (default: global fetch). */
  oidcFetch?: typeof fetch;
}

export async function openServices(
  config: Config,
  options: RuntimeOptions = {},
): Promise<Services> {
  const clock = options.clock ?? systemClock;
  const secrets = options.secrets ?? new SecretRegistry();
  const log: Logger = createLogger(options.logSink ?? stderrSink, { now: clock, secrets });
  let vault: VaultSession | undefined;
  let masterKey: Uint8Array;
  let previousKey = config.previousMasterKey;
  if (config.masterKey.kind === "vault") {
    const settings = config.masterKey.settings;
    try {
      vault = await VaultSession.start(settings, { clock, secrets, fetch: options.vaultFetch });
    } catch (err) {
      if (err instanceof WrappingReusedError) {
        // Security: loud, and only in the log: without the key there is no signed chain yet.
        log.error("security_event", {
          event: {
            type: "secrets_bootstrap_wrapping_reused",
            outcome: "failure",
            time: clock().toISOString(),
            user: "sosvault",
            source: "system",
          },
        });
        log.error("secrets_bootstrap_wrapping_reused", { vault_addr: settings.addr });
      }
      throw vaultStartError(err, settings);
    }
    masterKey = vault.current;
    previousKey = vault.previous;
    log.info("vault_key_loaded", {
      vault_addr: settings.addr,
      key_path: settings.keyPath,
      version: vault.currentVersion,
      previous: vault.previous !== undefined,
      token_expires_at: new Date(vault.tokenExpiresAt).toISOString(),
    });
  } else {
    masterKey = await resolveMasterKey(config.masterKey);
  }
  // Security: the key's text forms are masked in every log line for the process's lifetime.
  for (const k of [masterKey, previousKey]) {
    if (!k) continue;
    secrets.register(toHex(k));
    secrets.register(toBase64(k));
  }
  const keyring = await createKeyring(masterKey, previousKey);
  masterKey.fill(0);
  previousKey?.fill(0);

  const kv = await openKv(config.kvPath);
  try {
    await checkSentinel(kv, keyring);
  } catch (err) {
    kv.close();
    throw err;
  }

  if (config.mockMode) {
    log.warn(
      "JIRA_MOCK_MODE=1: Jira calls go to the embedded fake Jira; never use this with real users",
    );
  }
  let transport = options.transport;
  let uploader = options.uploader;
  if (config.mockMode) {
    const fake = mockModeJira();
    const cloud = mockModeJiraCloud();
    const pick = (req: Request) =>
      isMockCloudHost(new URL(req.url).hostname) ? cloud.fetch(req) : fake.fetch(req);
    transport ??= inProcessTransport(pick);
    uploader ??= inProcessUploader(pick);
  }
  const caPem = config.caFile ? await Deno.readTextFile(config.caFile) : undefined;
  transport ??= httpTransport(caPem);
  uploader ??= httpsUploader({ caPem });
  const jira = new JiraClient({ transport, timeoutMs: config.jiraTimeoutMs });
  const events = new EventLog(
    kv,
    log,
    clock,
    config.eventRetentionDays,
    keyring,
    config.eventExport ? eventExporter(config.eventExport) : undefined,
  );
  if (vault) watchVaultToken(vault, events, log, clock, options.vaultAutoRenew ?? true);
  const rateLimiter = new RateLimiter(kv, clock, config.rateLimits);
  const connections = new ConnectionService({
    store: new ConnectionStore(kv),
    keyring,
    jira,
    events,
    clock,
    log,
    ttlSeconds: config.connectionTtlSeconds,
    allowedHosts: config.allowedHosts,
    anyHost: config.mockMode,
    rateLimiter,
    cloudGateway: options.cloudGatewayUrl,
    secrets,
  });
  const runner = options.runner ?? processRunner;
  const consents = new ConsentService(kv, clock, events);
  const host = hostName();
  const approval = new ApprovalGate({
    config: config.approval,
    connections,
    jira: { data_center: dataCenterApprovalJira(jira), cloud: cloudApprovalJira(jira) },
    kv,
    clock,
    host,
    trust: config.approval.trustDir ? await loadTrust(config.approval.trustDir) : null,
  });
  const sos = new SosService({
    kv,
    clock,
    log,
    events,
    consents,
    approval,
    runner,
    sosPath: await locateSos(options.sosCandidates),
    host,
    timeoutMs: options.sosTimeoutMs ?? config.sosTimeoutSeconds * 1000,
    waitMs: options.sosWaitMs ?? 25_000,
  });
  await sos.recoverInterrupted();
  const webhooks = config.webhookSecretFile
    ? new WebhookReceiver({
      secret: await readSecretFile(config.webhookSecretFile),
      approval: config.approval,
      kv,
      clock,
      events,
      sos,
      log,
    })
    : null;
  return {
    approval,
    webhooks,
    config,
    kv,
    sos,
    consents,
    fetch: new FetchService({
      sos,
      events,
      log,
      runner,
      artifactDir: config.artifactDir,
      catPath: "/usr/bin/cat",
      timeoutMs: config.sosTimeoutSeconds * 1000,
    }),
    clock,
    log,
    secrets,
    users: new UserStore(kv, clock),
    connections,
    events,
    keyring,
    attachments: new AttachmentService({
      connections,
      jira,
      uploader,
      events,
      policy: {
        artifactDir: config.artifactDir,
        roots: config.artifactRoots,
        maxBytes: config.attachmentMaxBytes,
      },
      idleTimeoutMs: config.jiraTimeoutMs,
    }),
    connectLinks: new ConnectLinks(kv, clock, () => config.publicUrl),
    secretGuard: new SecretGuard({ connections, keyring, events, log }),
    rateLimiter,
    version: VERSION,
    vault,
    oidc: await createOidcAuth(config, { kv, clock, log, fetch: options.oidcFetch }),
  };
}

/** The approver certificates; a missing directory or a bad certificate stops the start. */
async function loadTrust(dir: string): Promise<TrustStore> {
  let trust: TrustStore;
  try {
    trust = await TrustStore.load(dir);
  } catch (err) {
    throw new ConfigError([
      `SOSVAULT_APPROVAL_TRUST_DIR cannot be read as a directory of PEM certificates (${
        (err as Error).name
      })`,
    ]);
  }
  if (trust.certs.size === 0) {
    throw new ConfigError(["SOSVAULT_APPROVAL_TRUST_DIR holds no certificate (*.pem)"]);
  }
  return trust;
}

/** The webhook secret: the file's first line, which must be at least 16 bytes. */
async function readSecretFile(path: string): Promise<Uint8Array> {
  const text = (await Deno.readTextFile(path)).split(/\r?\n/)[0].trim();
  if (text.length < 16) {
    throw new ConfigError([
      "SOSVAULT_WEBHOOK_SECRET_FILE must hold a secret of at least 16 characters on its first line",
    ]);
  }
  return new TextEncoder().encode(text);
}

/**
 * Keeps the Vault token alive (vault_source.ts). When it cannot be, the server keeps serving
 * with the key it holds, and says so loudly: an event and a log alert.
 */
function watchVaultToken(
  vault: VaultSession,
  events: EventLog,
  log: Logger,
  clock: Clock,
  auto: boolean,
) {
  vault.onAlert = async (alert) => {
    log.error("secrets_bootstrap_token_expired", { reason: alert.reason });
    await events.record({
      type: "secrets_bootstrap_token_expired",
      outcome: "failure",
      user: "sosvault",
      source: "system",
      error_code: "unauthenticated",
    }).catch((err) => log.error("event_record_failed", { error: err }));
  };
  if (!auto) return;
  const schedule = () => {
    const at = vault.nextStepAt;
    if (at === null) return;
    const timer = setTimeout(async () => {
      try {
        const what = await vault.step();
        if (what !== "idle") log.info("vault_token", { action: what });
      } catch (err) {
        // Vault unreachable for a moment: try again later; the key in memory keeps serving.
        log.warn("vault_token_step_failed", { error: err });
      }
      schedule();
    }, Math.max(1000, Math.min(at - clock().getTime(), 2 ** 31 - 1)));
    Deno.unrefTimer(timer);
  };
  schedule();
}

/** The host name keys the one-sosreport-per-host lock; KV may be shared by several hosts. */
function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

async function openKv(path: string): Promise<Deno.Kv> {
  if (!/^https?:\/\//.test(path)) {
    const slash = path.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true, mode: 0o700 });
  }
  // Several processes may share one local KV file: their writes then contend for its lock.
  const kv = await Deno.openKv(path);
  // Security: the KV Connect access token is a secret too; once the store is open it has done
  // its job, so no child process can inherit it.
  try {
    Deno.env.delete("DENO_KV_ACCESS_TOKEN");
  } catch { /* not granted: nothing to remove */ }
  return lockTolerantKv(kv);
}
