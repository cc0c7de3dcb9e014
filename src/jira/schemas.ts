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
