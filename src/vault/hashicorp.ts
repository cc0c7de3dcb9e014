/**
 * A small client for the parts of HashiCorp Vault's HTTP API that deliver "secret zero":
 * AppRole login with a response-wrapped token, unwrap, KV v2 reads, token renewal
 * (developer.hashicorp.com/vault/api-docs; the facts are listed in
 * tests/helpers/fake_vault/FACTS.md). Written against the documented API, not the fake.
 * Nothing here logs; no error message carries a token, a secret ID or a key.
 */

export type VaultFetch = (request: Request) => Promise<Response>;

export class VaultError extends Error {
  constructor(
    /** What we were doing, e.g. "AppRole login". */
    readonly step: string,
    /** The HTTP status, 0 when Vault could not be reached. */
    readonly status: number,
    /** Vault's `errors` array (Vault's own texts; never one of our secrets). */
    readonly errors: string[],
  ) {
    super(
      status === 0
        ? `${step}: Vault is unreachable (${errors.join("; ")})`
        : `${step}: Vault answered ${status}${errors.length ? ` (${errors.join("; ")})` : ""}`,
    );
    this.name = "VaultError";
  }

  get permissionDenied(): boolean {
    return this.status === 403 || this.status === 401;
  }
}

export interface VaultAuth {
  client_token: string;
  accessor?: string;
  policies?: string[];
  lease_duration: number;
  renewable: boolean;
}

export interface WrapInfo {
  token: string;
  ttl: number;
  creation_time?: string;
  creation_path?: string;
  accessor?: string;
}

export interface KvSecret {
  data: Record<string, unknown>;
  metadata: { version: number; created_time?: string; deletion_time?: string; destroyed?: boolean };
}

export interface KvMetadata {
  current_version: number;
  oldest_version?: number;
  versions: Record<string, { created_time?: string; deletion_time?: string; destroyed?: boolean }>;
}

export interface VaultClientOptions {
  addr: string;
  namespace?: string;
  fetch: VaultFetch;
  timeoutMs?: number;
}

export class VaultClient {
  constructor(private o: VaultClientOptions) {}

  /** `POST auth/approle/login` with `X-Vault-Wrap-TTL`: the answer is only a wrapping token. */
  async loginWrapped(roleId: string, secretId: string, wrapTtlSeconds: number): Promise<WrapInfo> {
    const body = await this.#call("AppRole login", "POST", "auth/approle/login", {
      body: { role_id: roleId, secret_id: secretId },
      headers: { "X-Vault-Wrap-TTL": `${wrapTtlSeconds}s` },
    });
    const wrap = (body as { wrap_info?: WrapInfo }).wrap_info;
    if (!wrap || typeof wrap.token !== "string" || wrap.token === "") {
      throw new VaultError("AppRole login", 200, ["the answer was not response-wrapped"]);
    }
    return wrap;
  }

  /** `POST sys/wrapping/unwrap` with the wrapping token as the client token. */
  async unwrapAuth(wrappingToken: string): Promise<VaultAuth> {
    const body = await this.#call("unwrap", "POST", "sys/wrapping/unwrap", {
      token: wrappingToken,
    });
    const auth = (body as { auth?: VaultAuth }).auth;
    if (!auth || typeof auth.client_token !== "string" || auth.client_token === "") {
      throw new VaultError("unwrap", 200, ["the wrapped answer holds no auth token"]);
    }
    return auth;
  }

  /** `GET <mount>/data/<path>[?version=N]` (KV v2). */
  async readKv(token: string, dataPath: string, version?: number): Promise<KvSecret> {
    const q = version === undefined ? "" : `?version=${version}`;
    const body = await this.#call("read the master key", "GET", `${dataPath}${q}`, { token });
    const data = (body as { data?: KvSecret }).data;
    if (!data || typeof data.data !== "object" || data.data === null) {
      throw new VaultError("read the master key", 200, ["not a KV v2 answer (no data.data)"]);
    }
    return data;
  }

  /** `GET <mount>/metadata/<path>` (KV v2). */
  async readKvMetadata(token: string, metadataPath: string): Promise<KvMetadata> {
    const body = await this.#call("read the key's versions", "GET", metadataPath, { token });
    const data = (body as { data?: KvMetadata }).data;
    if (!data || typeof data.current_version !== "number") {
      throw new VaultError("read the key's versions", 200, ["not a KV v2 metadata answer"]);
    }
    return data;
  }

  /** `POST auth/token/renew-self`. */
  async renewSelf(token: string, incrementSeconds?: number): Promise<VaultAuth> {
    const body = await this.#call("renew the token", "POST", "auth/token/renew-self", {
      token,
      body: incrementSeconds ? { increment: `${incrementSeconds}s` } : {},
    });
    const auth = (body as { auth?: VaultAuth }).auth;
    if (!auth || typeof auth.lease_duration !== "number") {
      throw new VaultError("renew the token", 200, ["no auth block in the answer"]);
    }
    return auth;
  }

  async #call(
    step: string,
    method: "GET" | "POST",
    path: string,
    init: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<unknown> {
    const headers = new Headers(init.headers);
    if (init.token) headers.set("X-Vault-Token", init.token);
    if (this.o.namespace) headers.set("X-Vault-Namespace", this.o.namespace);
    if (init.body !== undefined) headers.set("Content-Type", "application/json");
    const url = `${this.o.addr.replace(/\/+$/, "")}/v1/${path.replace(/^\/+/, "")}`;
    let res: Response;
    try {
      res = await this.o.fetch(
        new Request(url, {
          method,
          headers,
          body: init.body === undefined ? undefined : JSON.stringify(init.body),
          redirect: "manual",
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000),
        }),
      );
    } catch (err) {
      // The error's name only: transport texts may quote the request.
      throw new VaultError(step, 0, [(err as Error)?.name ?? "network error"]);
    }
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch { /* not JSON: reported by status below */ }
    if (!res.ok) {
      const errors = (body as { errors?: unknown })?.errors;
      throw new VaultError(
        step,
        res.status,
        Array.isArray(errors) ? errors.filter((e) => typeof e === "string").map(clean) : [],
      );
    }
    if (body === null || typeof body !== "object") {
      throw new VaultError(step, res.status, ["the answer is not JSON"]);
    }
    return body;
  }
}

/** Vault's multi-error texts ("1 error occurred:\n\t* permission denied\n\n") on one line. */
function clean(e: string): string {
  return e.replace(/\d+ errors? occurred:\s*/g, "").replace(/\s*\*\s*/g, " ").replace(/\s+/g, " ")
    .trim().slice(0, 200);
}

/** The KV v2 metadata path for a data path: `secret/data/x` → `secret/metadata/x`. */
export function metadataPathOf(dataPath: string): string {
  return dataPath.replace(/^([^/]+(?:\/[^/]+)*?)\/data\//, "$1/metadata/");
}
