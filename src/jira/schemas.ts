/** The fields sosvault reads from Jira answers, and nothing more (JIRA_FACTS.md A.2, A.3). */
import { z } from "zod";

export const myselfSchema = z.object({
  name: z.string().min(1),
  key: z.string().optional(),
  displayName: z.string().nullish(),
}).transform((u) => ({
  name: u.name,
  key: u.key ?? null,
  display_name: u.displayName ?? u.name,
}));
export type JiraUser = z.infer<typeof myselfSchema>;

/**
 * Cloud's `/rest/api/3/myself`: no `name` or `key` since the GDPR changes, only the `accountId`.
 * The connection's `jira_user.name` carries the accountId (the stable, non-personal id), `key`
 * stays null; the e-mail is never read from here (Cloud may hide it).
 */
export const cloudMyselfSchema = z.object({
  accountId: z.string().min(1).max(128),
  displayName: z.string().nullish(),
}).transform((u) => ({
  name: u.accountId,
  key: null as string | null,
  display_name: u.displayName ?? u.accountId,
}));
