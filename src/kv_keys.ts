/**
 * Every Deno KV key sosvault uses, built only here so the layout is visible in one place.
 *
 *   connection/<id>            the connection record (no secret)
 *   secret/<id>                the PAT envelope; deleted in the same atomic op that revokes
 *   user_connection/<user>/<id>  owner index, for listing a user's own connections
 *   user/<name>                a sosvault user; user_token/<sha256> → name
 *   connect_code/<sha256>      one-time connect-page codes
 *   event/<seq>                security events, a signed chain (security/event_chain.ts);
 *                              event/<time-ordered id> are unchained events of older versions
 *   event_chain/head           the last seq and its chain value, signed
 *   event_chain/checkpoint     the last pruned seq and its chain value, signed
 *   vault/sentinel             proves at start that the master key is the vault's key
 *   rate_limit/<bucket>/<user>  a user's request budget (shared by every instance on this KV)
 *   approval_cr/<key>          a CR's status as the newest signed webhook told it (24 h)
 *   approval_sig/<sha256>      an approver signature already used for a run
 *   webhook_seen/<id>          webhook deliveries already accepted (replay window)
 *   oidc_user/<name>           a user first seen in an OIDC access token (SOSVAULT_AUTH=oidc)
 *   oidc_denied/<name>         a user `users remove` blocked in oidc mode
 *   oidc_login/<sha256>        a connect-page login in progress (state, nonce, PKCE verifier)
 *   oidc_session/<sha256>      a connect-page session after the login
 */
export const kvKeys = {
  connection: (id: string) => ["connection", id] as const,
  secret: (id: string) => ["secret", id] as const,
  userConnection: (user: string, id: string) => ["user_connection", user, id] as const,
  userConnections: (user: string) => ["user_connection", user] as const,
  allConnections: () => ["connection"] as const,
  allSecrets: () => ["secret"] as const,
  user: (name: string) => ["user", name] as const,
  allUsers: () => ["user"] as const,
  userToken: (hash: string) => ["user_token", hash] as const,
  connectCode: (hash: string) => ["connect_code", hash] as const,
  event: (seq: number) => ["event", seq] as const,
  /** Sorts after every numeric seq (KV orders numbers before booleans). */
  eventsEnd: () => ["event", false] as const,
  allEvents: () => ["event"] as const,
  eventHead: () => ["event_chain", "head"] as const,
  eventCheckpoint: () => ["event_chain", "checkpoint"] as const,
  vaultSentinel: () => ["vault", "sentinel"] as const,
  rateLimit: (bucket: string, user: string) => ["rate_limit", bucket, user] as const,
  approvalCr: (key: string) => ["approval_cr", key] as const,
  approvalSignature: (fp: string) => ["approval_sig", fp] as const,
  webhookSeen: (id: string) => ["webhook_seen", id] as const,
  oidcUser: (name: string) => ["oidc_user", name] as const,
  allOidcUsers: () => ["oidc_user"] as const,
  oidcDenied: (name: string) => ["oidc_denied", name] as const,
  oidcLogin: (hash: string) => ["oidc_login", hash] as const,
  oidcSession: (hash: string) => ["oidc_session", hash] as const,
};
