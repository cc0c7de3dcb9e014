/**
 * The Jira Cloud REST v3 reads the approval gate needs, beside the Data Center ones in
 * jira_cr.ts (shapes and sources: src/approval/JIRA_ENDPOINTS.md, "Jira Cloud"). Cloud has no
 * user names since the GDPR changes: changelog authors, role actors and group lookups all go
 * by accountId, which is also what a Cloud connection stores as `jira_user.name` at connect.
 *
 * Routes come from the connection's `JiraAuth` (src/jira/auth.ts): the site URL for a classic
 * token, `https://api.atlassian.com/ex/jira/{cloudId}` for a scoped one. Nothing here builds a
 * base URL or an Authorization header itself.
 */
import { z } from "zod";
import { AppError } from "../errors.ts";
import type { JiraClient } from "../jira/client.ts";
import type { JiraAuth } from "../jira/auth.ts";
import { type ApprovalJira, toChangeRequest, unexpected } from "./jira_cr.ts";

/** Cloud's own page size limit for the changelog (maxResults at most 100). */
export const CHANGELOG_PAGE_SIZE = 100;
/** Bounded paging: a CR with a longer history than this is refused rather than half read. */
export const MAX_CHANGELOG_PAGES = 20;

// The classic scopes a scoped token needs per route (Jira Cloud REST v3 reference); named in
// the error when the gateway refuses a token for lacking one.
const ISSUE_SCOPE = "read:jira-work";
const ROLE_SCOPE = "read:jira-work";
const GROUPS_SCOPE = "read:jira-user";

const author = z.object({
  accountId: z.string().min(1),
  displayName: z.string().nullish(),
}).loose().nullish();

const history = z.object({
  author,
  created: z.string(),
  items: z.array(z.object({ field: z.string(), toString: z.string().nullish() }).loose()),
}).loose();
type History = z.infer<typeof history>;

const issueSchema = z.object({
  key: z.string(),
  fields: z.object({
    project: z.object({ key: z.string() }),
    status: z.object({ name: z.string() }),
    labels: z.array(z.string()).nullish(),
  }).loose(),
  changelog: z.object({
    total: z.number().int().nonnegative().optional(),
    histories: z.array(history),
  }).loose().optional(),
});

/** `GET /issue/{key}/changelog`: a PageBeanChangelog, oldest first. */
const pageSchema = z.object({
  startAt: z.number().int().nonnegative().optional(),
  total: z.number().int().nonnegative().optional(),
  isLast: z.boolean().optional(),
  values: z.array(history),
}).loose();

const rolesSchema = z.record(z.string(), z.string());
const roleSchema = z.object({
  actors: z.array(
    z.object({
      type: z.string(),
      actorUser: z.object({ accountId: z.string() }).loose().nullish(),
      actorGroup: z.object({ name: z.string().nullish(), groupId: z.string().nullish() }).loose()
        .nullish(),
    }).loose(),
  ),
});
const groupsSchema = z.array(
  z.object({ name: z.string(), groupId: z.string().nullish() }).loose(),
);

export function cloudApprovalJira(jira: JiraClient): ApprovalJira {
  return {
    async changeRequest(auth, key, approvedStatus, extraFields) {
      const k = encodeURIComponent(key);
      const fields = ["project", "status", "labels", ...extraFields].join(",");
      const body = await jira.getJson(
        auth.apiBase,
        `${auth.restPrefix}/issue/${k}?fields=${fields}&expand=changelog`,
        auth,
        {
          notFound: `The change request ${key} does not exist, or your Jira account cannot see it`,
          scope: ISSUE_SCOPE,
        },
      );
      const parsed = issueSchema.safeParse(body);
      if (!parsed.success) throw unexpected("the change request");
      const issue = parsed.data;
      let histories = issue.changelog?.histories ?? [];
      // Cloud embeds only part of a long changelog (total tells how long it is): the newest
      // approval may be outside it, so the whole history is read from the paged endpoint.
      const total = issue.changelog?.total;
      if (total !== undefined && total > histories.length) {
        histories = await pagedChangelog(jira, auth, key);
      }
      return toChangeRequest(
        issue,
        histories,
        approvedStatus,
        extraFields,
        (a) => ({ name: a.accountId, display_name: a.displayName ?? a.accountId }),
      );
    },

    async holdsRole(auth, project, role, accountId) {
      const p = encodeURIComponent(project);
      const forbidden =
        `Jira Cloud did not let your account read the project roles of ${project} (Jira Cloud asks for the Administer Projects permission there): ask the Jira administrator`;
      const roles = rolesSchema.safeParse(
        await jira.getJson(auth.apiBase, `${auth.restPrefix}/project/${p}/role`, auth, {
          scope: ROLE_SCOPE,
          forbidden,
        }),
      );
      if (!roles.success) throw unexpected("the project roles");
      const url = roles.data[role];
      const id = url ? /\/role\/(\d+)$/.exec(url)?.[1] : undefined;
      if (id) {
        const actors = roleSchema.safeParse(
          await jira.getJson(auth.apiBase, `${auth.restPrefix}/project/${p}/role/${id}`, auth, {
            scope: ROLE_SCOPE,
            forbidden,
          }),
        );
        if (!actors.success) throw unexpected("the project role");
        const list = actors.data.actors;
        if (
          list.some((a) =>
            a.type === "atlassian-user-role-actor" && a.actorUser?.accountId === accountId
          )
        ) return true;
        const groups = list.filter((a) => a.type === "atlassian-group-role-actor" && a.actorGroup)
          .map((a) => a.actorGroup!);
        if (groups.length === 0) return false;
        const mine = await userGroups(jira, auth, accountId);
        // A group's name can change on Cloud; its groupId cannot, so it decides when both have one.
        return groups.some((g) =>
          mine.some((m) => g.groupId && m.groupId ? g.groupId === m.groupId : g.name === m.name)
        );
      }
      // Not a project role of the CR project: the name is a group.
      return (await userGroups(jira, auth, accountId)).some((g) => g.name === role);
    },
  };
}

/** The whole changelog, page by page (oldest first), at most MAX_CHANGELOG_PAGES pages. */
async function pagedChangelog(jira: JiraClient, auth: JiraAuth, key: string): Promise<History[]> {
  const out: History[] = [];
  for (let page = 0; page < MAX_CHANGELOG_PAGES; page++) {
    const parsed = pageSchema.safeParse(
      await jira.getJson(
        auth.apiBase,
        `${auth.restPrefix}/issue/${
          encodeURIComponent(key)
        }/changelog?startAt=${out.length}&maxResults=${CHANGELOG_PAGE_SIZE}`,
        auth,
        { scope: ISSUE_SCOPE },
      ),
    );
    if (!parsed.success) throw unexpected("the change request's changelog");
    const p = parsed.data;
    out.push(...p.values);
    const done = p.isLast ?? (p.total !== undefined ? out.length >= p.total : true);
    if (done || p.values.length === 0) return out;
  }
  throw new AppError(
    "approval_required",
    `change request ${key} is not a valid approval: its history is longer than sosvault reads (${
      MAX_CHANGELOG_PAGES * CHANGELOG_PAGE_SIZE
    } changes), so its approval cannot be checked: use a new change request`,
  );
}

async function userGroups(
  jira: JiraClient,
  auth: JiraAuth,
  accountId: string,
): Promise<Array<{ name: string; groupId?: string | null }>> {
  const parsed = groupsSchema.safeParse(
    await jira.getJson(
      auth.apiBase,
      `${auth.restPrefix}/user/groups?accountId=${encodeURIComponent(accountId)}`,
      auth,
      { scope: GROUPS_SCOPE },
    ),
  );
  if (!parsed.success) throw unexpected("the user's groups");
  return parsed.data;
}
