/**
 * The guided "engage support" workflow, served over MCP as the resource `sosvault://workflow`
 * and, bound to one issue, as the prompt `engage_support`. Tool names come from the tool
 * definitions themselves, so renaming a tool cannot leave the guide pointing at nothing.
 */
import type { ErrorCode } from "../errors.ts";
import { jiraConnect } from "./tools/jira_connect.ts";
import { jiraConnectionStatus } from "./tools/jira_connection_status.ts";
import { jiraListAttachments } from "./tools/jira_list_attachments.ts";
import { jiraAttachArtifact } from "./tools/jira_attach_artifact.ts";
import { jiraRevokeConnection } from "./tools/jira_revoke_connection.ts";
import { generateSosreport } from "./tools/generate_sosreport.ts";
import { sosreportStatus } from "./tools/sosreport_status.ts";
import { fetchSosreport } from "./tools/fetch_sosreport.ts";

export const WORKFLOW_URI = "sosvault://workflow";
export const PROMPT_NAME = "engage_support";

const connect = jiraConnect.name;
const status = jiraConnectionStatus.name;
const list = jiraListAttachments.name;
const attach = jiraAttachArtifact.name;
const revoke = jiraRevokeConnection.name;
const generate = generateSosreport.name;
const poll = sosreportStatus.name;
const fetchArchive = fetchSosreport.name;

/** Error codes the guide tells the model how to handle: typed, so a renamed code fails to build. */
const code = (c: ErrorCode) => `\`${c}\``;

const RULES = `## Rules that always hold

- Never ask the user for a Jira token, API token, password or PAT, and never accept one in the
  chat. The user types it only on sosvault's connect page, which keeps it away from you. If the
  user pastes one anyway, do not repeat or use it: tell them it is now exposed, that they should
  revoke it in Jira and connect again with a new one.
- Use only a \`connection_id\` (\`jc_…\`) the user got from the connect page.
- Never invent a \`consent_token\` or a \`change_request\` key: ask the user for them.
- A result with a warning that the user's token was found in Jira's answer means the token is
  exposed in Jira itself: tell the user to rotate it.`;

const STEPS = `## Steps

1. **Connect.** Skip this when the user already has a \`connection_id\`. Call \`${connect}\`
   (optionally with the Jira \`base_url\`) and give the user its \`connect_url\`; some clients open
   it for them. On that page they enter the Jira URL and their token and get a \`connection_id\`.
   Ask them for that id; the link works once and for ten minutes.
2. **Verify.** Call \`${status}\` with the \`connection_id\`. Go on only when \`status\` is
   \`connected\`. \`expired\` or \`revoked\` mean the connection cannot be used again: go back to
   step 1 for a new one. ${code("not_found")} means the id is wrong or belongs to someone else:
   ask again, or connect.
3. **Check the issue.** Call \`${list}\` with the \`connection_id\` and the \`issue_key\`. It proves
   the user may see the issue and shows what is attached already (an earlier sosreport, say).
4. **Generate.** Call \`${generate}\`. sosvault asks the user to confirm (when the client can
   show a form); otherwise ${
  code("consent_required")
} means the user must create a one-time consent token
   themselves (\`POST /api/sos/consents\`) and give it to you as \`consent_token\`.
   ${
  code("approval_required")
} means this host needs an approved change request: ask the user for its
   key and call again with \`change_request\` and the \`connection_id\`. sos runs for minutes: when
   the answer says \`running\`, call \`${poll}\` with the \`job_id\` until it is \`succeeded\` or
   \`failed\`.
5. **Fetch.** Call \`${fetchArchive}\` with the \`job_id\`. It returns the \`artifact_ref\`.
6. **Attach.** Call \`${attach}\` with the \`connection_id\`, the \`issue_key\` and the
   \`artifact_ref\`. Tell the user the attachment's file name and id, and whether files of the
   same name were there already (\`existing_same_name\`).
7. **Finish.** When the user is done, offer \`${revoke}\` for the connection (it also expires by
   itself).`;

const ERRORS = `## When a call fails

- ${code("secret_rejected")}: an argument held a secret. Do not retry with it; follow the message.
- ${code("rate_limited")}: wait the number of seconds the message gives, then retry once.
- ${code("upstream_unavailable")}: Jira did not answer in time or is down; try again later.
- ${code("invalid_credentials")}: Jira no longer accepts the token: connect again (step 1).
- Any other error: tell the user what its message says; it names what to do next.`;

/** The whole guide: what `resources/read` of sosvault://workflow returns. */
export const WORKFLOW_MARKDOWN = `# Engaging support with sosvault

sosvault collects a sosreport on this host and attaches it to a Jira issue with the user's own
Jira token, which never passes through this conversation.

${RULES}

${STEPS}

${ERRORS}
`;

/** The prompt's one user message, for one issue and maybe a connection the user already has. */
export function engageSupportText(issueKey: string, connectionId?: string): string {
  const start = connectionId
    ? `I already have a Jira connection: \`${connectionId}\`. Start at step 2 (verify it); if it ` +
      "is not `connected`, go back to step 1."
    : "I have no Jira connection yet: start at step 1.";
  return `Help me engage support for Jira issue ${issueKey}: collect a sosreport on this host ` +
    `and attach it to ${issueKey} with sosvault, following the workflow below. ${start}\n\n` +
    WORKFLOW_MARKDOWN;
}
