/**
 * Reading attachments and attachment settings from Jira Server/Data Center (JIRA_FACTS.md A.3,
 * A.4, A.9). Only the fields the contract reports are read; `self`, `content` and `thumbnail`
 * URLs are dropped unread, so nothing ever follows them to another origin.
 */
import { z } from "zod";
import { AppError } from "../errors.ts";
import type { JiraClient } from "./client.ts";
import { type JiraAuth, toAuth } from "./auth.ts";

/** One attachment as sosvault reports it (DESIGN.md section 6, jira_list_attachments). */
export interface AttachmentInfo {
  id: string;
  filename: string;
  /** Bytes. */
  size: number;
  mime_type: string;
  /** ISO-8601 UTC ("2018-09-20T01:15:01.060Z"); "" when Jira gave none we can read. */
  created: string;
  /** The author's displayName, else name, else "". */
  author: string;
}

const ISSUE_KEY = /^[A-Z][A-Z0-9_]{1,254}-[1-9][0-9]*$/;
const ISSUE_ID = /^[1-9][0-9]{0,17}$/;

/**
 * Upper-cases and validates an issue key ("abc-123" → "ABC-123") or a numeric issue id.
 * Security: the result is safe to put into a URL path and a message; the raw input never is,
 * so it is not echoed.
 */
export function normaliseIssueKey(input: string): string {
  const trimmed = typeof input === "string" ? input.trim() : "";
  // ASCII first: toUpperCase() would turn "ı" or "ſ" into "I" or "S" and let them pass.
  const key = /^[A-Za-z0-9_-]+$/.test(trimmed) ? trimmed.toUpperCase() : "";
  if (!ISSUE_KEY.test(key) && !ISSUE_ID.test(key)) {
    throw new AppError(
      "invalid_input",
      "issue_key must look like ABC-123 (a project key, a dash and the issue number) or be a numeric issue id",
    );
  }
  return key;
}

const JIRA_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * Jira's timestamp ("2018-09-19T18:15:01.060-0700", offset without a colon, which `Date.parse`
 * does not take) as ISO-8601 UTC ("2018-09-20T01:15:01.060Z"). "+05:30" and "Z" forms work too.
 */
export function parseJiraTime(s: string): string {
  const m = JIRA_TIME.exec(typeof s === "string" ? s.trim() : "");
  const bad = () =>
    new AppError("upstream_unavailable", "Jira sent a timestamp sosvault cannot read");
  if (!m) throw bad();
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number);
  const second = Number(m[6] ?? "0");
  const ms = Number((m[7] ?? "0").padEnd(3, "0").slice(0, 3));
  let offsetMinutes = 0;
  if (m[8] !== "Z") {
    const digits = m[8].replace(":", "");
    const oh = Number(digits.slice(1, 3));
    const om = Number(digits.slice(3, 5));
    if (oh > 23 || om > 59) throw bad();
    offsetMinutes = (digits[0] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) throw bad();
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Date.UTC rolls 30 February over into March; a real timestamp round-trips.
  if (new Date(local).getUTCDate() !== day) throw bad();
  return new Date(local - offsetMinutes * 60_000).toISOString();
}

function createdOrEmpty(value: string | null | undefined): string {
  if (!value) return "";
  try {
    return parseJiraTime(value);
  } catch {
    return "";
  }
}

/** One entry of `fields.attachment`, and of the array POST attachments answers (A.3, A.5). */
export const jiraAttachmentSchema = z.object({
  // Jira sends a string; a number is tolerated.
  id: z.union([z.string().regex(/^[0-9A-Za-z_-]{1,64}$/), z.number().int().nonnegative()]),
  filename: z.string(),
  size: z.number().int().nonnegative(),
  mimeType: z.string().nullish(),
  created: z.string().nullish(),
  // Cloud authors carry accountId and displayName, no name.
  author: z.object({
    name: z.string().nullish(),
    accountId: z.string().nullish(),
    displayName: z.string().nullish(),
  }).nullish(),
}).transform((a): AttachmentInfo => ({
  id: String(a.id),
  filename: a.filename,
  size: a.size,
  mime_type: a.mimeType || "application/octet-stream",
  created: createdOrEmpty(a.created),
  author: a.author?.displayName || a.author?.name || a.author?.accountId || "",
}));

const issueSchema = z.object({
  key: z.string().regex(ISSUE_KEY),
  // DC sends null for fields it did not fill; a missing or null attachment field means none
  // (or none visible: attachments disabled).
  fields: z.object({ attachment: z.array(jiraAttachmentSchema).nullish() }).nullish(),
});

const metaSchema = z.object({
  enabled: z.boolean().nullish(),
  uploadLimit: z.number().nullish(),
});

/** The message for an issue Jira answers 404 for: missing, or not browsable by this account. */
export function issueNotFoundMessage(issueKey: string): string {
  return `Jira issue ${issueKey} does not exist, or your Jira account may not see it`;
}

/**
 * Lists the attachments of an issue. `issue_key` in the answer is Jira's canonical key, which
 * differs from the one asked for when the issue was moved to another project.
 */
export async function listIssueAttachments(
  client: JiraClient,
  baseUrl: string,
  pat: string | JiraAuth,
  issueKey: string,
  signal?: AbortSignal,
  /** Told where the caller's own token was found (and replaced by [redacted]) in the answer. */
  onSecret: (paths: string[]) => void = () => {},
): Promise<{ issue_key: string; attachments: AttachmentInfo[] }> {
  const key = normaliseIssueKey(issueKey);
  const auth = toAuth(baseUrl, pat);
  // Without fields=attachment some Jira versions leave the list empty (JIRA_FACTS A.3).
  const body = await client.getJson(
    auth.apiBase,
    `${auth.restPrefix}/issue/${encodeURIComponent(key)}?fields=attachment`,
    auth,
    {
      notFound: issueNotFoundMessage(key),
      scope: "read:jira-work",
      // Issue data: a file name quoting the token is redacted, never a reason to refuse the
      // issue forever (issue 14).
      onSecret,
    },
    signal,
  );
  const parsed = issueSchema.safeParse(body);
  if (!parsed.success) {
    throw new AppError("upstream_unavailable", "Jira answered GET issue with an unexpected body");
  }
  return { issue_key: parsed.data.key, attachments: parsed.data.fields?.attachment ?? [] };
}

/**
 * Jira's global attachment settings, for a pre-flight check before a large upload. They say
 * nothing about this user's permission to attach (JIRA_FACTS A.4). `uploadLimit` is bytes, or
 * null when Jira reports none.
 */
export async function attachmentSettings(
  client: JiraClient,
  baseUrl: string,
  pat: string | JiraAuth,
  signal?: AbortSignal,
): Promise<{ enabled: boolean; uploadLimit: number | null }> {
  const auth = toAuth(baseUrl, pat);
  const body = await client.getJson(auth.apiBase, `${auth.restPrefix}/attachment/meta`, auth, {
    notFound:
      "Jira has no attachment settings at this base URL: check the context path (for example https://host/jira)",
    scope: "read:jira-work",
  }, signal);
  const parsed = metaSchema.safeParse(body);
  if (!parsed.success) {
    throw new AppError(
      "upstream_unavailable",
      "Jira answered attachment/meta with an unexpected body",
    );
  }
  const limit = parsed.data.uploadLimit;
  return {
    // Unknown means "let Jira decide at upload time", where a refusal is a clear 403.
    enabled: parsed.data.enabled ?? true,
    uploadLimit: typeof limit === "number" && Number.isSafeInteger(limit) && limit > 0
      ? limit
      : null,
  };
}
