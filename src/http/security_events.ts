/** Admin-only view of the security events. */
import { Hono } from "hono";
import { AppError } from "../errors.ts";
import { EVENT_TYPES, type EventType } from "../security/events.ts";
import type { Services } from "../services.ts";
import type { AppEnv } from "./middleware.ts";
import { onlyQuery } from "./connections.ts";

export function securityEventRoutes(s: Services) {
  return new Hono<AppEnv>().get("/", async (c) => {
    if (!c.get("user").admin) {
      throw new AppError("forbidden", "security events are for admin users only");
    }
    const q = onlyQuery(c, ["type", "user", "since", "limit"]);
    if (q.type !== undefined && !EVENT_TYPES.includes(q.type as EventType)) {
      throw new AppError("invalid_input", `type must be one of: ${EVENT_TYPES.join(", ")}`);
    }
    const since = q.since === undefined ? undefined : new Date(q.since);
    if (since && Number.isNaN(since.getTime())) {
      throw new AppError(
        "invalid_input",
        "since must be an ISO-8601 time, for example 2026-01-31T00:00:00Z",
      );
    }
    if (q.limit !== undefined && !/^\d{1,4}$/.test(q.limit)) {
      throw new AppError("invalid_input", "limit must be a whole number from 1 to 1000");
    }
    const events = await s.events.list({
      type: q.type as EventType | undefined,
      user: q.user,
      since,
      limit: q.limit === undefined ? undefined : Number(q.limit),
    });
    return c.json({ events });
  });
}
