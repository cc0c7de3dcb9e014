import { z } from "zod";

export const jobOutput = z.object({
  job_id: z.string(),
  status: z.enum(["running", "succeeded", "failed"]),
  progress: z.object({ done: z.number().int(), total: z.number().int() }),
  archive_path: z.string().optional(),
  size: z.number().int().optional(),
  sha256: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const jobId = z.string().min(1).max(64).describe(
  "The job id (job_…) generate_sosreport returned.",
);
