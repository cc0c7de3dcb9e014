/**
 * A fake Jira Server/Data Center (REST v2) that behaves like JIRA_FACTS.md describes: PAT auth,
 * issues with attachments, streamed multipart uploads, and the failure modes of real
 * deployments (SSO gateways, proxies, rate limits). Tests serve it over HTTPS; the product
 * embeds it for `JIRA_MOCK_MODE=1`.
 *
 * Security: nothing here logs or prints a PAT. Recorded requests keep the Authorization header
 * in memory only, and mock mode redacts it.
 *
 * @module
 */

import { createFakeJira, MOCK_ATTACHABLE_ISSUE, MOCK_READ_ONLY_ISSUE } from "./_fake.ts";
import type { FakeJira } from "./_types.ts";

export { createFakeJira, MOCK_ATTACHABLE_ISSUE, MOCK_READ_ONLY_ISSUE } from "./_fake.ts";
export { isDataCenterPatShape } from "./_pat.ts";
export { CLOUD_SCOPES, createFakeJiraCloud } from "./_cloud.ts";
export type {
  FakeCloudIssueInit,
  FakeCloudOptions,
  FakeCloudTokenInit,
  FakeJiraCloud,
} from "./_cloud.ts";
import { createFakeJiraCloud, type FakeJiraCloud } from "./_cloud.ts";
export type {
  FakeAttachment,
  FakeAttachmentInit,
  FakeIssueInit,
  FakeIssueView,
  FakeJira,
  FakeJiraMode,
  FakeJiraOptions,
  FakeJiraSettings,
  FakeJiraTuning,
  FakeUserInit,
  RecordedFilePart,
  RecordedRequest,
} from "./_types.ts";

/**
 * The fake as `JIRA_MOCK_MODE=1` runs it: any Data Center-shaped PAT is a user, DEMO-1 takes
 * attachments, DEMO-2 is visible but refuses them, and the upload limit is 1 GiB.
 */
export function mockModeJira(): FakeJira {
  const jira = createFakeJira({
    acceptAnyDcPat: true,
    uploadLimit: 1024 * 1024 * 1024,
    // A long-running server must not grow without bound or keep PATs in its request log.
    maxRecordedRequests: 200,
    redactRecordedAuthorization: true,
  });
  jira.addIssue({ key: MOCK_ATTACHABLE_ISSUE, summary: "Demo issue for sosvault mock mode" });
  jira.addIssue({
    key: MOCK_READ_ONLY_ISSUE,
    summary: "Demo issue without Create Attachments permission",
    attachers: [],
  });
  return jira;
}

/**
 * The Cloud fake as `JIRA_MOCK_MODE=1` runs it: any e-mail with an `ATATT3…` token is an
 * account (a token containing `SCOPED` is a scoped token with every scope), DEMO-1 takes
 * attachments, DEMO-2 refuses them, the upload limit is 1 GiB.
 */
export function mockModeJiraCloud(): FakeJiraCloud {
  return createFakeJiraCloud({
    acceptAnyToken: true,
    uploadLimit: 1024 * 1024 * 1024,
    maxRecordedRequests: 200,
    redactRecordedAuthorization: true,
  });
}

/**
 * Mock mode's choice of fake for a request: `*.atlassian.net` sites and Atlassian's gateway go
 * to the Cloud fake, every other host to the Data Center fake. (The connection's kind is still
 * found from serverInfo, as with a real Jira; the host only picks which fake answers.)
 */
export function isMockCloudHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h.endsWith(".atlassian.net") || h === "api.atlassian.com";
}
