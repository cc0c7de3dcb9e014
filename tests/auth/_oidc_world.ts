/**
 * A sosvault server in SOSVAULT_AUTH=oidc against the real test IdP (tests/helpers/oidc_provider.ts),
 * with a hand-moved clock and a helper that crafts tokens relative to it.
 */
import type { JWTPayload } from "jose";
import { startIdp, type TestIdp } from "../helpers/oidc_provider.ts";
import { type StartOptions, startServer, type TestServer } from "../helpers/server.ts";
import { TestClock } from "../helpers/clock.ts";

export interface OidcWorld {
  idp: TestIdp;
  server: TestServer;
  clock: TestClock;
  audience: string;
  /** Claims of a good token for `user`, as the IdP issues them, overridable one by one. */
  claims(user?: string, over?: JWTPayload): JWTPayload;
  /** A good signed token for `user` (with `over` applied). */
  token(user?: string, over?: JWTPayload): Promise<string>;
  close(): Promise<void>;
}

export async function startOidcWorld(
  options: StartOptions & { idpDown?: boolean; systemClock?: boolean } = {},
): Promise<OidcWorld> {
  const idp = await startIdp();
  idp.down = options.idpDown ?? false;
  // Tokens from the real provider carry real times; crafted ones follow the test clock.
  const clock = new TestClock(Date.now());
  const server = await startServer({
    ...options,
    clock: options.systemClock ? undefined : clock,
    env: {
      SOSVAULT_AUTH: "oidc",
      SOSVAULT_OIDC_ISSUER: idp.issuer,
      SOSVAULT_OIDC_ADMIN_GROUP: "sosvault-admins",
      ...options.env,
    },
  });
  await server.services.oidc!.keys.start();
  const audience = `${server.url}/mcp`;
  const claims = (user = "alice", over: JWTPayload = {}): JWTPayload => {
    const now = Math.floor(clock.now().getTime() / 1000);
    return {
      iss: idp.issuer,
      aud: audience,
      sub: `sub-${user}`,
      preferred_username: user,
      scope: "openid sosvault",
      client_id: "some-client",
      iat: now,
      exp: now + 300,
      ...(user === "alice" ? { groups: ["sosvault-admins"] } : {}),
      ...over,
    };
  };
  return {
    idp,
    server,
    clock,
    audience,
    claims,
    token: (user, over) => idp.sign(claims(user, over)),
    async close() {
      await server.close();
      await idp.close();
    },
  };
}
