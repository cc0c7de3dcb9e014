import { z } from "zod";
import { defineTool } from "../tool.ts";
import { jobOutput } from "./sos_schemas.ts";

export const generateSosreport = defineTool({
  name: "generate_sosreport",
  description:
    "Run `sos report` as root on this host to collect system configuration and logs into an archive in /var/tmp. Needs the user's consent: the client asks the user to confirm (when it supports forms), or the user gives a one-time consent_token they created themselves through sosvault's HTTP API (POST /api/sos/consents). Never invent a consent_token. Hosts with change approval on also need change_request (the key of an approved change request in Jira, e.g. CR-1042) and connection_id (the user's Jira connection to check it with); an approval_required error says what is missing. Ask the user for the change request key; never invent or guess one. Only one sosreport runs per host at a time. Reports progress; returns when sos finishes or after about 25 seconds with status running — then poll sosreport_status. Next step: fetch_sosreport.",
  input: z.strictObject({
    consent_token: z.string().min(1).max(128).optional().describe(
      "A one-time consent the user created outside the chat (sc_…); omit it to ask the user through the client.",
    ),
    change_request: z.string().min(1).max(300).optional().describe(
      "Key of the approved change request in Jira (e.g. CR-1042), when this host requires change approval. Ask the user for it; never invent one.",
    ),
    connection_id: z.string().min(1).max(64).optional().describe(
      "The user's Jira connection (jc_…) used to check the change request; required when change approval is on.",
    ),
  }),
  output: jobOutput,
  annotations: {
    title: "Generate a sosreport",
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: false,
    openWorldHint: false,
  },
  run: ({ s, ctx, progress, confirm }, args) => s.sos.generate(ctx, args, { progress, confirm }),
});
