import { z } from "zod";
import { defineTool } from "../tool.ts";
import { connectionId, connectionOutput } from "./schemas.ts";

export const jiraConnectionStatus = defineTool({
  name: "jira_connection_status",
  description:
    "Show a Jira connection's status (connected, expired or revoked), its Jira user and expiry. Does not call Jira. If the status is expired or revoked, the user must connect again with jira_connect.",
  input: z.strictObject({ connection_id: connectionId }),
  output: connectionOutput,
  annotations: {
    title: "Jira connection status",
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  },
  run: ({ s, ctx }, args) => s.connections.get(ctx, args.connection_id),
});
