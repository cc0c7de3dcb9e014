import { z } from "zod";
import { defineTool } from "../tool.ts";

export const jiraConnect = defineTool({
  name: "jira_connect",
  description:
    "Start connecting the user's Jira account. Returns a one-time link (valid 10 minutes, usable once, bound to this sosvault user) where the user enters their Jira base URL and personal access token themselves. Never ask the user for a token in the chat. Where the client supports it, sosvault also asks the client to open the link. After the user finishes, they get a connection_id to use with the other jira_* tools.",
  input: z.strictObject({
    base_url: z.string().min(1).max(2048).optional().describe(
      "Optional Jira base URL (https://…) to prefill on the connect page.",
    ),
  }),
  output: z.object({
    connect_url: z.string().describe("The one-time link to open in a browser."),
    expires_at: z.string(),
    opened_by_client: z.boolean().describe(
      "True when the client accepted to open the link itself.",
    ),
  }),
  annotations: {
    title: "Connect Jira",
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: false,
    openWorldHint: false,
  },
  async run({ s, ctx, openUrl }, args) {
    const baseUrl = args.base_url === undefined
      ? undefined
      : s.connections.validateBaseUrl(args.base_url);
    const link = await s.connectLinks.create(ctx, baseUrl);
    const opened = await openUrl(
      link.connect_url,
      "Open this sosvault page to connect your Jira account. Enter your personal access token there, not in the chat.",
    );
    return { connect_url: link.connect_url, expires_at: link.expires_at, opened_by_client: opened };
  },
});
