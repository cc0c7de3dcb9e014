/**
 * Access-token validation for SOSVAULT_AUTH=oidc, done by jose: signature with an asymmetric
 * algorithm from the issuer's key set, `iss`, `exp`/`nbf` with a small skew, `aud` containing
 * this server's resource URL (RFC 8707), then the required scope. The result names a sosvault
 * user under the existing user-name rules.
 */
import { errors as joseErrors, type JWTPayload, jwtVerify } from "jose";
import type { OidcConfig } from "../config.ts";
import type { Clock } from "../clock.ts";
import { USER_NAME } from "../users/users.ts";
import { IdpUnavailable, type OidcKeys } from "./oidc_keys.ts";

// Security: public-key algorithms only. `none` and the HMAC family are never accepted, so a
// token "signed" with the issuer's public key as an HMAC secret is refused before any check.
export const ACCEPTED_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
];

/** Seconds of clock difference tolerated between the IdP and this host. */
export const CLOCK_SKEW_SECONDS = 60;

export interface OidcPrincipal {
  name: string;
  admin: boolean;
}

/** Why a token was refused; `message` is public and never contains the token. */
export class TokenRefused extends Error {
  constructor(
    readonly kind: "invalid_token" | "insufficient_scope",
    message: string,
    /** The user the token named, when it got far enough to say (for the security event). */
    readonly user: string | null = null,
  ) {
    super(message);
    this.name = "TokenRefused";
  }
}

export class AccessTokenVerifier {
  constructor(
    private opts: {
      config: OidcConfig;
      /** The audience; read per request since the default follows the bound address. */
      audience: () => string;
      keys: OidcKeys;
      clock: Clock;
    },
  ) {}

  /** Throws TokenRefused, or IdpUnavailable while the issuer's keys cannot be fetched. */
  async verify(token: string): Promise<OidcPrincipal> {
    const { config } = this.opts;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.opts.keys.resolver(), {
        issuer: config.issuer,
        audience: this.opts.audience(),
        algorithms: ACCEPTED_ALGORITHMS,
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: this.opts.clock(),
        requiredClaims: ["exp"],
      }));
    } catch (err) {
      if (err instanceof IdpUnavailable) throw err;
      throw new TokenRefused("invalid_token", refusal(err));
    }
    const user = userName(payload, config.userClaim);
    if (!scopesOf(payload).includes(config.scope)) {
      throw new TokenRefused(
        "insufficient_scope",
        `this access token lacks the scope '${config.scope}': ask for it when you sign in`,
        user,
      );
    }
    if (!user) {
      throw new TokenRefused(
        "invalid_token",
        `the token's ${config.userClaim} (or sub) is not a sosvault user name: lower-case ` +
          "letters, digits, '.', '_' or '-', starting with a letter, at most 64 characters",
      );
    }
    const admin = config.adminGroup !== undefined &&
      groupsOf(payload, config.groupsClaim).includes(config.adminGroup);
    return { name: user, admin };
  }
}

/** A public reason for each way jose refuses a token. */
function refusal(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "the access token has expired: sign in again";
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case "nbf":
        return "the access token is not valid yet (nbf)";
      case "iss":
        return "the access token comes from another issuer than the one sosvault trusts";
      case "aud":
        return "the access token is not meant for this server (aud): request it for this resource";
      case "exp":
        return "the access token has no expiry (exp)";
      default:
        return `the access token's ${err.claim} claim is not valid`;
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return "the access token's signing algorithm is not accepted (only public-key signatures are)";
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return "the access token is signed with a key the issuer does not publish";
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return "the access token's signature does not match its content";
  }
  return "this is not a valid access token for sosvault (a signed JWT from the configured identity provider); never send your Jira token here";
}

/** `scope` (space separated, RFC 9068) or `scp` (string or array, as some IdPs send it). */
function scopesOf(p: JWTPayload): string[] {
  const out: string[] = [];
  for (const v of [p.scope, p.scp]) {
    if (typeof v === "string") out.push(...v.split(" "));
    else if (Array.isArray(v)) out.push(...v.filter((s): s is string => typeof s === "string"));
  }
  return out;
}

/** The configured claim, else `sub`, lower-cased; null when neither fits USER_NAME. */
export function userName(p: JWTPayload, claim: string): string | null {
  for (const v of [p[claim], p.sub]) {
    if (typeof v !== "string") continue;
    const name = v.trim().toLowerCase();
    if (USER_NAME.test(name)) return name;
  }
  return null;
}

/**
 * The group/role claim, walked by dots (Keycloak's `realm_access.roles`); Keycloak's group
 * mapper may send full paths (`/sosvault-admins`), so a leading slash is ignored.
 */
function groupsOf(p: JWTPayload, claim: string): string[] {
  let v: unknown = p;
  for (const part of claim.split(".")) {
    v = v && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined;
  }
  const list = typeof v === "string" ? [v] : Array.isArray(v) ? v : [];
  return list.filter((g): g is string => typeof g === "string").map((g) => g.replace(/^\//, ""));
}
