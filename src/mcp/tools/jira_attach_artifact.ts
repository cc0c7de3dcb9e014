import { z } from "zod";
import { defineTool } from "../tool.ts";
import { attachmentOutput, connectionId, issueKey, warningsOutput } from "./schemas.ts";

export const jiraAttachArtifact = defineTool({
  name: "jira_attach_artifact",
  description:
    "Upload a local file (for example the artifact_ref returned by fetch_sosreport) to a Jira issue with the user's connection. The file must be a non-empty regular file under the operator's artifact roots (for the artifact directory: the user's own folder) and within the size limits of sosvault and of Jira; these are checked before any byte is sent. The file is streamed, never held in memory; progress is reported when requested. Jira allows several attachments with the same name: existing ones are listed in existing_same_name, never replaced.",
  input: z.strictObject({
    connection_id: connectionId,
    issue_key: issueKey,
    artifact_ref: z.string().min(1).max(4096).describe(
      "Absolute path of the local file to attach.",
    ),
    filename: z.string().min(1).max(255).optional().describe(
      "Name to give the attachment in Jira; default: the file's own name.",
    ),
  }),
  output: z.object({
    issue_key: z.string(),
    attachment: attachmentOutput,
    replaced_duplicates: z.literal(false),
    existing_same_name: z.array(z.string()).describe(
      "Ids of attachments that already had this name.",
    ),
    warnings: warningsOutput,
  }),
  annotations: {
    title: "Attach a file to a Jira issue",
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: false,
    openWorldHint: true,
  },
  run: ({ s, ctx, progress, signal }, args) => s.attachments.attach(ctx, args, progress, signal),
});
