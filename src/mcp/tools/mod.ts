/** Every MCP tool, in the order tools/list shows them. */
import type { ToolDef } from "../tool.ts";
import { jiraConnect } from "./jira_connect.ts";
import { jiraConnectionStatus } from "./jira_connection_status.ts";
import { jiraListAttachments } from "./jira_list_attachments.ts";
import { jiraAttachArtifact } from "./jira_attach_artifact.ts";
import { jiraRevokeConnection } from "./jira_revoke_connection.ts";

export const TOOLS: readonly ToolDef[] = [
  jiraConnect,
  jiraConnectionStatus,
  jiraListAttachments,
  jiraAttachArtifact,
  jiraRevokeConnection,
];
