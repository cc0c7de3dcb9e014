/** POST /jira/webhook: a thin route over the signed-webhook receiver (src/approval/webhook.ts). */
import { Hono } from "hono";
import { AppError } from "../errors.ts";
import type { AppEnv } from "./middleware.ts";
import { readLimited } from "./json_body.ts";
import { MAX_WEBHOOK_BODY, type WebhookReceiver } from "../approval/webhook.ts";

export function webhookRoutes(receiver: WebhookReceiver): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.post("/", async (c) => {
    // Security: bounded while reading, so an unsigned sender cannot make us buffer much.
    const body = await readLimited(
      c.req.raw,
      MAX_WEBHOOK_BODY,
      () =>
        new AppError(
          "payload_too_large",
          `a webhook body is at most ${MAX_WEBHOOK_BODY / 1024} KiB`,
        ),
    );
    return c.json(await receiver.receive(c.req.raw.headers, body, c.get("requestId")), 200);
  });
  return app;
}
