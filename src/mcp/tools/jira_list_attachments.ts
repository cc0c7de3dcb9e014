import { z } from "zod";
import { defineTool } from "../tool.ts";
import { connectionId, issueKey, upstreamWarnings } from "./schemas.ts";

export const jiraListAttachments = defineTool({
  name: "jira_list_attachments",
  description:
    "List the files attached to a Jira issue, using the user's connection. The issue must exist and be visible to the user's Jira account. If Jira's answer contains the user's own token (for example in a file name), it is shown as [redacted] and warnings tells the user to revoke and replace it.",
  input: z.strictObject({ connection_id: connectionId, issue_key: issueKey }),
  output: z.object({
    issue_key: z.string(),
    attachments: z.array(z.object({
      id: z.string(),
      filename: z.string(),
      size: z.number().int(),
      mime_type: z.string(),
      created: z.string(),
      author: z.string(),
    })),
    warnings: upstreamWarnings,
  }),
  annotations: {
    title: "List Jira attachments",
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: true,
  },
  run: ({ s, ctx }, args) => s.attachments.list(ctx, args.connection_id, args.issue_key),
});
