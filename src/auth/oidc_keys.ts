/**
 * The issuer's discovery document and signing keys (SOSVAULT_AUTH=oidc). Keys are fetched at
 * start and kept; a token naming an unknown `kid` triggers one refetch, at most once a minute,
 * so a stream of forged kids cannot turn sosvault into a load generator against the IdP. The
 * keys are imported once by jose's local key set and reused: we cache keys, never tokens.
 */
import {
  createLocalJWKSet,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
} from "jose";
import { AppError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";

export interface OidcMetadata {
  issuer: string;
  jwks_uri: string;
  authorization_endpoint: string;
  token_endpoint: string;
}

export type KeyResolver = ReturnType<typeof createLocalJWKSet>;

export interface OidcKeysOptions {
  issuer: string;
  clock: Clock;
  log: Logger;
  fetch?: typeof fetch;
  /** Least time between two refetches for an unknown kid. */
  refreshMs?: number;
  /** Least time between two attempts while no keys were ever fetched (IdP down at start). */
  retryMs?: number;
  timeoutMs?: number;
}

/** The IdP could not be reached or answered nonsense: /mcp says 503 until it is back. */
export class IdpUnavailable extends AppError {
  constructor(detail: Record<string, unknown>) {
    super(
      "upstream_unavailable",
      "the identity provider cannot be reached yet, so sosvault cannot check access tokens: try again shortly",
      { detail },
    );
  }
}

const MAX_DOCUMENT_BYTES = 256 * 1024;

export class OidcKeys {
  private meta: OidcMetadata | null = null;
  private keys: KeyResolver | null = null;
  private lastAttempt = -Infinity;
  private inflight: Promise<void> | null = null;
  private started: Promise<boolean> | null = null;
  private lastError: string | null = null;
  private readonly fetchFn: typeof fetch;
  private readonly refreshMs: number;
  private readonly retryMs: number;
  private readonly timeoutMs: number;

  constructor(private opts: OidcKeysOptions) {
    this.fetchFn = opts.fetch ?? fetch;
    this.refreshMs = opts.refreshMs ?? 60_000;
    this.retryMs = opts.retryMs ?? 5_000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /**
   * Fetches at start; a failure is only a warning, since the IdP may come up after us. Called
   * again it returns the first attempt's outcome (tests wait on it).
   */
  start(): Promise<boolean> {
    return this.started ??= this.firstFetch();
  }

  private async firstFetch(): Promise<boolean> {
    try {
      await this.refresh();
      return true;
    } catch (err) {
      this.opts.log.warn("oidc_issuer_unreachable", {
        issuer: this.opts.issuer,
        error: (err as AppError).detail ?? String(err),
      });
      return false;
    }
  }

  /** For doctor and the log: whether keys are loaded, and the last failure. */
  status(): { ready: boolean; error: string | null } {
    return { ready: this.keys !== null, error: this.lastError };
  }

  /** The discovery document; fetched on first need while the IdP was down at start. */
  async metadata(): Promise<OidcMetadata> {
    if (!this.meta) await this.refreshIfDue(this.retryMs);
    if (!this.meta) throw new IdpUnavailable({ reason: this.lastError });
    return this.meta;
  }

  /** jose's key-resolver signature: picks the key for a token's protected header. */
  resolver(): (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey> {
    return async (header, token) => {
      if (!this.keys) await this.refreshIfDue(this.retryMs);
      if (!this.keys) throw new IdpUnavailable({ reason: this.lastError });
      try {
        return await this.keys(header, token);
      } catch (err) {
        if ((err as { code?: string }).code !== "ERR_JWKS_NO_MATCHING_KEY") throw err;
        // An unknown kid: the IdP may have rotated its keys. Look again, once a minute at most.
        if (!await this.refreshIfDue(this.refreshMs)) throw err;
        return await this.keys(header, token);
      }
    };
  }

  /** Refetches when the last attempt is older than `minGapMs`; true when it fetched. */
  private async refreshIfDue(minGapMs: number): Promise<boolean> {
    if (this.inflight) {
      await this.inflight.catch(() => {});
      return true;
    }
    if (this.opts.clock().getTime() - this.lastAttempt < minGapMs) return false;
    try {
      await this.refresh();
    } catch { /* recorded in lastError; the caller answers 503 or unknown kid */ }
    return true;
  }

  private refresh(): Promise<void> {
    this.lastAttempt = this.opts.clock().getTime();
    this.inflight = (async () => {
      try {
        const meta = await this.getJson<OidcMetadata>(
          `${this.opts.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`,
        );
        // Security: OIDC Discovery 4.3 — the document must name the issuer we were configured
        // with, or a token from a look-alike issuer could pass.
        if (meta.issuer !== this.opts.issuer) {
          throw new IdpUnavailable({
            reason: "discovery issuer differs from SOSVAULT_OIDC_ISSUER",
          });
        }
        for (const f of ["jwks_uri", "authorization_endpoint", "token_endpoint"] as const) {
          if (typeof meta[f] !== "string" || !/^https?:\/\//.test(meta[f])) {
            throw new IdpUnavailable({ reason: `discovery document has no usable ${f}` });
          }
        }
        const jwks = await this.getJson<JSONWebKeySet>(meta.jwks_uri);
        if (!Array.isArray(jwks?.keys)) {
          throw new IdpUnavailable({ reason: "jwks_uri did not return a key set" });
        }
        this.keys = createLocalJWKSet(jwks);
        this.meta = meta;
        this.lastError = null;
      } catch (err) {
        this.lastError = err instanceof AppError
          ? String(err.detail?.reason ?? err.message)
          : (err as Error).name;
        throw err instanceof AppError ? err : new IdpUnavailable({ reason: this.lastError });
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  private async getJson<T>(url: string): Promise<T> {
    const res = await this.fetchFn(url, {
      headers: { accept: "application/json" },
      redirect: "error",
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) {
      await res.body?.cancel();
      throw new IdpUnavailable({ reason: `${new URL(url).pathname} answered ${res.status}` });
    }
    const text = await res.text();
    if (text.length > MAX_DOCUMENT_BYTES) {
      throw new IdpUnavailable({ reason: `${new URL(url).pathname} is too large` });
    }
    return JSON.parse(text) as T;
  }
}
