import { z } from "zod";
import { defineTool } from "../tool.ts";
import { connectionId, connectionOutput } from "./schemas.ts";

export const jiraRevokeConnection = defineTool({
  name: "jira_revoke_connection",
  description:
    "Revoke a Jira connection now: its stored token is deleted and uploads in flight on it are cancelled. Idempotent. The token itself stays valid in Jira; the user can also revoke it there.",
  input: z.strictObject({ connection_id: connectionId }),
  output: connectionOutput,
  annotations: {
    title: "Revoke Jira connection",
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: true,
    openWorldHint: false,
  },
  run: ({ s, ctx }, args) => s.connections.revoke(ctx, args.connection_id),
});
