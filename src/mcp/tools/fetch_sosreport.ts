import { z } from "zod";
import { defineTool } from "../tool.ts";
import { jobId } from "./sos_schemas.ts";

export const fetchSosreport = defineTool({
  name: "fetch_sosreport",
  description:
    "Copy a finished sosreport archive from /var/tmp into the user's own sosvault folder (readable only by sosvault), verify it against the checksum sos wrote, and return its artifact_ref for jira_attach_artifact. Give exactly one of job_id (preferred) or archive_path (a sosreport-<host>-linux-mcp-sos-<date>-<id>.tar.xz directly in /var/tmp). Copies are deleted after SOSVAULT_ARTIFACT_TTL_SECONDS.",
  input: z.strictObject({
    job_id: jobId.optional(),
    archive_path: z.string().min(1).max(4096).optional().describe(
      "Absolute path of the archive sos printed, directly in /var/tmp.",
    ),
  }),
  output: z.object({
    artifact_ref: z.string().describe(
      "Path of the verified copy: pass it to jira_attach_artifact.",
    ),
    filename: z.string(),
    size: z.number().int(),
    sha256: z.string(),
  }),
  annotations: {
    title: "Fetch a sosreport",
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  },
  run: ({ s, ctx }, args) => s.fetch.fetch(ctx, args),
});
