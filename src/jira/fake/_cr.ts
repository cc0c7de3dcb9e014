// Change-request data of the fake Jira: workflow status, labels, custom fields, the changelog,
// project roles and groups, and webhooks signed like Jira's (shapes: src/approval/JIRA_ENDPOINTS.md).
// One store answers both dialects: Data Center (REST v2, users by name) and, for the fake Jira
// Cloud, REST v3 (users by accountId, group ids, a paged changelog endpoint).

import { createHmac } from "node:crypto";
import type { UserRecord } from "./_state.ts";

export interface FakeChangeRequestInit {
  key: string;
  /** Default "Open". */
  status?: string;
  labels?: string[];
  /** Custom fields by id, e.g. { customfield_10200: "..." }. */
  fields?: Record<string, unknown>;
  /** User names that may see it; default every user. */
  browsers?: string[];
}

export interface FakeRoleInit {
  users?: string[];
  groups?: string[];
}

export interface FakeWebhookOptions {
  /** The secret to sign with; none sends the delivery unsigned. */
  secret?: string;
  /** The header to sign in: Jira's X-Hub-Signature (default) or X-Webhook-Signature. */
  header?: "X-Hub-Signature" | "X-Webhook-Signature";
  /** Delivery id (X-Atlassian-Webhook-Identifier); default a fresh one. */
  identifier?: string;
  /** Epoch milliseconds in the body; default now. */
  timestamp?: number;
  /** Replace the body entirely (forgery and size tests). */
  rawBody?: Uint8Array<ArrayBuffer>;
  /** Trusts this client (test CA) when the URL is HTTPS. */
  client?: Deno.HttpClient;
}

interface HistoryRecord {
  id: string;
  author: string;
  created: string;
  items: Array<{ field: string; fieldtype: string; fromString: string; toString: string }>;
}

interface CrRecord {
  key: string;
  project: string;
  status: string;
  labels: string[];
  fields: Record<string, unknown>;
  histories: HistoryRecord[];
}

const STATUS_IDS: Record<string, string> = { Open: "1", Approved: "10001", Rejected: "10002" };

export class FakeCrData {
  readonly #crs = new Map<string, CrRecord>();
  readonly #roles = new Map<
    string,
    Map<string, { id: string; users: Set<string>; groups: Set<string> }>
  >();
  readonly #groups = new Map<string, Set<string>>();
  readonly #groupIds = new Map<string, string>();
  #nextRoleId = 10002;
  #nextHistoryId = 20000;
  #lastEvent: Record<string, unknown> | null = null;

  add(init: FakeChangeRequestInit): void {
    this.#crs.set(init.key, {
      key: init.key,
      project: init.key.split("-")[0],
      status: init.status ?? "Open",
      labels: [...(init.labels ?? [])],
      fields: { ...(init.fields ?? {}) },
      histories: [],
    });
  }

  has(key: string): boolean {
    return this.#crs.has(key);
  }

  /** A workflow transition by `by`, recorded in the changelog as Jira does. */
  transition(key: string, to: string, by: UserRecord, created: string): void {
    this.transitionAs(key, to, by.name, created);
  }

  /** The same, by an author id: a Data Center user name or a Cloud accountId. */
  transitionAs(key: string, to: string, author: string, created: string): void {
    const cr = this.#cr(key);
    const item = { field: "status", fieldtype: "jira", fromString: cr.status, toString: to };
    cr.histories.push({ id: String(this.#nextHistoryId++), author, created, items: [item] });
    cr.status = to;
    this.#lastEvent = { key, by: { name: author }, item, historyId: cr.histories.at(-1)!.id };
  }

  setField(key: string, field: string, value: unknown): void {
    const cr = this.#cr(key);
    if (field === "labels") cr.labels = value as string[];
    else cr.fields[field] = value;
  }

  addRole(project: string, name: string, init: FakeRoleInit): void {
    const roles = this.#roles.get(project) ?? new Map();
    roles.set(name, {
      id: String(this.#nextRoleId++),
      users: new Set(init.users ?? []),
      groups: new Set(init.groups ?? []),
    });
    this.#roles.set(project, roles);
  }

  addToGroup(group: string, user: string): void {
    const members = this.#groups.get(group) ?? new Set();
    members.add(user);
    this.#groups.set(group, members);
  }

  /** Cloud's stable group id (a UUID; a group's name can change, its id cannot). */
  groupId(group: string): string {
    let id = this.#groupIds.get(group);
    if (!id) this.#groupIds.set(group, id = crypto.randomUUID());
    return id;
  }

  groupsOf(user: string): string[] {
    return [...this.#groups].filter(([, m]) => m.has(user)).map(([g]) => g).sort();
  }

  /** Adds status, labels, custom fields and (when expanded) the changelog to an issue bean. */
  decorate(
    bean: Record<string, unknown>,
    key: string,
    base: string,
    fieldsParam: string | null,
    expand: string | null,
    users: Map<string, UserRecord>,
  ): void {
    const cr = this.#crs.get(key);
    if (!cr) return;
    this.#addFields(bean, cr, base, fieldsParam, "2");
    if ((expand ?? "").split(",").includes("changelog")) {
      bean.changelog = {
        startAt: 0,
        maxResults: cr.histories.length,
        total: cr.histories.length,
        histories: cr.histories.map((h) => ({
          id: h.id,
          author: userBean(base, users.get(h.author), h.author),
          created: h.created,
          items: h.items.map((i) => ({ ...i, from: null, to: null })),
        })),
      };
    }
  }

  /**
   * Cloud's issue bean: the same fields, REST v3 URLs, and an embedded changelog of at most
   * `embedLimit` histories (the oldest) whose `total` tells that more exist.
   */
  decorateCloud(
    bean: Record<string, unknown>,
    key: string,
    base: string,
    fieldsParam: string | null,
    expand: string | null,
    author: (accountId: string) => Record<string, unknown>,
    embedLimit: number,
  ): void {
    const cr = this.#crs.get(key);
    if (!cr) return;
    this.#addFields(bean, cr, base, fieldsParam, "3");
    if ((expand ?? "").split(",").includes("changelog")) {
      const shown = cr.histories.slice(0, embedLimit);
      bean.changelog = {
        startAt: 0,
        maxResults: shown.length,
        total: cr.histories.length,
        histories: shown.map((h) => cloudHistory(h, author)),
      };
    }
  }

  /** Cloud's `GET issue/{key}/changelog`: a PageBeanChangelog, oldest first, at most 100. */
  changelogPage(
    key: string,
    startAt: number,
    maxResults: number,
    base: string,
    author: (accountId: string) => Record<string, unknown>,
  ): Record<string, unknown> | undefined {
    const cr = this.#crs.get(key);
    if (!cr) return undefined;
    const size = Math.max(1, Math.min(100, maxResults));
    const values = cr.histories.slice(startAt, startAt + size);
    const isLast = startAt + values.length >= cr.histories.length;
    const self = `${base}/rest/api/3/issue/${key}/changelog`;
    return {
      self: `${self}?startAt=${startAt}&maxResults=${size}`,
      ...(isLast ? {} : { nextPage: `${self}?startAt=${startAt + size}&maxResults=${size}` }),
      maxResults: size,
      startAt,
      total: cr.histories.length,
      isLast,
      values: values.map((h) => cloudHistory(h, author)),
    };
  }

  #addFields(
    bean: Record<string, unknown>,
    cr: CrRecord,
    base: string,
    fieldsParam: string | null,
    api: "2" | "3",
  ): void {
    const wanted = new Set((fieldsParam ?? "*all").split(",").map((f) => f.trim()));
    const all = wanted.has("*all") || wanted.has("*navigable");
    const fields = bean.fields as Record<string, unknown>;
    if (all || wanted.has("project")) {
      fields.project = {
        self: `${base}/rest/api/${api}/project/${cr.project}`,
        key: cr.project,
        name: `${cr.project} changes`,
      };
    }
    if (all || wanted.has("status")) {
      fields.status = {
        self: `${base}/rest/api/${api}/status/${STATUS_IDS[cr.status] ?? "3"}`,
        name: cr.status,
        id: STATUS_IDS[cr.status] ?? "3",
        statusCategory: { key: cr.status === "Open" ? "new" : "done" },
      };
    }
    if (all || wanted.has("labels")) fields.labels = [...cr.labels];
    for (const [id, value] of Object.entries(cr.fields)) {
      if (all || wanted.has(id)) fields[id] = value;
    }
  }

  /** GET project/{key}/role: role names to their URLs. */
  rolesBean(
    project: string,
    base: string,
    api: "2" | "3" = "2",
  ): Record<string, string> | undefined {
    const roles = this.#roles.get(project);
    if (!roles) return undefined;
    return Object.fromEntries(
      [...roles].map((
        [name, r],
      ) => [name, `${base}/rest/api/${api}/project/${project}/role/${r.id}`]),
    );
  }

  /**
   * Cloud's GET project/{key}/role/{id}: user actors carry `actorUser.accountId`, group actors
   * `actorGroup` with name and groupId; no user names.
   */
  cloudRoleBean(
    project: string,
    id: string,
    base: string,
    displayName: (accountId: string) => string,
  ) {
    const found = [...(this.#roles.get(project) ?? [])].find(([, r]) => r.id === id);
    if (!found) return undefined;
    const [name, r] = found;
    let actorId = 10200;
    return {
      self: `${base}/rest/api/3/project/${project}/role/${id}`,
      name,
      id: Number(id),
      description: `${name} of ${project}`,
      actors: [
        ...[...r.users].map((accountId) => ({
          id: actorId++,
          displayName: displayName(accountId),
          type: "atlassian-user-role-actor",
          actorUser: { accountId },
        })),
        ...[...r.groups].map((g) => ({
          id: actorId++,
          displayName: g,
          type: "atlassian-group-role-actor",
          name: g,
          actorGroup: { name: g, displayName: g, groupId: this.groupId(g) },
        })),
      ],
    };
  }

  /** Cloud's GET user/groups?accountId=…: the groups a user is in, with their ids. */
  cloudGroupsOf(accountId: string, base: string) {
    return this.groupsOf(accountId).map((g) => ({
      name: g,
      groupId: this.groupId(g),
      self: `${base}/rest/api/3/group?groupId=${this.groupId(g)}`,
    }));
  }

  /** GET project/{key}/role/{id}: the role with its actors. */
  roleBean(project: string, id: string, base: string, users: Map<string, UserRecord>) {
    const found = [...(this.#roles.get(project) ?? [])].find(([, r]) => r.id === id);
    if (!found) return undefined;
    const [name, r] = found;
    let actorId = 10200;
    return {
      self: `${base}/rest/api/2/project/${project}/role/${id}`,
      name,
      id: Number(id),
      description: `${name} of ${project}`,
      actors: [
        ...[...r.users].map((u) => ({
          id: actorId++,
          displayName: users.get(u)?.displayName ?? u,
          type: "atlassian-user-role-actor",
          name: u,
          avatarUrl: `${base}/secure/useravatar?size=xsmall&avatarId=10122`,
        })),
        ...[...r.groups].map((g) => ({
          id: actorId++,
          displayName: g,
          type: "atlassian-group-role-actor",
          name: g,
          avatarUrl: `${base}/images/icons/avatars/avatar-generic.png`,
        })),
      ],
    };
  }

  /**
   * POSTs a `jira:issue_updated` event for the newest transition to `url`, signed with HMAC-
   * SHA256 over the exact body bytes. Returns the response status.
   */
  async sendWebhook(url: string, options: FakeWebhookOptions = {}): Promise<Response> {
    const last = this.#lastEvent;
    const body: Uint8Array<ArrayBuffer> = options.rawBody ??
      new TextEncoder().encode(JSON.stringify({
        timestamp: options.timestamp ?? Date.now(),
        webhookEvent: "jira:issue_updated",
        issue_event_type_name: "issue_generic",
        user: last ? { name: (last.by as UserRecord).name } : null,
        issue: last
          ? {
            key: last.key,
            fields: { status: { name: (last.item as { toString: string }).toString } },
          }
          : null,
        changelog: last ? { id: last.historyId, items: [last.item] } : null,
      }));
    const headers = new Headers({ "Content-Type": "application/json; charset=UTF-8" });
    headers.set(
      "X-Atlassian-Webhook-Identifier",
      options.identifier ?? crypto.randomUUID(),
    );
    if (options.secret) {
      const mac = createHmac("sha256", options.secret).update(body).digest("hex");
      headers.set(options.header ?? "X-Hub-Signature", `sha256=${mac}`);
    }
    return await fetch(url, {
      method: "POST",
      headers,
      body,
      ...(options.client ? { client: options.client } : {}),
    });
  }

  #cr(key: string): CrRecord {
    const cr = this.#crs.get(key);
    if (!cr) throw new Error(`Fake Jira has no change request ${key}`);
    return cr;
  }
}

function cloudHistory(h: HistoryRecord, author: (accountId: string) => Record<string, unknown>) {
  return {
    id: h.id,
    author: author(h.author),
    created: h.created,
    items: h.items.map((i) => ({ ...i, from: null, to: null })),
  };
}

function userBean(base: string, u: UserRecord | undefined, name: string) {
  return {
    self: `${base}/rest/api/2/user?username=${encodeURIComponent(name)}`,
    name,
    key: u?.key ?? name,
    displayName: u?.displayName ?? name,
    active: true,
    timeZone: u?.timeZone ?? "Europe/Berlin",
  };
}
