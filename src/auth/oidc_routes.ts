/**
 * RFC 9728 protected-resource metadata: how an MCP client learns, from a 401, which
 * authorization server issues tokens for this server and which scope to ask for. Served at the
 * root and at the `/mcp` path-suffixed location; both describe the one resource tokens are
 * issued for (the audience), since /api and /mcp accept the same tokens.
 */
import { Hono } from "hono";
import type { AppEnv } from "../http/middleware.ts";
import type { OidcAuth } from "./oidc.ts";

export function protectedResourceRoutes(oidc: OidcAuth): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  const metadata = () => ({
    resource: oidc.audience(),
    authorization_servers: [oidc.config.issuer],
    scopes_supported: [oidc.config.scope],
    bearer_methods_supported: ["header"],
    resource_name: "sosvault",
  });
  for (const path of ["/oauth-protected-resource", "/oauth-protected-resource/mcp"]) {
    r.get(path, (c) => c.json(metadata(), 200, { "Cache-Control": "max-age=300" }));
  }
  return r;
}
