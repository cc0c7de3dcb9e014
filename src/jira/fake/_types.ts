// Public types of the fake Jira Server/Data Center; mod.ts re-exports them.

/** How the fake is set up; every field can be changed later with `setOptions()`. */
export interface FakeJiraOptions {
  /** Jira's context path, e.g. "/jira"; the REST root is then `/jira/rest/api/2`. */
  contextPath?: string;
  /**
   * Jira's configured base URL (including any context path), used in `self`, `content` and
   * avatar URLs. Real Jira builds these from its configuration, not from the request, so they
   * can name another host than the one the client talked to. Default: the request's origin
   * plus the context path.
   */
  advertisedBaseUrl?: string;
  /** `jira.attachment.size`, in bytes, reported by attachment/meta and enforced per part. */
  uploadLimit?: number;
  /** Whether attachments are enabled globally. */
  attachmentsEnabled?: boolean;
  /**
   * Mock mode: any PAT of Data Center shape that is not revoked is the user `mock-<id>`, and any
   * valid issue key that does not exist yet is created on first use.
   */
  acceptAnyDcPat?: boolean;
  /** The clock used for `created` and recorded times. */
  now?: () => Date;
  /** The offset Jira prints in `created` (real instances print their own zone). Default -420. */
  utcOffsetMinutes?: number;
  /** Oldest recorded requests are dropped past this count. Default: unlimited. */
  maxRecordedRequests?: number;
  /** Replace the Authorization value in recorded requests (mock mode in the product). */
  redactRecordedAuthorization?: boolean;
}

/** Runtime knobs for slow, flaky or differently-configured Jiras. */
export interface FakeJiraTuning {
  /** Delay before every response, in milliseconds. */
  latencyMs?: number;
  /** Read upload bodies no faster than this (back-pressures the client). */
  uploadBytesPerSecond?: number;
  /** Body of the 401 for a failed PAT: the Seraph HTML page or the REST status JSON. */
  unauthorizedBody?: "html" | "json";
  /** Bytes of an upload read before "reset_mid_upload"/"bad_gateway_mid_upload" strike. */
  failAfterBytes?: number;
}

export type FakeJiraSettings = FakeJiraOptions & FakeJiraTuning;

export type FakeJiraMode =
  | "normal"
  /** A gateway answers every path with 302 to https://idp.example/sso?SAMLRequest=... */
  | "sso_redirect"
  /** A gateway answers every path with 200 text/html holding a SAML auto-post form. */
  | "sso_saml_form"
  /** Jira answers every path with its 200 text/html login page (e.g. a wrong base path). */
  | "login_page"
  /** Jira answers every path with its 500 "Oops - an error has occurred" page. */
  | "server_error"
  /** A proxy answers every path with 503. */
  | "unavailable"
  /** Jira's DC rate limiter answers every path with the Tomcat 429 page. */
  | "rate_limited"
  /** An nginx proxy refuses every POST with 413, without reading the body. */
  | "proxy_413"
  /** GET issue answers 200 as `anonymous` even for a missing or bad PAT (anonymous browse). */
  | "anonymous_ok"
  /** The connection is dropped after `failAfterBytes` of a POST body. */
  | "reset_mid_upload"
  /** An nginx proxy answers 502 after `failAfterBytes` of a POST body. */
  | "bad_gateway_mid_upload";

export interface FakeUserInit {
  name: string;
  displayName: string;
  /** Default `JIRAUSER<n>`, the form newer Jira versions give new accounts. */
  key?: string;
  email?: string;
}

export interface FakeAttachmentInit {
  filename: string;
  size: number;
  mimeType?: string;
  /** User name of the author; default: the first user added, or "admin". */
  author?: string;
  /** Jira-format timestamp, e.g. "2018-09-19T18:15:01.060-0700"; default: now. */
  created?: string;
}

export interface FakeIssueInit {
  key: string;
  /** Numeric string; default: the next free id from "10001". */
  id?: string;
  summary?: string;
  /** User names with Browse Projects; default: every user. Others get 404. */
  browsers?: string[];
  /** User names with Create Attachments; default: every browser. Others get 403. */
  attachers?: string[];
  /** False models an issue in a non-editable workflow state. Default true. */
  editable?: boolean;
  /** Old keys of this issue, answered with the canonical key. */
  movedFrom?: string[];
  attachments?: FakeAttachmentInit[];
}

export interface FakeAttachment {
  id: string;
  filename: string;
  size: number;
  mimeType: string;
  created: string;
  /** User name of the author. */
  author: string;
  /** Hex SHA-256 of the uploaded bytes; absent for seeded attachments. */
  sha256?: string;
}

export interface FakeIssueView {
  key: string;
  id: string;
  attachments: FakeAttachment[];
}

export interface RecordedFilePart {
  partName: string;
  filename?: string;
  contentType?: string;
  bytes: number;
  sha256: string;
}

export interface RecordedRequest {
  at: string;
  method: string;
  path: string;
  /** The query string without the leading "?". */
  query: string;
  /** Lower-cased names as received; kept in memory only so tests can see the Bearer PAT. */
  headers: Record<string, string>;
  /** The Jira user the PAT resolved to, if it was valid. */
  user?: string;
  /** The status answered; 0 when the connection was dropped. */
  status: number;
  contentLength?: number | null;
  transferEncoding?: string | null;
  /** Body bytes read (uploads only). */
  bodyBytes?: number;
  /** Reads it took to get them: proves a body arrived in pieces. */
  bodyChunks?: number;
  /** First part's name and the first file part's details. */
  partName?: string;
  filename?: string;
  fileBytes?: number;
  fileSha256?: string;
  /** Every part read, in order. */
  files?: RecordedFilePart[];
  /** Most body bytes the multipart parser held at once. */
  maxHeldBytes?: number;
  /** Client mistakes a real Jira or proxy might punish, e.g. "cookie sent". */
  violations: string[];
}

export interface FakeJira {
  /** The whole fake as a web-standard handler. Returns `Response.error()` to drop a connection. */
  fetch(req: Request): Promise<Response>;
  addUser(u: FakeUserInit): void;
  addPat(userName: string, pat: string): void;
  revokePat(pat: string): void;
  addIssue(i: FakeIssueInit): void;
  /** The issue by key, old key or id. */
  issue(keyOrId: string): FakeIssueView | undefined;
  setMode(mode: FakeJiraMode): void;
  readonly mode: FakeJiraMode;
  setOptions(patch: Partial<FakeJiraSettings>): void;
  readonly requests: RecordedRequest[];
  clearRequests(): void;
  /** A change request (an issue with a workflow status, labels, custom fields, a changelog). */
  addChangeRequest(init: FakeChangeRequestInit): void;
  /** Moves a CR to `to` as user `by`, adding a changelog entry. */
  transition(key: string, to: string, by: string): void;
  setField(key: string, field: string, value: unknown): void;
  addProjectRole(project: string, name: string, init: FakeRoleInit): void;
  addToGroup(group: string, user: string): void;
  /** Sends an issue-updated webhook for the newest transition, signed with the secret. */
  sendWebhook(url: string, options?: FakeWebhookOptions): Promise<Response>;
}

import type { FakeChangeRequestInit, FakeRoleInit, FakeWebhookOptions } from "./_cr.ts";
export type { FakeChangeRequestInit, FakeRoleInit, FakeWebhookOptions };
