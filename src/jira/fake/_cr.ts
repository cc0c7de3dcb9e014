// Change-request data of the fake Jira: workflow status, labels, custom fields, the changelog,
// project roles and groups, and webhooks signed like Jira's (shapes: src/approval/JIRA_ENDPOINTS.md).

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
    const cr = this.#cr(key);
    const item = { field: "status", fieldtype: "jira", fromString: cr.status, toString: to };
    cr.histories.push({
      id: String(this.#nextHistoryId++),
      author: by.name,
      created,
      items: [item],
    });
    cr.status = to;
    this.#lastEvent = { key, by, item, historyId: cr.histories.at(-1)!.id };
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
    const wanted = new Set((fieldsParam ?? "*all").split(",").map((f) => f.trim()));
    const all = wanted.has("*all") || wanted.has("*navigable");
    const fields = bean.fields as Record<string, unknown>;
    if (all || wanted.has("project")) {
      fields.project = {
        self: `${base}/rest/api/2/project/${cr.project}`,
        key: cr.project,
        name: `${cr.project} changes`,
      };
    }
    if (all || wanted.has("status")) {
      fields.status = {
        self: `${base}/rest/api/2/status/${STATUS_IDS[cr.status] ?? "3"}`,
        name: cr.status,
        id: STATUS_IDS[cr.status] ?? "3",
        statusCategory: { key: cr.status === "Open" ? "new" : "done" },
      };
    }
    if (all || wanted.has("labels")) fields.labels = [...cr.labels];
    for (const [id, value] of Object.entries(cr.fields)) {
      if (all || wanted.has(id)) fields[id] = value;
    }
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

  /** GET project/{key}/role: role names to their URLs. */
  rolesBean(project: string, base: string): Record<string, string> | undefined {
    const roles = this.#roles.get(project);
    if (!roles) return undefined;
    return Object.fromEntries(
      [...roles].map(([name, r]) => [name, `${base}/rest/api/2/project/${project}/role/${r.id}`]),
    );
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
