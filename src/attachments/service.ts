/**
 * Listing and attaching files on Jira issues, on the caller's own connection. Checks run in the
 * order that keeps bytes home: the artifact first, then the connection, then Jira's own upload
 * limit, and only then the streamed upload.
 */
import { AppError } from "../errors.ts";
import type { RequestContext } from "../context.ts";
import type { ConnectionService } from "../connections/service.ts";
import { codeOf } from "../connections/service.ts";
import type { JiraClient } from "../jira/client.ts";
import {
  type AttachmentInfo,
  attachmentSettings,
  listIssueAttachments,
  normaliseIssueKey,
} from "../jira/attachments.ts";
import { uploadAttachment, type Uploader } from "../jira/upload.ts";
import type { EventLog } from "../security/events.ts";
import { KnownSecrets } from "../security/known_secrets.ts";
import { type ArtifactPolicy, attachmentName, resolveArtifact } from "./artifacts.ts";

export interface AttachmentServiceDeps {
  connections: ConnectionService;
  jira: JiraClient;
  uploader: Uploader;
  events: EventLog;
  policy: ArtifactPolicy;
  idleTimeoutMs: number;
}

export interface AttachInput {
  connection_id: string;
  issue_key: string;
  artifact_ref: string;
  filename?: string;
}

export interface AttachResult {
  issue_key: string;
  attachment: Omit<AttachmentInfo, "author">;
  replaced_duplicates: false;
  existing_same_name: string[];
  warnings?: ResultWarning[];
}

/** A notice beside a successful result (DESIGN.md has no shape for it; see README). */
export interface ResultWarning {
  code: "secret_in_upstream";
  message: string;
}

/** What the user must hear when Jira's answer quoted their own token. */
export const SECRET_IN_UPSTREAM_WARNING: ResultWarning = {
  code: "secret_in_upstream",
  message:
    "Jira's answer contained your own Jira token (in an attachment name or other issue data), so it is exposed to everyone who can see that issue. sosvault replaced it with [redacted] here. Revoke that token in Jira now, create a new one, reconnect with jira_connect, and remove the item that carries it from the issue.",
};

export type Progress = (done: number, total: number, message?: string) => Promise<void> | void;

export class AttachmentService {
  constructor(private d: AttachmentServiceDeps) {}

  async list(ctx: RequestContext, connectionId: string, issueKey: string) {
    const key = normaliseIssueKey(issueKey);
    const event = {
      type: "list" as const,
      user: ctx.user,
      connection_id: connectionId,
      issue_key: key,
      request_id: ctx.requestId,
      source: ctx.source,
    };
    return await this.d.events.around(event, async () => {
      const cred = await this.d.connections.use(ctx, connectionId, "list");
      try {
        refuseOwnSecret(cred.auth.secrets, [key]);
        let exposed = false;
        const listing = await listIssueAttachments(
          this.d.jira,
          cred.auth.apiBase,
          cred.auth,
          key,
          undefined,
          () => exposed = true,
        );
        if (!exposed) return listing;
        await this.recordExposed(ctx, connectionId, listing.issue_key);
        return { ...listing, warnings: [SECRET_IN_UPSTREAM_WARNING] };
      } finally {
        cred.release();
      }
    });
  }

  /**
   * Security: Jira's answer quoted the caller's own token. The event names the connection and
   * the issue, never the token or the poisoned value; the answer already carries [redacted].
   */
  private async recordExposed(ctx: RequestContext, connectionId: string, issueKey: string) {
    await this.d.events.record({
      type: "secret_in_upstream",
      outcome: "failure",
      user: ctx.user,
      connection_id: connectionId,
      issue_key: issueKey,
      request_id: ctx.requestId,
      source: ctx.source,
    });
  }

  async attach(
    ctx: RequestContext,
    input: AttachInput,
    progress: Progress,
    signal?: AbortSignal,
  ): Promise<AttachResult> {
    const key = normaliseIssueKey(input.issue_key);
    const event = {
      type: "attach" as const,
      user: ctx.user,
      connection_id: input.connection_id,
      issue_key: key,
      request_id: ctx.requestId,
      source: ctx.source,
    };
    try {
      const artifact = await resolveArtifact(input.artifact_ref, ctx.user, this.d.policy);
      const filename = attachmentName(input.filename, artifact.name);
      const cred = await this.d.connections.use(ctx, input.connection_id, "attach");
      refuseOwnSecret(cred.auth.secrets, [filename, key]);
      const base = cred.auth.apiBase;
      // Security: tracked from the moment the PAT is decrypted, so a revoke (here or on another
      // instance) also stops the pre-flight GETs, and no request starts after it was answered.
      const use = this.d.connections.track(cred.connection, signal);
      let uploaded: AttachmentInfo[];
      let existing: { issue_key: string; attachments: AttachmentInfo[] };
      let sameName: string[];
      // The pre-flight listing is redacted like any listing; the user hears of it here too.
      let exposed = false;
      try {
        await use.ready;
        use.signal.throwIfAborted();
        const settings = await attachmentSettings(this.d.jira, base, cred.auth, use.signal);
        if (!settings.enabled) {
          throw new AppError(
            "forbidden",
            "attachments are disabled on this Jira: ask its administrator",
          );
        }
        if (settings.uploadLimit !== null && artifact.size > settings.uploadLimit) {
          throw new AppError(
            "payload_too_large",
            `the file is ${artifact.size} bytes, above this Jira's attachment limit of ${settings.uploadLimit} bytes: ask the Jira administrator, or split the file`,
          );
        }
        existing = await listIssueAttachments(
          this.d.jira,
          base,
          cred.auth,
          key,
          use.signal,
          () => exposed = true,
        );
        sameName = existing.attachments.filter((a) => a.filename === filename).map((a) => a.id);
        await progress(0, artifact.size, `uploading ${filename}`);
        uploaded = await uploadAttachment(this.d.uploader, {
          baseUrl: base,
          issueKey: existing.issue_key,
          pat: cred.pat,
          auth: cred.auth,
          filePath: artifact.path,
          filename,
          size: artifact.size,
          signal: use.signal,
          idleTimeoutMs: this.d.idleTimeoutMs,
          onProgress: (sent, total) => void progress(sent, total),
          onSecret: () => exposed = true,
        });
      } catch (err) {
        throw use.signal.aborted && use.signal.reason instanceof AppError ? use.signal.reason : err;
      } finally {
        use.release();
        cred.release();
      }
      const first = uploaded[0];
      // Security: what Jira says it stored goes to the model. It was redacted where it was read
      // (onSecret); this is the backstop should a form of the token have slipped through.
      const answer = JSON.stringify(uploaded);
      if (cred.auth.secrets.some((s) => answer.includes(s))) {
        throw new AppError(
          "upstream_unavailable",
          "Jira's answer contained the personal access token itself, so sosvault did not use it: tell the Jira administrator",
        );
      }
      if (!first) {
        throw new AppError(
          "upstream_unavailable",
          "Jira accepted the upload but returned no attachment",
        );
      }
      await progress(artifact.size, artifact.size, "done");
      await this.d.events.record({ ...event, issue_key: existing.issue_key, outcome: "success" });
      if (exposed) await this.recordExposed(ctx, input.connection_id, existing.issue_key);
      return {
        issue_key: existing.issue_key,
        attachment: {
          id: first.id,
          filename: first.filename,
          size: first.size,
          mime_type: first.mime_type,
          created: first.created,
        },
        replaced_duplicates: false,
        existing_same_name: sameName,
        ...(exposed ? { warnings: [SECRET_IN_UPSTREAM_WARNING] } : {}),
      };
    } catch (err) {
      await this.d.events.record({ ...event, outcome: "failure", error_code: codeOf(err) });
      throw err;
    }
  }
}

/**
 * Security: every string sent to Jira on a connection (file name, issue key) is checked against
 * that connection's own secrets before a byte is sent, whatever path it came by (MCP or HTTP);
 * the value is never echoed.
 */
function refuseOwnSecret(secrets: readonly string[], outgoing: readonly string[]): void {
  const known = KnownSecrets.forSecrets(secrets);
  for (const text of outgoing) {
    const r = known.search(text);
    if (r.found || r.exhausted) {
      throw new AppError(
        "secret_rejected",
        "The file name or issue key contains the personal access token of this connection, so nothing was sent to Jira. That token has now been seen: revoke it in Jira, and connect again with a new one.",
      );
    }
  }
}
