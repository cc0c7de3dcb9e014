/** HTTP adapter for Jira connections (DESIGN.md section 4). */
import { Hono } from "hono";
import { z } from "zod";
import { AppError } from "../errors.ts";
import type { Services } from "../services.ts";
import type { RequestContext } from "../context.ts";
import { readJsonBody } from "./json_body.ts";
import type { AppEnv } from "./middleware.ts";
import type { Context } from "hono";

const connectBody = z.strictObject({
  base_url: z.string().min(1).max(2048),
  /** The Data Center PAT, or the Cloud API token. */
  pat: z.string().max(4096),
  /** Jira Cloud: the Atlassian account's e-mail (the Basic user name). */
  email: z.string().max(320).optional(),
  /** Jira Cloud: `scoped` for an API token with scopes (found out anyway when not given). */
  token_kind: z.enum(["classic", "scoped"]).optional(),
});

export function httpContext(c: Context<AppEnv>): RequestContext {
  return { user: c.get("user").name, requestId: c.get("requestId"), source: "http" };
}

/** Rejects query parameters a route does not know: a typo must not be silently ignored. */
export function onlyQuery(c: Context, allowed: string[]): Record<string, string> {
  const q = c.req.query();
  for (const k of Object.keys(q)) {
    if (!allowed.includes(k)) {
      throw new AppError(
        "invalid_input",
        allowed.length
          ? `unknown query parameter; this route takes: ${allowed.join(", ")}`
          : "this route takes no query parameters",
      );
    }
  }
  return q;
}

export function connectionRoutes(s: Services) {
  return new Hono<AppEnv>()
    .post("/", async (c) => {
      onlyQuery(c, []);
      const body = await readJsonBody(c, connectBody);
      const connection = await s.connections.connect(httpContext(c), body);
      return c.json(connection, 201, {
        Location: `/api/jira/connections/${connection.connection_id}`,
      });
    })
    .get("/", async (c) => {
      onlyQuery(c, []);
      return c.json({ connections: await s.connections.list(httpContext(c)) });
    })
    .get("/:id", async (c) => {
      const { verify } = onlyQuery(c, ["verify"]);
      if (verify !== undefined && !["0", "1", "true", "false"].includes(verify)) {
        throw new AppError("invalid_input", "verify must be 1 or 0");
      }
      const ctx = httpContext(c);
      const id = c.req.param("id");
      const wantVerify = verify === "1" || verify === "true";
      return c.json(
        wantVerify ? await s.connections.verify(ctx, id) : await s.connections.get(ctx, id),
      );
    })
    .delete("/:id", async (c) => {
      onlyQuery(c, []);
      return c.json(await s.connections.revoke(httpContext(c), c.req.param("id")));
    });
}
