// JSON bodies shaped like Jira Data Center's REST v2 beans (JIRA_FACTS A.2-A.4).

import type { FakeAttachment } from "./_types.ts";
import type { IssueRecord, UserRecord } from "./_state.ts";

/** Jira's timestamp: milliseconds and a ±hhmm offset without a colon. */
export function formatJiraDate(date: Date, utcOffsetMinutes: number): string {
  const shifted = new Date(date.getTime() + utcOffsetMinutes * 60_000);
  const local = shifted.toISOString().slice(0, 23); // "2018-09-19T18:15:01.060"
  const sign = utcOffsetMinutes < 0 ? "-" : "+";
  const abs = Math.abs(utcOffsetMinutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, "0");
  const mm = String(abs % 60).padStart(2, "0");
  return `${local}${sign}${hh}${mm}`;
}

function avatarUrls(base: string): Record<string, string> {
  const url = `${base}/secure/useravatar`;
  return {
    "48x48": `${url}?avatarId=10122`,
    "24x24": `${url}?size=small&avatarId=10122`,
    "16x16": `${url}?size=xsmall&avatarId=10122`,
    "32x32": `${url}?size=medium&avatarId=10122`,
  };
}

function userSelf(base: string, name: string): string {
  return `${base}/rest/api/2/user?username=${encodeURIComponent(name)}`;
}

/** The UserBean of GET /myself. */
export function myselfBean(base: string, u: UserRecord): Record<string, unknown> {
  return {
    self: userSelf(base, u.name),
    key: u.key,
    name: u.name,
    emailAddress: u.email,
    avatarUrls: avatarUrls(base),
    displayName: u.displayName,
    active: true,
    deleted: false,
    timeZone: u.timeZone,
    locale: "en_US",
    groups: { size: 1, items: [] },
    applicationRoles: { size: 1, items: [] },
    expand: "groups,applicationRoles",
  };
}

function authorBean(base: string, u: UserRecord): Record<string, unknown> {
  return {
    self: userSelf(base, u.name),
    name: u.name,
    key: u.key,
    emailAddress: u.email,
    avatarUrls: avatarUrls(base),
    displayName: u.displayName,
    active: true,
    timeZone: u.timeZone,
  };
}

/** One entry of `fields.attachment`, also the body of GET attachment/{id}. */
export function attachmentBean(
  base: string,
  a: FakeAttachment,
  author: UserRecord | undefined,
): Record<string, unknown> {
  const bean: Record<string, unknown> = {
    self: `${base}/rest/api/2/attachment/${a.id}`,
    id: a.id,
    filename: a.filename,
    // Authors deleted from the directory still show their name, as Jira does.
    author: author ? authorBean(base, author) : {
      name: a.author,
      key: a.author.toLowerCase(),
      displayName: a.author,
      active: false,
    },
    created: a.created,
    size: a.size,
    mimeType: a.mimeType,
    content: `${base}/secure/attachment/${a.id}/${encodeURIComponent(a.filename)}`,
  };
  // Jira only offers thumbnails for images.
  if (a.mimeType.startsWith("image/")) {
    bean.thumbnail = `${base}/secure/thumbnail/${a.id}/_thumb_${a.id}.png`;
  }
  return bean;
}

/**
 * GET issue. `fields` is the requested list; without it Jira returns every field. The attachment
 * field is omitted when attachments are disabled (real Jira's behaviour there is unconfirmed).
 */
export function issueBean(
  base: string,
  issue: IssueRecord,
  fields: string | null,
  attachmentsEnabled: boolean,
  users: Map<string, UserRecord>,
): Record<string, unknown> {
  const wanted = new Set((fields ?? "*all").split(",").map((f) => f.trim()));
  const all = wanted.has("*all") || wanted.has("*navigable");
  const out: Record<string, unknown> = {};
  if (all || wanted.has("summary")) out.summary = issue.summary;
  if (attachmentsEnabled && (all || wanted.has("attachment"))) {
    out.attachment = issue.attachments.map((a) => attachmentBean(base, a, users.get(a.author)));
  }
  return {
    expand: "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
    id: issue.id,
    self: `${base}/rest/api/2/issue/${issue.id}`,
    key: issue.key,
    fields: out,
  };
}

/** GET serverInfo, which Jira answers anonymously. */
export function serverInfoBean(base: string, serverTime: string): Record<string, unknown> {
  return {
    baseUrl: base,
    version: "9.12.2",
    versionNumbers: [9, 12, 2],
    deploymentType: "Server",
    buildNumber: 9120002,
    buildDate: "2023-12-05T00:00:00.000+0000",
    serverTime,
    scmInfo: "0000000000000000000000000000000000000000",
    serverTitle: "Jira",
  };
}

export function errorCollection(...messages: string[]): Record<string, unknown> {
  return { errorMessages: messages, errors: {} };
}

export function statusEntity(status: number, message: string): Record<string, unknown> {
  return { message, "status-code": status };
}
