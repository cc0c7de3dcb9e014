/**
 * createApp: the Hono application. HTTP concerns only — every rule lives in the services.
 */
import { Hono } from "hono";
import { AppError } from "./errors.ts";
import type { Services } from "./services.ts";
import { errorResponse } from "./http/errors.ts";
import { type AppEnv, bearerAuth, requestScope } from "./http/middleware.ts";
import { connectionRoutes } from "./http/connections.ts";
import { securityEventRoutes } from "./http/security_events.ts";
import { connectPageRoutes } from "./http/connect_page.ts";
import { consentRoutes } from "./http/consents.ts";
import { McpSessions } from "./mcp/sessions.ts";
import { webhookRoutes } from "./http/webhook.ts";
import { oidcBearerAuth } from "./auth/oidc_middleware.ts";
import { protectedResourceRoutes } from "./auth/oidc_routes.ts";
import { connectLoginGate, connectLoginRoutes } from "./auth/oidc_login.ts";

export function createApp(s: Services, mcp: McpSessions = new McpSessions(s)): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use("*", requestScope());

  app.get("/health", (c) =>
    c.json({
      status: "healthy",
      service: "sosvault",
      version: s.version,
      timestamp: s.clock().toISOString(),
    }));

  const auth = s.oidc ? oidcBearerAuth(s.oidc, { events: s.events, log: s.log }) : bearerAuth({
    mode: s.config.auth === "dev" ? "dev" : "tokens",
    users: s.users,
    secrets: s.secrets,
  });
  if (s.oidc) app.route("/.well-known", protectedResourceRoutes(s.oidc));
  app.use("/api/*", auth);
  app.route("/api/jira/connections", connectionRoutes(s));
  app.route("/api/security-events", securityEventRoutes(s));
  app.route("/api/sos/consents", consentRoutes(s));
  // Authenticated by its HMAC signature, not a bearer token; absent unless a secret is set.
  if (s.webhooks) app.route("/jira/webhook", webhookRoutes(s.webhooks));

  if (s.oidc?.clientSecret !== undefined) {
    // oidc mode: the connect page first asks who is at the browser (auth/oidc_login.ts).
    const login = {
      oidc: s.oidc,
      kv: s.kv,
      clock: s.clock,
      log: s.log,
      events: s.events,
      links: s.connectLinks,
      publicUrl: () => s.config.publicUrl,
      clientSecret: s.oidc.clientSecret,
    };
    app.use("/connect/:code", connectLoginGate(login));
    app.route("/", connectLoginRoutes(login));
  }
  app.route(
    "/connect",
    connectPageRoutes({
      links: s.connectLinks,
      connections: s.connections,
      log: s.log,
      publicUrl: () => s.config.publicUrl,
      allowedHosts: s.config.allowedHosts,
    }),
  );

  app.use("/mcp", auth);
  app.all("/mcp", async (c) => {
    // Security: a browser page on another origin must not drive the MCP endpoint (DNS rebinding).
    const origin = c.req.header("origin");
    if (origin && origin !== new URL(s.config.publicUrl).origin) {
      throw new AppError("forbidden", "requests to /mcp from this Origin are not allowed");
    }
    return await mcp.handle(c.req.raw, c.get("user").name, c.get("requestId"));
  });

  app.notFound((c) =>
    errorResponse(c, new AppError("not_found", "no such route: see the API in the README"), s.log)
  );
  app.onError((err, c) => errorResponse(c, err, s.log));
  return app;
}
