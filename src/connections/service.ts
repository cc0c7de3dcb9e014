/**
 * Jira connections: the one place that decides ownership, expiry and revocation. The HTTP API
 * and the MCP tools both call this service; neither re-implements its rules.
 */
import { AppError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { RequestContext } from "../context.ts";
import { CONNECTION_ID, newConnectionId } from "../ids.ts";
import type { JiraClient } from "../jira/client.ts";
import { normaliseBaseUrl } from "../jira/base_url.ts";
import type { CredentialPurpose, EventLog } from "../security/events.ts";
import { DecryptError, type Keyring, open, patAad, seal } from "../vault/cipher.ts";
import type { Logger, SecretRegistry } from "../log.ts";
import type { RateLimiter } from "../security/rate_limit.ts";
import { KnownSecrets, type KnownSecretSet } from "../security/known_secrets.ts";
import type { ConnectionRecord, ConnectionStore, Versioned } from "./store.ts";
import {
  ATLASSIAN_GATEWAY,
  checkEmail,
  cloudAuth,
  type Deployment,
  type JiraAuth,
  maskEmail,
  refuseAtlassianLookalike,
  type TokenKind,
} from "../jira/auth.ts";
import { isDataCenterPatShape } from "../security/secret_scan.ts";
import { authOf, decodeSecret, encodeCloudSecret, secretFingerprints } from "./credential.ts";
import { cloudSecretForms } from "../jira/auth.ts";

/** A connection as the contract shows it: never a secret, never the ciphertext. */
export interface PublicConnection {
  connection_id: string;
  status: ConnectionRecord["status"];
  base_url: string;
  jira_user: { name: string; display_name: string };
  created_at: string;
  expires_at: string;
  last_verified_at: string;
  revoked_at: string | null;
  key_version: string;
  /** `data_center` (Bearer PAT) or `cloud` (Basic e-mail + API token). */
  deployment: Deployment;
  /** Cloud only: the masked e-mail of the Atlassian account, e.g. `a***@example.com`. */
  email_hint?: string;
  /**
   * Cloud only: `site` (a classic token, on the site URL) or `gateway` (a scoped token, through
   * api.atlassian.com). Not called token_kind here: no output field is named like a secret.
   */
  cloud_route?: "site" | "gateway";
}

export function toPublic(r: ConnectionRecord): PublicConnection {
  const cloud = r.deployment === "cloud";
  return {
    connection_id: r.connection_id,
    status: r.status,
    base_url: r.base_url,
    jira_user: { name: r.jira_user.name, display_name: r.jira_user.display_name },
    created_at: r.created_at,
    expires_at: r.expires_at,
    last_verified_at: r.last_verified_at,
    revoked_at: r.revoked_at,
    key_version: r.key_version,
    deployment: r.deployment ?? "data_center",
    ...(cloud
      ? {
        email_hint: r.email_hint ?? "***",
        cloud_route: r.token_kind === "scoped" ? "gateway" as const : "site" as const,
      }
      : {}),
  };
}

/** What the intake (HTTP API or connect page) hands over. */
export interface ConnectInput {
  base_url: string;
  /** The Data Center PAT, or the Cloud API token. */
  pat: string;
  /** Cloud: the Atlassian account's e-mail. */
  email?: string;
  /** Cloud: say the token is scoped (else found out when the site URL refuses it). */
  token_kind?: TokenKind;
}

export interface ConnectionServiceDeps {
  store: ConnectionStore;
  keyring: Keyring;
  jira: JiraClient;
  events: EventLog;
  clock: Clock;
  log: Logger;
  ttlSeconds: number;
  allowedHosts: readonly string[];
  /** Mock mode: the embedded fake Jira answers every host, so no host is "internal". */
  anyHost?: boolean;
  rateLimiter: RateLimiter;
  /** Atlassian's API gateway for scoped Cloud tokens; tests point it at the fake on loopback. */
  cloudGateway?: string;
  /** Secrets in flight, masked by the log pipeline (log.ts). */
  secrets?: SecretRegistry;
}

/** A usable connection with its decrypted PAT; the PAT must not outlive the Jira call. */
export interface Credential {
  connection: ConnectionRecord;
  /** The PAT, or the Cloud API token. */
  pat: string;
  /** How to call this connection's Jira (scheme, route, the secret forms to refuse in answers). */
  auth: JiraAuth;
  /** Ends the PAT's registration with the log pipeline's mask: call it once the PAT is done. */
  release(): void;
}

const NOT_FOUND =
  "No connection with this id exists for you: list your connections, or connect again";
const MAX_PAT_LENGTH = 1024;

/** Work in flight on a connection: aborted when the connection is revoked or expires. */
export interface InflightUse {
  signal: AbortSignal;
  /**
   * Settles once the record has been read after tracking began; by then `signal` is aborted if
   * the connection closed since it was resolved for use. Await it before sending anything.
   */
  ready: Promise<void>;
  release(): void;
}

/**
 * How often a use in flight re-reads its connection. A KV watch does not see writes made by
 * another process on the same local KV file (denoland/deno#21640), so this is what stops an
 * upload on one instance when another instance revokes the connection.
 */
const INFLIGHT_POLL_MS = 500;

export class ConnectionService {
  readonly #inflight = new Map<string, Set<AbortController>>();

  constructor(private d: ConnectionServiceDeps) {}

  /**
   * Security: a revoke must stop uploads already in flight, on this instance at once and on
   * any other instance sharing the KV store through a watch on the record; expiry stops them
   * at expires_at.
   */
  track(connection: ConnectionRecord, parent?: AbortSignal): InflightUse {
    const id = connection.connection_id;
    const controller = new AbortController();
    const set = this.#inflight.get(id) ?? new Set();
    set.add(controller);
    this.#inflight.set(id, set);
    const abort = (reason: AppError) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    const onParent = () => abort(new AppError("invalid_input", "The request was cancelled"));
    parent?.addEventListener("abort", onParent, { once: true });
    const untilExpiry = Date.parse(connection.expires_at) - this.d.clock().getTime();
    const timer = setTimeout(
      () => abort(expiredDuringUse()),
      Math.max(0, Math.min(untilExpiry, 2 ** 31 - 1)),
    );
    const reader = this.d.store.watch(id).getReader();
    (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          const status = value[0].value?.status;
          if (status !== "connected") {
            return abort(status === "expired" ? expiredDuringUse() : revokedDuringUse());
          }
        }
      } catch { /* the watch ended with the use */ }
    })();
    // Security: the controller is registered before this read, so a revoke either aborts it
    // directly (same instance) or is seen here: nothing tracked runs on a revoked connection,
    // even when the revoke landed between use() and track(), or on another process.
    const check = async () => {
      const status = (await this.d.store.get(id))?.value.status ?? "revoked";
      if (status !== "connected") {
        abort(status === "expired" ? expiredDuringUse() : revokedDuringUse());
      }
    };
    const ready = check().catch(() => {});
    const poll = setInterval(() => void check().catch(() => {}), INFLIGHT_POLL_MS);
    return {
      signal: controller.signal,
      ready,
      release: () => {
        clearInterval(poll);
        clearTimeout(timer);
        parent?.removeEventListener("abort", onParent);
        reader.cancel().catch(() => {});
        set.delete(controller);
        if (set.size === 0) this.#inflight.delete(id);
      },
    };
  }

  validateBaseUrl(input: string): string {
    return normaliseBaseUrl(input, this.d.allowedHosts, { allowInternal: this.d.anyHost });
  }

  async connect(ctx: RequestContext, input: ConnectInput): Promise<PublicConnection> {
    const event = {
      type: "connect" as const,
      user: ctx.user,
      request_id: ctx.requestId,
      source: ctx.source,
    };
    let release: (() => void) | undefined;
    try {
      // Security: a brake on guessing PATs through sosvault, counted per user in KV so every
      // instance (and both intakes: the API and the connect page) spends the same budget.
      await this.d.rateLimiter.take("connect", ctx.user);
      const baseUrl = this.validateBaseUrl(input.base_url);
      const pat = checkPatFormat(input.pat);
      release = this.d.secrets?.register(pat);
      const email = input.email === undefined ? undefined : checkEmail(input.email);
      if (input.token_kind !== undefined && email === undefined) {
        throw new AppError(
          "invalid_input",
          "token_kind applies to Jira Cloud API tokens only: give the e-mail of your Atlassian account too, or leave token_kind out for a Data Center personal access token",
        );
      }
      // Security: an Atlassian token is never sent to a host that only looks like Atlassian.
      if (email !== undefined) refuseAtlassianLookalike(baseUrl);
      // With an e-mail, Jira's serverInfo decides the kind before any credential is sent. A PAT
      // alone goes to Data Center's Bearer route as it always did: Cloud refuses Bearer PATs, so
      // a success proves Data Center, and a refusal is followed by the serverInfo question.
      const deployment = email === undefined ? undefined : await this.d.jira.deploymentOf(baseUrl);
      const found = deployment === "cloud"
        ? await this.cloudLogin(baseUrl, pat, email, input.token_kind)
        : await this.dataCenterLogin(baseUrl, pat, email, deployment);
      const id = newConnectionId();
      const now = this.d.clock();
      const key = this.d.keyring.current;
      const plaintext = found.cloud
        ? encodeCloudSecret({ email: found.cloud.email, token: pat })
        : pat;
      const envelope = await seal(key, plaintext, patAad(ctx.user, id));
      const jiraUser = found.user;
      const record: ConnectionRecord = {
        connection_id: id,
        user: ctx.user,
        base_url: baseUrl,
        jira_user: jiraUser,
        status: "connected",
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + this.d.ttlSeconds * 1000).toISOString(),
        last_verified_at: now.toISOString(),
        revoked_at: null,
        key_version: key.kid,
        ...await secretFingerprints(key, found.cloud ? "cloud" : "data_center", plaintext),
        deployment: found.cloud ? "cloud" : "data_center",
        ...(found.cloud
          ? {
            email_hint: maskEmail(found.cloud.email),
            token_kind: found.cloud.tokenKind,
            ...(found.cloud.cloudId ? { cloud_id: found.cloud.cloudId } : {}),
          }
          : {}),
        known_secrets: KnownSecrets.fingerprint(
          key,
          secretsOfConnection(plaintext, found.cloud ? "cloud" : "data_center"),
        ),
      };
      await this.d.store.create(record, envelope, now.getTime());
      await this.d.events.record({ ...event, outcome: "success", connection_id: id });
      return toPublic(record);
    } catch (err) {
      await this.d.events.record({ ...event, outcome: "failure", error_code: codeOf(err) });
      throw err;
    } finally {
      release?.();
    }
  }

  async list(ctx: RequestContext): Promise<PublicConnection[]> {
    const records = await this.d.store.listForUser(ctx.user);
    const out: PublicConnection[] = [];
    for (const r of records) {
      if (r.user !== ctx.user) continue;
      out.push(toPublic(await this.settleExpiry(ctx, r)));
    }
    out.sort((a, b) => a.created_at.localeCompare(b.created_at));
    return out;
  }

  /** Status without using the credential: a revoked or expired connection is an answer, not an error. */
  async get(ctx: RequestContext, id: string): Promise<PublicConnection> {
    const current = await this.owned(ctx, id);
    return toPublic(await this.settleExpiry(ctx, current.value));
  }

  /** Re-checks the PAT with Jira now (`?verify=1`). */
  async verify(ctx: RequestContext, id: string): Promise<PublicConnection> {
    const event = {
      type: "verify" as const,
      user: ctx.user,
      request_id: ctx.requestId,
      source: ctx.source,
      connection_id: id,
    };
    try {
      const cred = await this.use(ctx, id, "verify");
      try {
        await this.d.jira.myself(cred.connection.base_url, cred.auth);
      } finally {
        cred.release();
      }
      let updated: ConnectionRecord | null = null;
      for (let i = 0; i < 5 && !updated; i++) {
        const current = await this.owned(ctx, id);
        if (current.value.status !== "connected") return toPublic(current.value);
        updated = await this.d.store.markVerified(current, this.d.clock().toISOString());
      }
      await this.d.events.record({ ...event, outcome: "success" });
      return toPublic(updated ?? cred.connection);
    } catch (err) {
      await this.d.events.record({ ...event, outcome: "failure", error_code: codeOf(err) });
      throw err;
    }
  }

  async revoke(ctx: RequestContext, id: string): Promise<PublicConnection> {
    const current = await this.owned(ctx, id);
    const record = await this.closeAs(current, "revoked", ctx);
    this.abortInflight(id);
    await this.d.events.record({
      type: "revoke",
      outcome: "success",
      user: ctx.user,
      connection_id: id,
      request_id: ctx.requestId,
      source: ctx.source,
    });
    return toPublic(record);
  }

  /**
   * Resolves a connection for use: owned, connected, not expired, and decrypted. Every Jira
   * call made on a user's behalf goes through here, and every decryption is recorded as a
   * `credential_use` event naming what it was for.
   */
  async use(ctx: RequestContext, id: string, purpose: CredentialPurpose): Promise<Credential> {
    const current = await this.owned(ctx, id);
    const record = await this.settleExpiry(ctx, current.value, current);
    if (record.status === "revoked") {
      throw new AppError(
        "connection_revoked",
        "This connection was revoked: connect to Jira again (jira_connect) to continue",
      );
    }
    if (record.status === "expired") {
      throw new AppError(
        "connection_expired",
        "This connection has expired: connect to Jira again (jira_connect) to continue",
      );
    }
    const envelope = await this.d.store.getEnvelope(id);
    if (!envelope) {
      throw new AppError(
        "connection_revoked",
        "This connection's credential is gone: connect to Jira again to continue",
      );
    }
    let plaintext: string;
    try {
      plaintext = await open(this.d.keyring, envelope, patAad(record.user, id));
    } catch (err) {
      if (!(err instanceof DecryptError)) throw err;
      this.d.log.error("decrypt_failed", { connection_id: id, reason: err.reason, kid: err.kid });
      await this.d.events.record({
        type: "decrypt_failed",
        outcome: "failure",
        user: ctx.user,
        connection_id: id,
        request_id: ctx.requestId,
        source: ctx.source,
        error_code: "unexpected_error",
      });
      throw new AppError(
        "unexpected_error",
        "The stored credential of this connection cannot be decrypted with the server's key: revoke it and connect again, and tell the operator (key mismatch or tampering)",
      );
    }
    await this.d.events.record({
      type: "credential_use",
      outcome: "success",
      user: ctx.user,
      connection_id: id,
      request_id: ctx.requestId,
      source: ctx.source,
      purpose,
    });
    // Security: a revoke that landed while the event was written must still win, so the
    // record is read again now that the PAT is about to go out.
    if ((await this.d.store.get(id))?.value.status !== "connected") {
      throw revokedDuringUse();
    }
    const auth = authOf(record, plaintext, this.d.cloudGateway ?? ATLASSIAN_GATEWAY);
    // Every form of the credential in flight (token, `email:token`, its base64) is masked.
    const releases = auth.secrets.map((secret) => this.d.secrets?.register(secret));
    return {
      connection: record,
      pat: auth.secrets[0],
      auth,
      release: () => releases.forEach((release) => release?.()),
    };
  }

  /** Revokes every connected connection (of one user, or all): incident response. */
  async revokeAll(ctx: RequestContext, onlyUser?: string): Promise<number> {
    let count = 0;
    for await (const id of this.d.store.allIds()) {
      const current = await this.d.store.get(id);
      if (!current || current.value.status === "revoked") continue;
      if (onlyUser && current.value.user !== onlyUser) continue;
      await this.closeAs(current, "revoked", ctx);
      this.abortInflight(id);
      await this.d.events.record({
        type: "revoke",
        outcome: "success",
        user: current.value.user,
        connection_id: id,
        request_id: ctx.requestId,
        source: ctx.source,
      });
      count++;
    }
    return count;
  }

  /** Data Center (or a Jira that did not say): Bearer PAT on REST v2, exactly as before Cloud. */
  private async dataCenterLogin(
    baseUrl: string,
    pat: string,
    email: string | undefined,
    deployment: Deployment | undefined,
  ) {
    if (email !== undefined) {
      throw new AppError(
        "invalid_input",
        deployment === "data_center"
          ? "this Jira is Server/Data Center, which takes a personal access token alone: leave the e-mail empty and paste a personal access token from your Jira profile"
          : "this Jira did not identify itself as Jira Cloud (its serverInfo does not say Cloud), so an e-mail and API token cannot be used: check base_url, or leave the e-mail empty for a Data Center personal access token",
      );
    }
    // Security: an Atlassian API token never goes out as a Data Center Bearer token.
    if (/^ATATT/.test(pat)) {
      throw new AppError(
        "invalid_input",
        "this looks like an Atlassian Cloud API token: Jira Cloud takes it together with the e-mail address of your Atlassian account, so enter your e-mail too (a Jira Server/Data Center needs a personal access token from your Jira profile instead)",
      );
    }
    try {
      return { user: await this.d.jira.myself(baseUrl, pat), cloud: undefined };
    } catch (err) {
      if (err instanceof AppError && ["invalid_credentials", "not_found"].includes(err.code)) {
        // Refused: was it a Cloud site, where a PAT alone can never work?
        const kind = await this.d.jira.deploymentOf(baseUrl).catch(() => undefined);
        if (kind === "cloud") throw cloudNeedsEmail();
      }
      throw err;
    }
  }

  /**
   * Cloud: Basic e-mail + API token on REST v3. A classic token works on the site URL; a scoped
   * one only through the gateway with the site's cloudId. When the user did not say which, the
   * site is tried first and the gateway when the site refuses the token.
   */
  private async cloudLogin(
    siteUrl: string,
    token: string,
    email: string | undefined,
    kind: TokenKind | undefined,
  ) {
    // Security: an Atlassian token is never sent to a host that only looks like Atlassian.
    refuseAtlassianLookalike(siteUrl);
    if (email === undefined) throw cloudNeedsEmail();
    if (isDataCenterPatShape(token)) {
      throw new AppError(
        "invalid_input",
        "this looks like a Jira Data Center personal access token, but this Jira is Jira Cloud: create an API token at id.atlassian.com (Security → API tokens) and use it with your e-mail",
      );
    }
    const gateway = this.d.cloudGateway ?? ATLASSIAN_GATEWAY;
    const viaGateway = async () => {
      const cloudId = await this.d.jira.cloudIdOf(siteUrl);
      const auth = cloudAuth({ siteUrl, email, token, cloudId, gateway });
      const user = await this.d.jira.myself(auth.apiBase, auth);
      await this.checkScopes(auth);
      return { user, cloud: { email, tokenKind: "scoped" as const, cloudId } };
    };
    if (kind === "scoped") return await viaGateway();
    try {
      const auth = cloudAuth({ siteUrl, email, token });
      const user = await this.d.jira.myself(siteUrl, auth);
      return { user, cloud: { email, tokenKind: "classic" as const, cloudId: undefined } };
    } catch (err) {
      // The site URL refuses a scoped token with 401; the gateway then decides.
      if (kind === "classic" || !(err instanceof AppError) || err.code !== "invalid_credentials") {
        throw err;
      }
      try {
        return await viaGateway();
      } catch (gatewayErr) {
        // A scope the gateway names is news; otherwise the site's refusal says it best.
        if (gatewayErr instanceof AppError && gatewayErr.code === "forbidden") throw gatewayErr;
        throw err;
      }
    }
  }

  /**
   * Security/usability: a scoped token missing a scope fails at connect, naming the scope,
   * rather than on the first upload. /myself proved read:jira-user; attachment/meta needs
   * read:jira-work; write:jira-work is probed with a POST to issue id 0, which cannot exist, so
   * nothing is ever created (the gateway checks scopes before Jira sees the request).
   */
  private async checkScopes(auth: JiraAuth): Promise<void> {
    await this.d.jira.getJson(auth.apiBase, `${auth.restPrefix}/attachment/meta`, auth, {
      scope: "read:jira-work",
    });
    await this.d.jira.probeWriteScope(auth);
  }

  private abortInflight(id: string) {
    for (const c of this.#inflight.get(id) ?? []) c.abort(revokedDuringUse());
  }

  /**
   * The caller's usable connections' secrets, for finding one inside a tool call: window
   * fingerprints (`sets`), and whole-token fingerprints of connections made before those
   * existed (`exact`).
   */
  async knownSecretsOf(user: string): Promise<{ sets: KnownSecretSet[]; exact: Set<string> }> {
    const sets: KnownSecretSet[] = [];
    const exact = new Set<string>();
    for (const r of await this.d.store.listForUser(user)) {
      if (r.user !== user || r.status !== "connected") continue;
      if (r.known_secrets?.length) sets.push({ kid: r.key_version, secrets: r.known_secrets });
      // Whole-token fingerprints stay checked too (older records; Cloud's other forms).
      exact.add(r.pat_fp);
      for (const fp of r.secret_fps ?? []) exact.add(fp);
    }
    return { sets, exact };
  }

  /** Fingerprints of the caller's usable PATs, for recognising one pasted into a tool call. */
  async fingerprintsOf(user: string): Promise<Set<string>> {
    const out = new Set<string>();
    for (const r of await this.d.store.listForUser(user)) {
      if (r.user !== user || r.status !== "connected") continue;
      out.add(r.pat_fp);
      // Cloud: `email:token` and its base64 are the caller's secrets too.
      for (const fp of r.secret_fps ?? []) out.add(fp);
    }
    return out;
  }

  /**
   * Security: another user's connection behaves exactly like one that does not exist — same
   * code, same message — and the attempt is recorded as `denied`.
   */
  private async owned(ctx: RequestContext, id: string): Promise<Versioned<ConnectionRecord>> {
    if (!CONNECTION_ID.test(id)) {
      throw new AppError(
        "invalid_input",
        "connection_id must look like jc_… (the id returned when you connected)",
      );
    }
    const current = await this.d.store.get(id);
    if (!current || current.value.user !== ctx.user) {
      await this.d.events.denied(ctx, { connection_id: id });
      throw new AppError("not_found", NOT_FOUND);
    }
    return current;
  }

  /** Security: expiry is decided by the clock on every read; KV's expireIn is not exact. */
  private async settleExpiry(
    ctx: RequestContext,
    record: ConnectionRecord,
    known?: Versioned<ConnectionRecord>,
  ): Promise<ConnectionRecord> {
    if (record.status !== "connected") return record;
    if (this.d.clock().getTime() < Date.parse(record.expires_at)) return record;
    const current = known ?? await this.d.store.get(record.connection_id);
    if (!current) return { ...record, status: "expired" };
    for (let i = 0; i < 5; i++) {
      const latest = i === 0 ? current : await this.d.store.get(record.connection_id);
      if (!latest || latest.value.status !== "connected") {
        return latest?.value ?? { ...record, status: "expired" };
      }
      const closed = await this.d.store.close(latest, "expired", this.d.clock().toISOString());
      if (closed) {
        await this.d.events.record({
          type: "expire",
          outcome: "success",
          user: record.user,
          connection_id: record.connection_id,
          request_id: ctx.requestId,
          source: ctx.source,
        });
        return closed;
      }
    }
    return { ...record, status: "expired" };
  }

  /** Closes (idempotently) with retries on concurrent changes. */
  private async closeAs(
    start: Versioned<ConnectionRecord>,
    status: "revoked",
    _ctx: RequestContext,
  ): Promise<ConnectionRecord> {
    let current: Versioned<ConnectionRecord> | null = start;
    for (let i = 0; i < 10 && current; i++) {
      if (current.value.status === status) return current.value;
      const closed = await this.d.store.close(current, status, this.d.clock().toISOString());
      if (closed) return closed;
      current = await this.d.store.get(start.value.connection_id);
    }
    throw new AppError(
      "unexpected_error",
      "The connection kept changing while revoking it: try again",
    );
  }
}

const cloudNeedsEmail = () =>
  new AppError(
    "invalid_input",
    "this Jira is Jira Cloud: it takes the e-mail address of your Atlassian account together with an API token, so enter your e-mail too",
  );

const revokedDuringUse = () =>
  new AppError(
    "connection_revoked",
    "The connection was revoked while this request was in flight: it was cancelled. Connect again to continue",
  );
const expiredDuringUse = () =>
  new AppError(
    "connection_expired",
    "The connection expired while this request was in flight: it was cancelled. Connect again to continue",
  );

function checkPatFormat(pat: string): string {
  // Security: the message never echoes the token, only what is wrong with its form.
  if (pat.length === 0) {
    throw new AppError(
      "invalid_input",
      "pat is empty: paste the personal access token from your Jira profile (Data Center), or the API token that goes with your e-mail (Cloud)",
    );
  }
  if (pat.length > MAX_PAT_LENGTH) {
    throw new AppError("invalid_input", "pat is too long to be a Jira personal access token");
  }
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused here
  if (/[\s\u0000-\u001f\u007f]/.test(pat)) {
    throw new AppError(
      "invalid_input",
      "pat contains spaces or control characters: paste the token alone, without 'Bearer' or quotes",
    );
  }
  // Security: a Jira token is printable ASCII. Anything else cannot go into an Authorization
  // header (it failed there as an unexpected_error) and is not a token: refused as input.
  if (/[^\x21-\x7e]/.test(pat)) {
    throw new AppError(
      "invalid_input",
      "pat contains characters a Jira personal access token never has: paste the token alone",
    );
  }
  return pat;
}

/**
 * Every secret string a connection holds, registered as known secrets so that none of them can
 * enter a tool call or an outgoing Jira string, even inside a longer one. A Data Center
 * connection holds its PAT; a Cloud connection adds its API token, `email:token` and the
 * base64 of that (its Basic credential) here.
 */
export function secretsOfConnection(plaintext: string, deployment?: Deployment): string[] {
  const s = decodeSecret(deployment, plaintext);
  return s.email === undefined ? [s.token] : cloudSecretForms(s.email, s.token);
}

export function codeOf(err: unknown) {
  return err instanceof AppError ? err.code : "unexpected_error";
}
