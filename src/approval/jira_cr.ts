/**
 * The Jira Data Center REST v2 reads the approval gate needs, on the caller's own connection
 * (shapes and sources: src/approval/JIRA_ENDPOINTS.md). The Jira Cloud variant (accountId
 * instead of name, REST v3) is beside it in jira_cr_cloud.ts; the gate picks one by the
 * connection's deployment.
 */
import { z } from "zod";
import { AppError } from "../errors.ts";
import type { JiraClient } from "../jira/client.ts";
import type { JiraAuth } from "../jira/auth.ts";

/** What the gate learns about a change request. */
export interface ChangeRequest {
  key: string;
  project: string;
  status: string;
  labels: string[];
  /** The requested custom fields, raw (string, object or null as Jira sent them). */
  fields: Record<string, unknown>;
  /**
   * The user of the newest transition into `approvedStatus`, from the changelog. `name` is the
   * stable identity the connection's `jira_user.name` also holds: the user name on Data
   * Center, the accountId on Cloud.
   */
  approver: { name: string; display_name: string } | null;
}

/**
 * The reads, on the connection's own route and scheme (`JiraAuth` from src/jira/auth.ts: the
 * base URL or the Cloud gateway, Bearer or Basic), so no implementation builds routes itself.
 */
export interface ApprovalJira {
  changeRequest(
    auth: JiraAuth,
    key: string,
    approvedStatus: string,
    extraFields: string[],
  ): Promise<ChangeRequest>;
  /** Whether `user` holds the project role `role` of `project`, or else is in group `role`. */
  holdsRole(auth: JiraAuth, project: string, role: string, user: string): Promise<boolean>;
}

const userRef = z.object({ name: z.string(), displayName: z.string().nullish() }).nullish();

const issueSchema = z.object({
  key: z.string(),
  fields: z.object({
    project: z.object({ key: z.string() }),
    status: z.object({ name: z.string() }),
    labels: z.array(z.string()).nullish(),
  }).loose(),
  changelog: z.object({
    histories: z.array(
      z.object({
        author: userRef,
        created: z.string(),
        items: z.array(
          z.object({
            field: z.string(),
            toString: z.string().nullish(),
          }).loose(),
        ),
      }).loose(),
    ),
  }).loose().optional(),
});

const rolesSchema = z.record(z.string(), z.string());
const roleSchema = z.object({
  actors: z.array(z.object({ type: z.string(), name: z.string() }).loose()),
});
const userSchema = z.object({
  groups: z.object({ items: z.array(z.object({ name: z.string() }).loose()) }).loose(),
});

/** One changelog entry, as both deployments send it (the author's shape differs). */
export interface History<A> {
  author?: A | null;
  items: Array<{ field: string; toString?: string | null }>;
}

/**
 * The change request from the issue and its changelog (oldest first): the newest move into the
 * approved status is the approval, and `approverOf` names its author the deployment's way.
 */
export function toChangeRequest<A>(
  issue: {
    key: string;
    fields: { project: { key: string }; status: { name: string }; labels?: string[] | null };
  },
  histories: readonly History<A>[],
  approvedStatus: string,
  extraFields: readonly string[],
  approverOf: (author: A) => NonNullable<ChangeRequest["approver"]>,
): ChangeRequest {
  let approver: ChangeRequest["approver"] = null;
  for (const h of histories) {
    const intoApproved = h.items.some((i) => i.field === "status" && i.toString === approvedStatus);
    if (intoApproved && h.author) approver = approverOf(h.author);
  }
  const raw = issue.fields as Record<string, unknown>;
  return {
    key: issue.key,
    project: issue.fields.project.key,
    status: issue.fields.status.name,
    labels: issue.fields.labels ?? [],
    fields: Object.fromEntries(extraFields.map((f) => [f, raw[f] ?? null])),
    approver,
  };
}

export function unexpected(what: string): AppError {
  return new AppError("upstream_unavailable", `Jira answered ${what} with an unexpected body`);
}

export function dataCenterApprovalJira(jira: JiraClient): ApprovalJira {
  return {
    async changeRequest(auth, key, approvedStatus, extraFields) {
      const fields = ["project", "status", "labels", ...extraFields].join(",");
      const body = await jira.getJson(
        auth.apiBase,
        `/rest/api/2/issue/${encodeURIComponent(key)}?fields=${fields}&expand=changelog`,
        auth,
        {
          notFound: `The change request ${key} does not exist, or your Jira account cannot see it`,
        },
      );
      const parsed = issueSchema.safeParse(body);
      if (!parsed.success) throw unexpected("the change request");
      const issue = parsed.data;
      return toChangeRequest(
        issue,
        issue.changelog?.histories ?? [],
        approvedStatus,
        extraFields,
        (a) => ({ name: a.name, display_name: a.displayName ?? a.name }),
      );
    },

    async holdsRole(auth, project, role, user) {
      const p = encodeURIComponent(project);
      const roles = rolesSchema.safeParse(
        await jira.getJson(auth.apiBase, `/rest/api/2/project/${p}/role`, auth),
      );
      if (!roles.success) throw unexpected("the project roles");
      const url = roles.data[role];
      const id = url ? /\/role\/(\d+)$/.exec(url)?.[1] : undefined;
      if (id) {
        const actors = roleSchema.safeParse(
          await jira.getJson(auth.apiBase, `/rest/api/2/project/${p}/role/${id}`, auth),
        );
        if (!actors.success) throw unexpected("the project role");
        const users = actors.data.actors.filter((a) => a.type === "atlassian-user-role-actor");
        if (users.some((a) => a.name === user)) return true;
        const groups = actors.data.actors.filter((a) => a.type === "atlassian-group-role-actor")
          .map((a) => a.name);
        if (groups.length === 0) return false;
        const mine = await userGroups(jira, auth, user);
        return groups.some((g) => mine.has(g));
      }
      // Not a project role of the CR project: the name is a group.
      return (await userGroups(jira, auth, user)).has(role);
    },
  };
}

async function userGroups(jira: JiraClient, auth: JiraAuth, user: string): Promise<Set<string>> {
  const parsed = userSchema.safeParse(
    await jira.getJson(
      auth.apiBase,
      `/rest/api/2/user?username=${encodeURIComponent(user)}&expand=groups`,
      auth,
    ),
  );
  if (!parsed.success) throw unexpected("the user's groups");
  return new Set(parsed.data.groups.items.map((g) => g.name));
}
