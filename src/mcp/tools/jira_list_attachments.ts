import { z } from "zod";
import { defineTool } from "../tool.ts";
import { connectionId, issueKey, warningsOutput } from "./schemas.ts";

export const jiraListAttachments = defineTool({
  name: "jira_list_attachments",
  description:
    "List the files attached to a Jira issue, using the user's connection. The issue must exist and be visible to the user's Jira account.",
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
    warnings: warningsOutput,
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
