import { z } from "zod";
import { defineTool } from "../tool.ts";
import { jobId, jobOutput } from "./sos_schemas.ts";

export const sosreportStatus = defineTool({
  name: "sosreport_status",
  description:
    "Show a sosreport job: running (with progress from sos's own plugin count), succeeded (with the archive path and size) or failed (with the reason). Poll it while generate_sosreport's job is running.",
  input: z.strictObject({ job_id: jobId }),
  output: jobOutput,
  annotations: {
    title: "Sosreport status",
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  },
  run: ({ s, ctx }, args) => s.sos.status(ctx, args.job_id),
});
