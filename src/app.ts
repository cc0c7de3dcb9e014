/**
 * createApp: the Hono application. HTTP concerns only — every rule lives in the services.
 */
import { Hono } from "hono";
import { AppError } from "./errors.ts";
import type { Services } from "./services.ts";
import { errorResponse } from "./http/errors.ts";
import { type AppEnv, bearerAuth, hardenResponses, requestId } from "./http/middleware.ts";
import { connectionRoutes } from "./http/connections.ts";
import { securityEventRoutes } from "./http/security_events.ts";

export function createApp(s: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use("*", requestId(), hardenResponses());

  app.get("/health", (c) =>
    c.json({
      status: "healthy",
      service: "sosvault",
      version: s.version,
      timestamp: s.clock().toISOString(),
    }));

  const auth = bearerAuth({ mode: s.config.auth, users: s.users });
  app.use("/api/*", auth);
  app.route("/api/jira/connections", connectionRoutes(s));
  app.route("/api/security-events", securityEventRoutes(s));

  app.notFound((c) =>
    errorResponse(c, new AppError("not_found", "no such route: see the API in the README"), s.log)
  );
  app.onError((err, c) => errorResponse(c, err, s.log));
  return app;
}
