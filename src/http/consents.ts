/** HTTP adapter for sosreport consent: the human's own, outside MCP. */
import { Hono } from "hono";
import { z } from "zod";
import type { Services } from "../services.ts";
import type { AppEnv } from "./middleware.ts";
import { httpContext, onlyQuery } from "./connections.ts";
import { readJsonBody } from "./json_body.ts";

export function consentRoutes(s: Services) {
  return new Hono<AppEnv>().post("/", async (c) => {
    onlyQuery(c, []);
    // An empty body is fine; a body, if sent, must be an empty JSON object.
    if ((c.req.header("content-length") ?? "0") !== "0" || c.req.header("transfer-encoding")) {
      await readJsonBody(c, z.strictObject({}));
    }
    return c.json(await s.consents.mint(httpContext(c)), 201);
  });
}
