/**
 * SOSVAULT_AUTH=oidc, assembled: the issuer's keys, the token verifier and the user list, plus
 * the URLs a client discovers them by (RFC 9728). Built once in runtime.ts.
 */
import type { Config, OidcConfig } from "../config.ts";
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
}

export function createOidcAuth(
  config: Config,
  deps: { kv: Deno.Kv; clock: Clock; log: Logger; fetch?: typeof fetch },
): OidcAuth | undefined {
  const oidc = config.oidc;
  if (!oidc) return undefined;
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
  };
}
