/**
 * Composition: turns a parsed Config into running services. main.ts and the tests both call
 * this, so the tests exercise exactly what production wires together.
 */
import type { Config } from "./config.ts";
import { type Clock, systemClock } from "./clock.ts";
import { createLogger, type Logger, type LogSink, stderrSink } from "./log.ts";
import { resolveMasterKey } from "./vault/master_key.ts";
import { createKeyring } from "./vault/cipher.ts";
import { checkSentinel } from "./vault/sentinel.ts";
import { ConnectionStore } from "./connections/store.ts";
import { ConnectionService } from "./connections/service.ts";
import { JiraClient } from "./jira/client.ts";
import { httpTransport, inProcessTransport, type JiraTransport } from "./jira/transport.ts";
import { mockModeJira } from "./jira/fake/mod.ts";
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
  /** How the OIDC issuer is fetched (default: global fetch). */
  oidcFetch?: typeof fetch;
}

export async function openServices(
  config: Config,
  options: RuntimeOptions = {},
): Promise<Services> {
  const clock = options.clock ?? systemClock;
  const log: Logger = createLogger(options.logSink ?? stderrSink, { now: clock });
  const masterKey = await resolveMasterKey(config.masterKey);
  const keyring = await createKeyring(masterKey, config.previousMasterKey);
  masterKey.fill(0);

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
    transport ??= inProcessTransport((req) => fake.fetch(req));
    uploader ??= inProcessUploader((req) => fake.fetch(req));
  }
  const caPem = config.caFile ? await Deno.readTextFile(config.caFile) : undefined;
  transport ??= httpTransport(caPem);
  uploader ??= httpsUploader({ caPem });
  const jira = new JiraClient({ transport, timeoutMs: config.jiraTimeoutMs });
  const events = new EventLog(kv, log, clock, config.eventRetentionDays);
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
  });
  const runner = options.runner ?? processRunner;
  const consents = new ConsentService(kv, clock, events);
  const sos = new SosService({
    kv,
    clock,
    log,
    events,
    consents,
    runner,
    sosPath: await locateSos(options.sosCandidates),
    host: hostName(),
    timeoutMs: options.sosTimeoutMs ?? config.sosTimeoutSeconds * 1000,
    waitMs: options.sosWaitMs ?? 25_000,
  });
  await sos.recoverInterrupted();
  return {
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
    oidc: await createOidcAuth(config, { kv, clock, log, fetch: options.oidcFetch }),
  };
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
