/**
 * A fake HashiCorp Vault on loopback HTTPS (the test CA's server certificate covers
 * 127.0.0.1), implementing only what FACTS.md beside it lists, as Vault documents it: AppRole
 * login, response wrapping with single-use unwrap, token TTL / max TTL / renew-self, KV v2
 * data and metadata with versions, namespaces, policies with `permission denied`, and
 * `{"errors":[…]}` bodies. Its clock is injected, so token expiry needs no sleeping.
 */
const TLS_DIR = new URL("../../fixtures/tls/", import.meta.url);

export interface FakeRole {
  roleId: string;
  policies: string[];
  /** 0: unlimited (Vault's default). */
  secretIdNumUses?: number;
  /** Seconds; 0: no expiry. */
  secretIdTtl?: number;
  tokenTtl: number;
  tokenMaxTtl: number;
}

/** path (exact, or a prefix ending in `*`) → capabilities. */
export type FakePolicy = Record<string, string[]>;

interface Token {
  policies: string[];
  namespace: string;
  expiresAt: number;
  maxExpiresAt: number;
  ttl: number;
  renewable: boolean;
}

interface Wrapped {
  response: unknown;
  namespace: string;
  expiresAt: number;
  creationPath: string;
}

interface KvVersion {
  data: Record<string, unknown>;
  created: string;
  deleted: string;
  destroyed: boolean;
}

export interface FakeVaultRequest {
  method: string;
  path: string;
  namespace: string | null;
  hasToken: boolean;
  wrapTtl: string | null;
}

export class FakeVault {
  readonly roles = new Map<string, FakeRole>();
  readonly policies = new Map<string, FakePolicy>([
    // Vault's built-in "default" policy lets every token renew and look up itself.
    ["default", { "auth/token/renew-self": ["update"], "auth/token/lookup-self": ["read"] }],
  ]);
  readonly requests: FakeVaultRequest[] = [];
  /** Every client and wrapping token handed out, for leak checks. */
  readonly issued: string[] = [];
  /** Simulates someone unwrapping every wrapping token before its owner does. */
  stealWrapped = false;
  #secretIds = new Map<string, { roleName: string; uses: number; expiresAt: number }>();
  #tokens = new Map<string, Token>();
  #wrapped = new Map<string, Wrapped>();
  #kv = new Map<string, KvVersion[]>();

  constructor(readonly now: () => number, readonly namespace = "") {}

  addRole(name: string, role: FakeRole) {
    this.roles.set(name, role);
  }

  /** `vault write -f auth/approle/role/NAME/secret-id` */
  newSecretId(roleName: string, id: string = crypto.randomUUID()): string {
    const role = this.roles.get(roleName)!;
    this.#secretIds.set(id, {
      roleName,
      uses: role.secretIdNumUses ?? 0,
      expiresAt: role.secretIdTtl ? this.now() + role.secretIdTtl * 1000 : Infinity,
    });
    return id;
  }

  /** `vault kv put secret/PATH key=…`: a new version. */
  putKv(path: string, data: Record<string, unknown>) {
    const versions = this.#kv.get(path) ?? [];
    versions.push({
      data,
      created: new Date(this.now()).toISOString(),
      deleted: "",
      destroyed: false,
    });
    this.#kv.set(path, versions);
  }

  /** `vault kv metadata delete`-free version delete (soft): `vault kv delete -versions=N`. */
  deleteKvVersion(path: string, version: number) {
    const v = this.#kv.get(path)?.[version - 1];
    if (v) v.deleted = new Date(this.now()).toISOString();
  }

  /** `vault token revoke`: every token of this fake. */
  revokeAllTokens() {
    this.#tokens.clear();
  }

  liveTokens(): number {
    return [...this.#tokens.values()].filter((t) => t.expiresAt > this.now()).length;
  }

  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const ns = req.headers.get("x-vault-namespace");
    const token = req.headers.get("x-vault-token");
    this.requests.push({
      method: req.method,
      path: url.pathname,
      namespace: ns,
      hasToken: token !== null,
      wrapTtl: req.headers.get("x-vault-wrap-ttl"),
    });
    if (!url.pathname.startsWith("/v1/")) return errors(404, []);
    const path = url.pathname.slice(4);
    // Namespaces: every mount of this fake lives in `this.namespace`.
    if ((ns ?? "").replace(/\/+$/, "") !== this.namespace) {
      return errors(404, [`no handler for route "${path}". route entry not found.`]);
    }
    const body = req.method === "POST" || req.method === "PUT"
      ? await req.json().catch(() => ({}))
      : {};

    if (req.method === "POST" && path === "auth/approle/login") {
      return this.#wrapIfAsked(req, "auth/approle/login", this.#login(body));
    }
    if (req.method === "POST" && path === "sys/wrapping/unwrap") {
      const id = typeof body.token === "string" && body.token ? body.token : token;
      const w = id ? this.#wrapped.get(id) : undefined;
      if (id) this.#wrapped.delete(id);
      if (!w || w.expiresAt <= this.now()) {
        return errors(400, ["wrapping token is not valid or does not exist"]);
      }
      return Response.json(w.response);
    }
    const t = token ? this.#tokens.get(token) : undefined;
    if (!t || t.expiresAt <= this.now()) return errors(403, ["permission denied"]);
    if (req.method === "POST" && path === "auth/token/renew-self") {
      if (!this.#allowed(t, path, "update")) return denied();
      if (!t.renewable) return errors(400, ["lease is not renewable"]);
      const asked = parseTtl(body.increment) ?? t.ttl;
      const left = Math.floor((t.maxExpiresAt - this.now()) / 1000);
      const ttl = Math.max(0, Math.min(asked, left));
      t.expiresAt = this.now() + ttl * 1000;
      const warnings = ttl < asked
        ? [
          `TTL of "${asked}s" exceeded the effective max_ttl of "${ttl}s"; TTL value is capped accordingly`,
        ]
        : null;
      return Response.json({
        ...envelope(),
        warnings,
        auth: { client_token: token, policies: t.policies, lease_duration: ttl, renewable: true },
      });
    }
    const kv = /^secret\/(data|metadata)\/(.+)$/.exec(path);
    if (req.method === "GET" && kv) {
      if (!this.#allowed(t, path, "read")) return denied();
      const versions = this.#kv.get(kv[2]);
      if (!versions?.length) return errors(404, []);
      if (kv[1] === "metadata") {
        return Response.json({
          ...envelope(),
          data: {
            current_version: versions.length,
            oldest_version: 1,
            max_versions: 0,
            versions: Object.fromEntries(versions.map((v, i) => [String(i + 1), {
              created_time: v.created,
              deletion_time: v.deleted,
              destroyed: v.destroyed,
            }])),
          },
        });
      }
      const n = url.searchParams.has("version")
        ? Number(url.searchParams.get("version"))
        : versions.length;
      const v = versions[(n || versions.length) - 1];
      if (!v) return errors(404, []);
      const meta = {
        version: n || versions.length,
        created_time: v.created,
        deletion_time: v.deleted,
        destroyed: v.destroyed,
        custom_metadata: null,
      };
      // A deleted version answers 404 with its metadata and no data.
      if (v.deleted || v.destroyed) {
        return Response.json({ ...envelope(), data: { data: null, metadata: meta } }, {
          status: 404,
        });
      }
      return Response.json({ ...envelope(), data: { data: v.data, metadata: meta } });
    }
    return errors(404, [`no handler for route "${path}". route entry not found.`]);
  }

  #login(body: { role_id?: unknown; secret_id?: unknown }): Response | unknown {
    const entry = [...this.roles.entries()].find(([, r]) => r.roleId === body.role_id);
    const sid = typeof body.secret_id === "string"
      ? this.#secretIds.get(body.secret_id)
      : undefined;
    if (!entry || !sid || sid.roleName !== entry[0] || sid.expiresAt <= this.now()) {
      return errors(400, ["invalid role or secret ID"]);
    }
    if (sid.uses > 0 && --sid.uses === 0) this.#secretIds.delete(body.secret_id as string);
    const role = entry[1];
    const clientToken = "hvs." + randomText(24);
    this.issued.push(clientToken);
    const policies = ["default", ...role.policies];
    this.#tokens.set(clientToken, {
      policies,
      namespace: this.namespace,
      ttl: role.tokenTtl,
      expiresAt: this.now() + role.tokenTtl * 1000,
      maxExpiresAt: this.now() + role.tokenMaxTtl * 1000,
      renewable: true,
    });
    return {
      ...envelope(),
      auth: {
        client_token: clientToken,
        accessor: randomText(24),
        policies,
        token_policies: policies,
        metadata: { role_name: entry[0] },
        lease_duration: role.tokenTtl,
        renewable: true,
        entity_id: "",
        token_type: "service",
        orphan: true,
      },
    };
  }

  #wrapIfAsked(req: Request, creationPath: string, result: Response | unknown): Response {
    if (result instanceof Response) return result;
    const ttl = parseTtl(req.headers.get("x-vault-wrap-ttl"));
    if (ttl === undefined) return Response.json(result);
    const token = "hvs." + randomText(24);
    this.issued.push(token);
    this.#wrapped.set(token, {
      response: result,
      namespace: this.namespace,
      expiresAt: this.now() + ttl * 1000,
      creationPath,
    });
    if (this.stealWrapped) this.#wrapped.delete(token);
    return Response.json({
      ...envelope(),
      wrap_info: {
        token,
        accessor: randomText(24),
        ttl,
        creation_time: new Date(this.now()).toISOString(),
        creation_path: creationPath,
        wrapped_accessor: (result as { auth?: { accessor?: string } }).auth?.accessor ?? "",
      },
    });
  }

  #allowed(t: Token, path: string, capability: string): boolean {
    for (const name of t.policies) {
      const policy = this.policies.get(name) ?? {};
      for (const [p, caps] of Object.entries(policy)) {
        const match = p.endsWith("*") ? path.startsWith(p.slice(0, -1)) : path === p;
        if (!match) continue;
        if (caps.includes("deny")) return false;
        if (caps.includes(capability)) return true;
      }
    }
    return false;
  }
}

function envelope() {
  return {
    request_id: crypto.randomUUID(),
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data: null,
    wrap_info: null,
    warnings: null,
    auth: null,
  };
}

function errors(status: number, list: string[]): Response {
  return Response.json({ errors: list }, { status });
}

const denied = () => errors(403, ["1 error occurred:\n\t* permission denied\n\n"]);

/** Vault durations: a number of seconds, or a string like "60s", "5m", "1h". */
function parseTtl(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v !== "string" || v === "") return undefined;
  const m = /^(\d+)([smh]?)$/.exec(v.trim());
  if (!m) return undefined;
  return Number(m[1]) * ({ "": 1, s: 1, m: 60, h: 3600 } as Record<string, number>)[m[2]];
}

function randomText(n: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => alphabet[b % 62]).join("");
}

export interface RunningFakeVault {
  url: string;
  vault: FakeVault;
  close(): Promise<void>;
}

/** Serves `vault` on https://127.0.0.1:PORT with the test CA's server certificate. */
export async function startFakeVault(vault: FakeVault): Promise<RunningFakeVault> {
  const [cert, key] = await Promise.all([
    Deno.readTextFile(new URL("server.pem", TLS_DIR)),
    Deno.readTextFile(new URL("server-key.pem", TLS_DIR)),
  ]);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert, key, onListen() {} },
    (req) => vault.fetch(req),
  );
  return {
    url: `https://127.0.0.1:${server.addr.port}`,
    vault,
    close: () => server.shutdown(),
  };
}
