/** Every MCP tool, in the order tools/list shows them. */
import type { ToolDef } from "../tool.ts";
import { jiraConnect } from "./jira_connect.ts";
import { jiraConnectionStatus } from "./jira_connection_status.ts";
import { jiraListAttachments } from "./jira_list_attachments.ts";
import { jiraAttachArtifact } from "./jira_attach_artifact.ts";
import { jiraRevokeConnection } from "./jira_revoke_connection.ts";
import { generateSosreport } from "./generate_sosreport.ts";
import { sosreportStatus } from "./sosreport_status.ts";
import { fetchSosreport } from "./fetch_sosreport.ts";

export const TOOLS: readonly ToolDef[] = [
  jiraConnect,
  jiraConnectionStatus,
  jiraListAttachments,
  jiraAttachArtifact,
  jiraRevokeConnection,
  generateSosreport,
  sosreportStatus,
  fetchSosreport,
];
