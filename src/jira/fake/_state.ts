// The fake's data: users, PATs, issues and attachments, with Jira's permission rules.

import type { FakeAttachment, FakeIssueInit, FakeUserInit } from "./_types.ts";
import { dataCenterPatId } from "./_pat.ts";

export interface UserRecord {
  name: string;
  key: string;
  displayName: string;
  email: string;
  timeZone: string;
}

export interface IssueRecord {
  key: string;
  id: string;
  summary: string;
  browsers?: Set<string>;
  attachers?: Set<string>;
  editable: boolean;
  attachments: FakeAttachment[];
}

/** Jira's safe key shape (JIRA_FACTS A.9); mock mode creates only issues with such keys. */
const ISSUE_KEY = /^[A-Z][A-Z0-9_]{1,254}-[1-9][0-9]*$/;

export class FakeJiraState {
  readonly users = new Map<string, UserRecord>();
  // Security: PATs live only in these in-memory structures and are never serialised or logged.
  #pats = new Map<string, string>();
  #revoked = new Set<string>();
  #issuesByKey = new Map<string, IssueRecord>();
  #issuesById = new Map<string, IssueRecord>();
  #attachments = new Map<string, { attachment: FakeAttachment; issue: IssueRecord }>();
  #nextUserKey = 10100;
  #nextIssueId = 10001;
  #nextAttachmentId = 10400;

  addUser(u: FakeUserInit): UserRecord {
    if (this.users.has(u.name)) throw new Error(`Fake Jira already has a user named ${u.name}`);
    const user: UserRecord = {
      name: u.name,
      key: u.key ?? `JIRAUSER${this.#nextUserKey++}`,
      displayName: u.displayName,
      email: u.email ?? `${u.name}@example.com`,
      timeZone: "Europe/Berlin",
    };
    this.users.set(u.name, user);
    return user;
  }

  addPat(userName: string, pat: string): void {
    if (!this.users.has(userName)) throw new Error(`Fake Jira has no user named ${userName}`);
    this.#pats.set(pat, userName);
    this.#revoked.delete(pat);
  }

  revokePat(pat: string): void {
    this.#pats.delete(pat);
    this.#revoked.add(pat);
  }

  /** The user a PAT authenticates, or undefined for an unknown, revoked or malformed token. */
  userForPat(pat: string, acceptAnyDcPat: boolean): UserRecord | undefined {
    if (this.#revoked.has(pat)) return undefined;
    const name = this.#pats.get(pat);
    if (name !== undefined) return this.users.get(name);
    if (!acceptAnyDcPat) return undefined;
    const id = dataCenterPatId(pat);
    if (id === undefined) return undefined;
    const mockName = `mock-${id}`;
    return this.users.get(mockName) ??
      this.addUser({ name: mockName, displayName: `Mock User ${id}`, key: `JIRAUSER${id}` });
  }

  addIssue(init: FakeIssueInit, created: () => string): IssueRecord {
    const keys = [init.key, ...(init.movedFrom ?? [])];
    for (const k of keys) {
      if (this.#issuesByKey.has(k)) throw new Error(`Fake Jira already has an issue ${k}`);
    }
    const id = init.id ?? this.#freeIssueId();
    if (!/^[0-9]+$/.test(id) || this.#issuesById.has(id)) {
      throw new Error(`Fake Jira cannot use issue id ${id}`);
    }
    const browsers = init.browsers && new Set(init.browsers);
    const issue: IssueRecord = {
      key: init.key,
      id,
      summary: init.summary ?? `Issue ${init.key}`,
      browsers,
      // Create Attachments without Browse is meaningless in Jira, so attachers are a subset.
      attachers: init.attachers &&
        new Set(init.attachers.filter((n) => browsers === undefined || browsers.has(n))),
      editable: init.editable ?? true,
      attachments: [],
    };
    for (const k of keys) this.#issuesByKey.set(k, issue);
    this.#issuesById.set(id, issue);
    for (const a of init.attachments ?? []) {
      this.addAttachment(issue, {
        filename: a.filename,
        size: a.size,
        mimeType: a.mimeType ?? guessMimeType(a.filename),
        author: a.author ?? this.users.keys().next().value ?? "admin",
        created: a.created ?? created(),
      });
    }
    return issue;
  }

  /**
   * The issue for a key, old key or numeric id. With `autoCreate` (mock mode), a valid key that
   * does not exist yet becomes the issue it describes.
   */
  findIssue(
    keyOrId: string,
    created: () => string,
    autoCreate?: (key: string) => FakeIssueInit,
  ): IssueRecord | undefined {
    const found = this.#issuesByKey.get(keyOrId) ?? this.#issuesById.get(keyOrId);
    if (found || !autoCreate || !ISSUE_KEY.test(keyOrId)) return found;
    return this.addIssue(autoCreate(keyOrId), created);
  }

  canBrowse(issue: IssueRecord, user: UserRecord | undefined): boolean {
    if (!user) return false;
    return issue.browsers === undefined || issue.browsers.has(user.name);
  }

  canAttach(issue: IssueRecord, user: UserRecord | undefined): boolean {
    if (!user || !this.canBrowse(issue, user)) return false;
    return issue.attachers === undefined || issue.attachers.has(user.name);
  }

  addAttachment(issue: IssueRecord, a: Omit<FakeAttachment, "id">): FakeAttachment {
    const attachment: FakeAttachment = { id: String(this.#nextAttachmentId++), ...a };
    issue.attachments.push(attachment);
    this.#attachments.set(attachment.id, { attachment, issue });
    return attachment;
  }

  findAttachment(id: string): { attachment: FakeAttachment; issue: IssueRecord } | undefined {
    return this.#attachments.get(id);
  }

  deleteAttachment(id: string): void {
    const found = this.#attachments.get(id);
    if (!found) return;
    this.#attachments.delete(id);
    found.issue.attachments = found.issue.attachments.filter((a) => a.id !== id);
  }

  #freeIssueId(): string {
    while (this.#issuesById.has(String(this.#nextIssueId))) this.#nextIssueId++;
    return String(this.#nextIssueId++);
  }
}

const MIME_BY_SUFFIX: Array<[string, string]> = [
  [".tar.xz", "application/x-xz"],
  [".xz", "application/x-xz"],
  [".tar.gz", "application/x-gzip"],
  [".tgz", "application/x-gzip"],
  [".gz", "application/x-gzip"],
  [".zip", "application/zip"],
  [".txt", "text/plain"],
  [".log", "text/plain"],
  [".json", "application/json"],
  [".png", "image/png"],
  [".jpg", "image/jpeg"],
  [".jpeg", "image/jpeg"],
  [".gif", "image/gif"],
  [".pdf", "application/pdf"],
];

/** Jira's MIME guess from the file name, used when a part carries no useful Content-Type. */
export function guessMimeType(filename: string): string {
  const lower = filename.toLowerCase();
  for (const [suffix, type] of MIME_BY_SUFFIX) if (lower.endsWith(suffix)) return type;
  return "application/octet-stream";
}
