/**
 * `SOSVAULT_KEY_SOURCE=vault`: the master key from HashiCorp Vault, with nothing static on
 * disk (issue 15).
 *
 * Start: read the role ID and the one-time secret ID (then remove its file when asked),
 * AppRole login with `X-Vault-Wrap-TTL` so the token comes back wrapped, unwrap it in memory,
 * read the key from KV v2; the version before the current one becomes the previous key, so
 * `rotate-key` works as with TOKEN_VAULT_MASTER_KEY_PREVIOUS. A wrapping token that is no
 * longer valid a moment after Vault issued it was unwrapped by someone else: a hard stop.
 *
 * Then: the token lives in memory only and is renewed at two thirds of its TTL; once Vault
 * caps it at its max TTL, a fresh login follows if a new secret ID was placed in the file.
 * A 401/403 on renew or login, or an expiry with no way to log in again, raises
 * `secrets_bootstrap_token_expired`; the server keeps serving with the key it holds.
 */
import { ConfigError, parseMasterKey } from "../config.ts";
import type { Clock } from "../clock.ts";
import type { SecretRegistry } from "../log.ts";
import {
  metadataPathOf,
  type VaultAuth,
  VaultClient,
  VaultError,
  type VaultFetch,
} from "./hashicorp.ts";

export interface VaultSettings {
  addr: string;
  namespace?: string;
  caFile?: string;
  roleId?: string;
  roleIdFile?: string;
  secretIdFile: string;
  removeSecretId: boolean;
  keyPath: string;
}

export interface VaultSourceDeps {
  fetch?: VaultFetch;
  clock: Clock;
  secrets?: SecretRegistry;
  readTextFile?: (path: string) => Promise<string>;
  remove?: (path: string) => Promise<void>;
}

/** After a failed renew or login that was not a refusal, the next attempt waits this long. */
const RETRY_MS = 30_000;

/** The wrapping TTL asked for: long enough for one round trip, short enough to be useless later. */
export const WRAP_TTL_SECONDS = 60;

/** A wrapping token that was unwrapped before us: someone else saw the token. Exit 78. */
export class WrappingReusedError extends ConfigError {
  constructor() {
    super([
      "SECURITY: the response-wrapped Vault token was already unwrapped (or revoked) a moment " +
      "after Vault issued it: someone else may hold sosvault's Vault token. Refusing to start. " +
      "Revoke the AppRole's tokens and secret IDs (vault write auth/approle/role/sosvault/" +
      "secret-id-accessor/destroy …, vault token revoke -accessor …), check Vault's audit log " +
      "for the unwrap, and issue a new secret ID",
    ]);
    this.name = "WrappingReusedError";
  }
}

export interface VaultStep {
  step: string;
  ok: boolean;
  detail: string;
}

export type VaultAlert = { kind: "token_expired"; reason: string };

/** What one start fetched, and the token's life from then on. */
export class VaultSession {
  /** The steps of the start, for `doctor`. */
  readonly steps: VaultStep[] = [];
  current!: Uint8Array;
  previous?: Uint8Array;
  currentVersion = 0;
  #token: string | null = null;
  #unregister: (() => void)[] = [];
  #issuedAt = 0;
  #lease = 0;
  #expiresAt = 0;
  #renewable = false;
  #atMax = false;
  #next = 0;
  #usedSecretId = "";
  #alerted = false;
  onAlert: (alert: VaultAlert) => void | Promise<void> = () => {};

  private constructor(
    readonly settings: VaultSettings,
    private client: VaultClient,
    private d: Required<Omit<VaultSourceDeps, "fetch" | "secrets">> & { secrets?: SecretRegistry },
  ) {}

  static async start(settings: VaultSettings, deps: VaultSourceDeps): Promise<VaultSession> {
    const fetchFn = deps.fetch ?? await defaultFetch(settings.caFile);
    const s = new VaultSession(
      settings,
      new VaultClient({
        addr: settings.addr,
        namespace: settings.namespace,
        fetch: fetchFn,
      }),
      {
        clock: deps.clock,
        secrets: deps.secrets,
        readTextFile: deps.readTextFile ?? ((p) => Deno.readTextFile(p)),
        remove: deps.remove ?? ((p) => Deno.remove(p)),
      },
    );
    await s.#bootstrap();
    return s;
  }

  get tokenExpiresAt(): number {
    return this.#expiresAt;
  }

  /** Vault capped the last renewal at the token's max TTL: the next step is a fresh login. */
  get atMaxTtl(): boolean {
    return this.#atMax;
  }

  get issuedAt(): number {
    return this.#issuedAt;
  }

  /** When `step()` should next run (ms since the epoch); null once nothing is left to do. */
  get nextStepAt(): number | null {
    if (this.#token === null) return null;
    if (this.#alerted) return null;
    return this.#next;
  }

  /** Two thirds of the way to expiry; the expiry itself once less than 30 s are left. */
  #plan(now: number) {
    const left = this.#expiresAt - now;
    this.#next = left < 30_000 ? this.#expiresAt : now + left * 2 / 3;
  }

  async #bootstrap(): Promise<void> {
    const roleId = await this.#roleId();
    const secretId = await this.#secretId();
    if (!secretId) {
      throw new ConfigError([
        `VAULT_SECRET_ID_FILE (${this.settings.secretIdFile}) cannot be read or is empty: ` +
        "place a fresh secret ID there (vault write -f -field=secret_id auth/approle/role/sosvault/secret-id)",
      ]);
    }
    await this.#login(roleId, secretId, "start");
    if (this.settings.removeSecretId) {
      try {
        await this.d.remove(this.settings.secretIdFile);
        this.steps.push({ step: "secret ID file", ok: true, detail: "removed after use" });
      } catch (err) {
        this.steps.push({
          step: "secret ID file",
          ok: false,
          detail: `could not be removed (${(err as Error).name}): remove it by hand`,
        });
      }
    }
    await this.#readKeys();
  }

  async #roleId(): Promise<string> {
    if (this.settings.roleId) return this.settings.roleId;
    try {
      const id = (await this.d.readTextFile(this.settings.roleIdFile!)).trim();
      if (id) return id;
    } catch { /* reported below */ }
    throw new ConfigError([
      `VAULT_ROLE_ID_FILE (${this.settings.roleIdFile}) cannot be read or is empty`,
    ]);
  }

  async #secretId(): Promise<string | null> {
    try {
      const id = (await this.d.readTextFile(this.settings.secretIdFile)).trim();
      return id || null;
    } catch {
      return null;
    }
  }

  async #login(roleId: string, secretId: string, when: "start" | "relogin"): Promise<void> {
    const releaseSecret = this.d.secrets?.register(secretId);
    try {
      const wrap = await this.client.loginWrapped(roleId, secretId, WRAP_TTL_SECONDS);
      this.#usedSecretId = secretId;
      const releaseWrap = this.d.secrets?.register(wrap.token);
      let auth: VaultAuth;
      try {
        if (wrap.creation_path && wrap.creation_path !== "auth/approle/login") {
          // Security: a wrapping token made by another path is not the answer to our login.
          throw new WrappingReusedError();
        }
        auth = await this.client.unwrapAuth(wrap.token);
      } catch (err) {
        // Security: Vault answers 400 "wrapping token is not valid or does not exist" for a
        // token already unwrapped; ours was issued a moment ago, so someone else used it.
        if (err instanceof VaultError && err.status === 400) throw new WrappingReusedError();
        throw err;
      } finally {
        releaseWrap?.();
      }
      this.#setToken(auth);
      this.steps.push({
        step: when === "start" ? "AppRole login, wrapped" : "AppRole re-login, wrapped",
        ok: true,
        detail:
          `wrapping TTL ${wrap.ttl}s, unwrapped in memory; token TTL ${auth.lease_duration}s` +
          (auth.renewable ? ", renewable" : ", not renewable"),
      });
    } finally {
      releaseSecret?.();
    }
  }

  #setToken(auth: VaultAuth) {
    for (const u of this.#unregister) u();
    this.#token = auth.client_token;
    // Security: the token is masked in every log line while the process holds it.
    this.#unregister = this.d.secrets ? [this.d.secrets.register(auth.client_token)] : [];
    const now = this.d.clock().getTime();
    this.#issuedAt = now;
    this.#lease = auth.lease_duration;
    this.#expiresAt = now + auth.lease_duration * 1000;
    this.#renewable = auth.renewable;
    this.#atMax = !auth.renewable;
    this.#alerted = false;
    this.#plan(now);
  }

  async #readKeys(): Promise<void> {
    const token = this.#token!;
    const path = this.settings.keyPath;
    const secret = await this.client.readKv(token, path);
    this.current = keyFrom(secret.data, path, secret.metadata.version);
    this.currentVersion = secret.metadata.version;
    this.steps.push({
      step: "read the master key",
      ok: true,
      detail: `${path} version ${secret.metadata.version}, field key`,
    });
    const meta = await this.client.readKvMetadata(token, metadataPathOf(path));
    const prev = this.currentVersion - 1;
    const info = meta.versions[String(prev)];
    if (prev >= 1 && info && !info.destroyed && !info.deletion_time) {
      const old = await this.client.readKv(token, path, prev);
      this.previous = keyFrom(old.data, path, prev);
      this.steps.push({
        step: "read the previous key",
        ok: true,
        detail: `version ${prev}: used as TOKEN_VAULT_MASTER_KEY_PREVIOUS`,
      });
    } else {
      this.steps.push({ step: "read the previous key", ok: true, detail: "none (first version)" });
    }
  }

  /**
   * Renews the token, or logs in again once it is at its max TTL. Call it at `nextStepAt`
   * (the server schedules it; tests call it after moving their clock).
   */
  async step(): Promise<"renewed" | "relogged" | "expired" | "idle"> {
    if (this.#token === null || this.#alerted) return "idle";
    const now = this.d.clock().getTime();
    try {
      if (!this.#atMax && this.#renewable && now < this.#expiresAt) {
        const auth = await this.client.renewSelf(this.#token, this.#lease);
        const expiresAt = now + auth.lease_duration * 1000;
        // Vault caps a renewal at the token's max TTL: a shorter lease than asked means we
        // are there, and the next step is a fresh login.
        this.#atMax = auth.lease_duration < this.#lease || expiresAt <= this.#expiresAt;
        this.#issuedAt = now;
        this.#expiresAt = expiresAt;
        this.#plan(now);
        return "renewed";
      }
      const secretId = await this.#secretId();
      if (secretId && secretId !== this.#usedSecretId) {
        await this.#login(await this.#roleId(), secretId, "relogin");
        if (this.settings.removeSecretId) {
          await this.d.remove(this.settings.secretIdFile).catch(() => {});
        }
        return "relogged";
      }
      if (now < this.#expiresAt) {
        // No new secret ID yet: look again at two thirds of what is left.
        this.#plan(now);
        return "idle";
      }
      await this.#alert(
        "the token reached its max TTL and no new secret ID was placed in VAULT_SECRET_ID_FILE",
      );
      return "expired";
    } catch (err) {
      if (err instanceof VaultError && err.permissionDenied) {
        await this.#alert(`${err.message}`);
        return "expired";
      }
      // Vault down, or a secret ID it refuses (400): try again in a while, not in a loop.
      if (now >= this.#expiresAt) {
        await this.#alert(
          `the token expired and Vault did not renew it (${(err as Error).message})`,
        );
        return "expired";
      }
      this.#next = Math.min(now + RETRY_MS, this.#expiresAt);
      throw err;
    }
  }

  async #alert(reason: string) {
    this.#alerted = true;
    await this.onAlert({ kind: "token_expired", reason });
  }

  /** Forgets the token (shutdown). */
  close() {
    this.#token = null;
    for (const u of this.#unregister) u();
    this.#unregister = [];
  }
}

function keyFrom(data: Record<string, unknown>, path: string, version: number): Uint8Array {
  const text = data.key;
  const bytes = typeof text === "string" ? parseMasterKey(text) : null;
  if (!bytes) {
    throw new ConfigError([
      `the Vault secret ${path} (version ${version}) has no field "key" holding 32 random bytes ` +
      "as base64 (44 characters) or hex (64 characters)",
    ]);
  }
  return bytes;
}

async function defaultFetch(caFile?: string): Promise<VaultFetch> {
  const client = caFile
    ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(caFile)] })
    : undefined;
  return (req) => fetch(req, client ? { client } : {});
}

/** A start failure as the operator should read it (exit 78). */
export function vaultStartError(err: unknown, settings: VaultSettings): ConfigError {
  if (err instanceof ConfigError) return err;
  if (err instanceof VaultError) {
    const hint = err.status === 0
      ? `check VAULT_ADDR (${settings.addr}), the network and VAULT_CACERT`
      : err.permissionDenied
      ? "the AppRole's policy does not allow this step, or the role/secret ID is wrong or used up: " +
        "`sosvault doctor` prints the policy it needs"
      : err.status === 404
      ? `check SOSVAULT_VAULT_KEY_PATH (${settings.keyPath}) and VAULT_NAMESPACE`
      : "see Vault's answer above";
    return new ConfigError([`SOSVAULT_KEY_SOURCE=vault: ${err.message}: ${hint}`]);
  }
  return new ConfigError([
    `SOSVAULT_KEY_SOURCE=vault: the key could not be fetched (${(err as Error)?.name ?? "error"})`,
  ]);
}

/** The policy the AppRole needs: read the key's data and metadata, renew its own token. */
export function vaultPolicy(keyPath: string): string {
  return [
    `path "${keyPath}" {`,
    `  capabilities = ["read"]`,
    `}`,
    `path "${metadataPathOf(keyPath)}" {`,
    `  capabilities = ["read"]`,
    `}`,
    `path "auth/token/renew-self" {`,
    `  capabilities = ["update"]`,
    `}`,
  ].join("\n");
}
