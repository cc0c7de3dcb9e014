/**
 * A minimal OpenID issuer for the JWT-auth bench: discovery document and JWKS on loopback, and
 * RS256 access tokens signed with jose. The bench measures sosvault's cost of checking a JWT
 * on every call (signature with a cached key, claims, deny list), so the issuer only has to
 * publish a key; the full OAuth flow against a real provider is tests/auth/'s job.
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";

export interface BenchIssuer {
  issuer: string;
  /** A token for `user`, meant for `audience`, valid for two hours. */
  token(user: string, audience: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startBenchIssuer(): Promise<BenchIssuer> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const kid = "bench";
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }] };
  let issuer = "";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/.well-known/openid-configuration") {
      return Response.json({
        issuer,
        jwks_uri: `${issuer}/jwks`,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
      });
    }
    if (path === "/jwks") return Response.json(jwks);
    return new Response("not found", { status: 404 });
  });
  issuer = `http://127.0.0.1:${server.addr.port}`;
  return {
    issuer,
    token: (user, audience) =>
      new SignJWT({ preferred_username: user, scope: "sosvault" })
        .setProtectedHeader({ alg: "RS256", kid, typ: "at+jwt" })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(user)
        .setIssuedAt()
        .setExpirationTime("2h")
        .sign(privateKey),
    stop: () => server.shutdown(),
  };
}
