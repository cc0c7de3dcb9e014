/**
 * SOSVAULT_AUTH=oidc, assembled: the issuer's keys, the token verifier and the user list, plus
 * the URLs a client discovers them by (RFC 9728). Built once in runtime.ts.
 */
import { type Config, ConfigError, type OidcConfig } from "../config.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import { OidcKeys } from "./oidc_keys.ts";
import { AccessTokenVerifier } from "./oidc_verify.ts";
import { OidcUsers } from "./oidc_users.ts";

export interface OidcAuth {
  config: OidcConfig;
  keys: OidcKeys;
  verifier: AccessTokenVerifier;
  users: OidcUsers;
  /** The resource identifier tokens must name in `aud` (RFC 8707). */
  audience(): string;
  /** Where /mcp's protected-resource metadata is served (RFC 9728 section 3.1). */
  resourceMetadataUrl(): string;
  /** The connect page's client secret (SOSVAULT_OIDC_CLIENT_SECRET_FILE); unset: no login gate. */
  clientSecret?: string;
}

export async function createOidcAuth(
  config: Config,
  deps: { kv: Deno.Kv; clock: Clock; log: Logger; fetch?: typeof fetch },
): Promise<OidcAuth | undefined> {
  const oidc = config.oidc;
  if (!oidc) return undefined;
  let clientSecret: string | undefined;
  if (oidc.clientSecretFile) {
    clientSecret = (await Deno.readTextFile(oidc.clientSecretFile)).trim();
    if (!clientSecret) throw new ConfigError(["SOSVAULT_OIDC_CLIENT_SECRET_FILE is empty"]);
  } else {
    deps.log.warn(
      "oidc_connect_page_without_login: set SOSVAULT_OIDC_CLIENT_ID and SOSVAULT_OIDC_CLIENT_SECRET_FILE to bind connect links to a login",
    );
  }
  const keys = new OidcKeys({
    issuer: oidc.issuer,
    clock: deps.clock,
    log: deps.log,
    fetch: deps.fetch,
  });
  // The default follows config.publicUrl, which serve() fixes once the port is bound.
  const audience = () => oidc.audience ?? `${config.publicUrl}/mcp`;
  return {
    config: oidc,
    keys,
    verifier: new AccessTokenVerifier({ config: oidc, audience, keys, clock: deps.clock }),
    users: new OidcUsers(deps.kv, deps.clock),
    audience,
    resourceMetadataUrl: () => `${config.publicUrl}/.well-known/oauth-protected-resource/mcp`,
    clientSecret,
  };
}
