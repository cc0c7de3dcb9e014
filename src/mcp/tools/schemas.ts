/** Output shapes shared by several tools; they mirror the HTTP API's (DESIGN.md section 4). */
import { z } from "zod";

export const connectionId = z.string().min(1).max(128).describe(
  "The opaque connection id (jc_…) the user got when connecting Jira. Never a token.",
);

export const issueKey = z.string().min(1).max(300).describe(
  "Jira issue key such as SUP-123 (case-insensitive), or a numeric issue id.",
);

export const connectionOutput = z.object({
  connection_id: z.string(),
  status: z.enum(["connected", "expired", "revoked"]),
  base_url: z.string(),
  jira_user: z.object({ name: z.string(), display_name: z.string() }),
  created_at: z.string(),
  expires_at: z.string(),
  last_verified_at: z.string(),
  revoked_at: z.string().nullable(),
  key_version: z.string(),
  deployment: z.enum(["data_center", "cloud"]),
  email_hint: z.string().optional().describe("Jira Cloud only: the masked account e-mail."),
  cloud_route: z.enum(["site", "gateway"]).optional().describe(
    "Jira Cloud only: site (classic API token) or gateway (scoped API token, api.atlassian.com).",
  ),
});

export const attachmentOutput = z.object({
  id: z.string(),
  filename: z.string(),
  size: z.number().int(),
  mime_type: z.string(),
  created: z.string(),
});

/** Present when something needs the user's action, e.g. their token is exposed in Jira. */
export const warningsOutput = z.array(z.object({ code: z.string(), message: z.string() }))
  .optional();
