/**
 * A real OpenID Provider for the tests: `oidc-provider` (certified, from npm) on a loopback
 * port, issuing JWT access tokens for sosvault's resource (RFC 8707 resource indicators). Its
 * login step is driven by the test: whoever `nextLogin` names is signed in, which stands for a
 * person typing a password. The same private key signs the deliberately bad tokens the tests
 * craft with `sign()`, so "bad" is exactly one property away from a good token.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import Provider from "oidc-provider";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";

export interface TestAccount {
  groups?: string[];
  /** Replaces preferred_username (e.g. to test a name that is not a sosvault user name). */
  preferredUsername?: string;
}

export interface TestIdp {
  issuer: string;
  kid: string;
  privateKey: CryptoKey;
  /** The public key as a JWK, as the issuer publishes it. */
  publicJwk: Record<string, unknown>;
  /** Who the next authorization request signs in as. */
  nextLogin: string;
  accounts: Map<string, TestAccount>;
  /** While true every request answers 503 (an IdP that is down). */
  down: boolean;
  /** Requests to the JWKS endpoint so far (to prove the refetch limit). */
  jwksFetches: number;
  /** Registers a client at run time (the connect page's redirect URI is known only later). */
  addClient(metadata: Record<string, unknown>): void;
  /** Signs a token as this issuer would, with overridable claims, header and key. */
  sign(
    claims: JWTPayload,
    options?: { alg?: string; kid?: string; key?: CryptoKey | Uint8Array; typ?: string },
  ): Promise<string>;
  close(): Promise<void>;
}

export const PUBLIC_CLIENT_ID = "mcp-test-client";
export const PUBLIC_REDIRECT = "http://127.0.0.1/callback";

/** A Map-backed store satisfying oidc-provider's adapter interface; Client also finds `extra`. */
function adapterFactory(extraClients: Map<string, Record<string, unknown>>) {
  const store = new Map<string, Record<string, unknown>>();
  return class TestAdapter {
    constructor(private model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    upsert(id: string, payload: Record<string, unknown>) {
      store.set(this.key(id), payload);
      return Promise.resolve();
    }
    find(id: string) {
      if (this.model === "Client" && extraClients.has(id)) {
        return Promise.resolve(extraClients.get(id));
      }
      return Promise.resolve(store.get(this.key(id)));
    }
    findByUid(uid: string) {
      for (const [k, v] of store) {
        if (k.startsWith(`${this.model}:`) && v.uid === uid) return Promise.resolve(v);
      }
      return Promise.resolve(undefined);
    }
    findByUserCode(code: string) {
      for (const [k, v] of store) {
        if (k.startsWith(`${this.model}:`) && v.userCode === code) return Promise.resolve(v);
      }
      return Promise.resolve(undefined);
    }
    consume(id: string) {
      const v = store.get(this.key(id));
      if (v) v.consumed = Math.floor(Date.now() / 1000);
      return Promise.resolve();
    }
    destroy(id: string) {
      store.delete(this.key(id));
      return Promise.resolve();
    }
    revokeByGrantId(grantId: string) {
      for (const [k, v] of store) if (v.grantId === grantId) store.delete(k);
      return Promise.resolve();
    }
  };
}

export async function startIdp(options: { accessTokenTtl?: number } = {}): Promise<TestIdp> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = `test-${crypto.randomUUID().slice(0, 8)}`;
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: "RS256", use: "sig" };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  const extraClients = new Map<string, Record<string, unknown>>();

  let handler: http.RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const idp: TestIdp = {
    issuer,
    kid,
    privateKey,
    publicJwk,
    nextLogin: "alice",
    accounts: new Map([["alice", { groups: ["sosvault-admins"] }], ["bob", {}]]),
    down: false,
    jwksFetches: 0,
    addClient: (m) => extraClients.set(String(m.client_id), m),
    sign: (claims, o = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: o.alg ?? "RS256", kid: o.kid ?? kid, typ: o.typ ?? "at+jwt" })
        .sign(o.key ?? privateKey),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const provider = new Provider(issuer, {
    adapter: adapterFactory(extraClients),
    jwks: { keys: [privateJwk] },
    cookies: { keys: [crypto.randomUUID()] },
    clients: [{
      client_id: PUBLIC_CLIENT_ID,
      token_endpoint_auth_method: "none",
      redirect_uris: [PUBLIC_REDIRECT],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    }],
    scopes: ["openid", "profile", "sosvault"],
    claims: { openid: ["sub"], profile: ["preferred_username", "groups"] },
    pkce: { required: () => true },
    // The ID token carries preferred_username itself (as Keycloak's does), for the connect page.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // Security (of the test): tokens only for a resource the client named, with its scope.
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: "sosvault",
          audience: resource,
          accessTokenTTL: options.accessTokenTtl ?? 300,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
    findAccount: (_ctx: unknown, sub: string) => {
      const account = idp.accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        claims: () => ({
          sub,
          preferred_username: account.preferredUsername ?? sub,
          groups: account.groups ?? [],
        }),
      };
    },
    // The claims sosvault reads go into the access token itself (RFC 9068 allows any claim).
    extraTokenClaims: (_ctx: unknown, token: { accountId?: string }) => {
      const account = token.accountId ? idp.accounts.get(token.accountId) : undefined;
      if (!account || !token.accountId) return undefined;
      return {
        preferred_username: account.preferredUsername ?? token.accountId,
        groups: account.groups ?? [],
      };
    },
    interactions: {
      url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    ttl: { AccessToken: options.accessTokenTtl ?? 300 },
  });
  const callback = provider.callback();
  handler = (req, res) => {
    if (idp.down) {
      res.statusCode = 503;
      res.end();
      return;
    }
    if (req.url?.startsWith("/jwks")) idp.jwksFetches++;
    if (req.url?.startsWith("/interaction/")) {
      // The person at the keyboard: signs in as nextLogin, grants what was asked, goes back.
      interact(provider, idp, req, res).catch((err: Error) => {
        res.statusCode = 500;
        res.end(err.message);
      });
      return;
    }
    callback(req, res);
  };
  return idp;
}

async function interact(
  provider: Provider,
  idp: TestIdp,
  req: http.IncomingMessage,
  res: http.ServerResponse,
) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === "login") {
    await provider.interactionFinished(req, res, { login: { accountId: idp.nextLogin } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  // Consent: everything asked is granted (consent is not what these tests are about).
  const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({
    accountId: details.session.accountId,
    clientId: details.params.client_id,
  });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, (scopes as string[]).join(" "));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, {
    mergeWithLastSubmission: true,
  });
}

/**
 * A minimal user agent: follows an authorization URL through the IdP's redirects, keeping its
 * cookies, until the redirect to `redirectPrefix`; returns that URL (holding code and state).
 */
export async function followAuthorization(start: string, redirectPrefix: string): Promise<URL> {
  const cookies = new Map<string, string>();
  let url = start;
  for (let hop = 0; hop < 12; hop++) {
    const res = await fetch(url, {
      redirect: "manual",
      headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair.indexOf("=");
      cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const text = await res.text();
    const location = res.headers.get("location");
    if (!location) {
      throw new Error(
        `authorization stopped at ${res.status}: ${
          text.replace(/<style>[\s\S]*<\/style>/, "").replace(/<[^>]+>/g, " ").replace(/\s+/g, " ")
            .slice(0, 400)
        }`,
      );
    }
    const next = new URL(location, url);
    if (next.href.startsWith(redirectPrefix)) return next;
    url = next.href;
  }
  throw new Error("too many redirects during authorization");
}
