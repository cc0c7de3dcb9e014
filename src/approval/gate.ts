/**
 * The change-approval gate before a privileged action (generate_sosreport). When the policy is
 * on, the caller names an approved change request (CR) and the connection to read it with; the
 * gate checks it in Jira with that connection and refuses with `approval_required`, naming
 * every requirement that is not met.
 */
import { AppError } from "../errors.ts";
import type { ApprovalConfig } from "../config.ts";
import type { Clock } from "../clock.ts";
import type { RequestContext } from "../context.ts";
import type { ConnectionService } from "../connections/service.ts";
import { kvKeys } from "../kv_keys.ts";
import { normaliseIssueKey, parseJiraTime } from "../jira/attachments.ts";
import type { ApprovalJira, ChangeRequest } from "./jira_cr.ts";
import type { Deployment } from "../jira/auth.ts";
import {
  signatureFingerprint,
  type SignedApproval,
  type TrustStore,
  verifySignedApproval,
} from "./signature.ts";

/** What a passed gate hands to the action and its audit trail. */
export interface Approval {
  change_request: string;
  approver: string;
  signature_fingerprint: string | null;
  /** When the signature stops being valid (its reuse marker expires then). */
  signature_expires_at: string | null;
}

export interface ApprovalInput {
  change_request?: string;
  connection_id?: string;
}

export interface ApprovalGateDeps {
  config: ApprovalConfig;
  connections: ConnectionService;
  /** The reads per deployment: Data Center (REST v2, user names), Cloud (REST v3, accountIds). */
  jira: Record<Deployment, ApprovalJira>;
  kv: Deno.Kv;
  clock: Clock;
  host: string;
  trust: TrustStore | null;
}

/** A CR status a signed webhook reported; newer than any Jira answer we had. */
export interface CachedCrStatus {
  status: string;
  at: string;
}

export const CR_CACHE_TTL_MS = 24 * 3_600_000;
/** Signed statements may be dated this far in the future (clock skew between hosts). */
const SKEW_MS = 5 * 60_000;

export class ApprovalGate {
  constructor(private d: ApprovalGateDeps) {}

  get enabled(): boolean {
    return this.d.config.mode !== "off";
  }

  /** Null when the policy is off; else the approval, or `approval_required`. */
  async check(ctx: RequestContext, input: ApprovalInput): Promise<Approval | null> {
    const release: Array<() => void> = [];
    try {
      return await this.#check(ctx, input, release);
    } finally {
      release.forEach((r) => r());
    }
  }

  async #check(
    ctx: RequestContext,
    input: ApprovalInput,
    release: Array<() => void>,
  ): Promise<Approval | null> {
    const c = this.d.config;
    if (c.mode === "off") return null;
    if (!input.change_request || !input.connection_id) {
      const missing = [
        !input.change_request && "change_request (the approved CR's key; ask the user for it)",
        !input.connection_id && "connection_id (the Jira connection to read the CR with)",
      ].filter(Boolean);
      throw refuse(
        `this host requires an approved change request: missing ${missing.join(" and ")}`,
      );
    }
    let key: string;
    try {
      key = normaliseIssueKey(input.change_request);
    } catch {
      throw refuse("change_request must be a Jira issue key like CR-1042");
    }
    const cred = await this.d.connections.use(ctx, input.connection_id, "approval");
    release.push(cred.release);
    const extra = [
      c.hostField,
      ...(c.windowFields ?? []),
      c.signatureField,
    ].filter((f): f is string => !!f && f !== "labels");
    // The connection decides the dialect: its deployment picks the reads, and its auth carries
    // the route (base URL or the Cloud gateway) and the scheme (Bearer PAT or Basic).
    const jira = this.d.jira[cred.auth.deployment];
    let cr: ChangeRequest;
    try {
      cr = await jira.changeRequest(
        cred.auth,
        key,
        c.status,
        [...new Set(extra)],
      );
    } catch (err) {
      if (err instanceof AppError && err.code === "not_found") {
        throw refuse(`${key} does not exist in Jira, or your Jira account cannot see it`);
      }
      throw err;
    }
    const problems: string[] = [];
    const now = this.d.clock();
    if (cr.project !== c.project) {
      problems.push(`${cr.key} is in project ${cr.project}, not the change project ${c.project}`);
    }
    const cached = (await this.d.kv.get<CachedCrStatus>(kvKeys.approvalCr(cr.key))).value;
    if (cr.status !== c.status) {
      problems.push(`its status is ${cr.status}, not ${c.status}`);
    } else if (cached && cached.status !== c.status) {
      problems.push(`Jira reported it moved to ${cached.status} at ${cached.at}`);
    }
    if (!cr.approver) {
      problems.push(`no one moved it into ${c.status} (its history shows no such transition)`);
    } else {
      // Cloud's identity is an opaque accountId: say whose it is, by display name, too.
      const who = cred.auth.deployment === "cloud"
        ? `${cr.approver.display_name} (accountId ${cr.approver.name})`
        : cr.approver.name;
      // Security: the caller's own Jira identity is the one stored at connect from /myself:
      // the user name on Data Center, the accountId on Cloud (never a display name or e-mail).
      if (!c.allowSelf && cr.approver.name === cred.connection.jira_user.name) {
        problems.push(`it was approved by you (${who}); someone else must approve it`);
      }
      const holds = await jira.holdsRole(cred.auth, c.project, c.role, cr.approver.name);
      if (!holds) {
        problems.push(`its approver ${who} does not hold the role ${c.role}`);
      }
    }
    if (!namesHost(cr, c.hostField, this.d.host)) {
      problems.push(
        `it does not name this host ${this.d.host} in ${c.hostField ?? "its labels"}`,
      );
    }
    if (c.windowFields) problems.push(...windowProblems(cr, c.windowFields, now));

    let signature: SignedApproval | null = null;
    if (c.mode === "cr+signature") {
      const result = this.checkSignature(cr, now);
      if (typeof result === "string") problems.push(result);
      else signature = result;
    }
    if (problems.length > 0) {
      throw refuse(`change request ${cr.key} is not a valid approval: ${problems.join("; ")}`);
    }
    return {
      change_request: cr.key,
      approver: cr.approver!.name,
      signature_fingerprint: signature ? signatureFingerprint(signature) : null,
      signature_expires_at: signature?.statement.expires_at ?? null,
    };
  }

  /**
   * Marks the approval's signature used, just before the action starts, so one signature
   * authorises one run. Security: atomic, so two concurrent calls cannot both use it.
   */
  async claim(approval: Approval): Promise<void> {
    if (!approval.signature_fingerprint) return;
    const key = kvKeys.approvalSignature(approval.signature_fingerprint);
    const until = Date.parse(approval.signature_expires_at ?? "") - this.d.clock().getTime();
    const res = await this.d.kv.atomic().check({ key, versionstamp: null }).set(key, {
      change_request: approval.change_request,
      used_at: this.d.clock().toISOString(),
    }, { expireIn: Math.max(until, 0) + SKEW_MS }).commit();
    if (!res.ok) throw refuse(reusedMessage(approval.change_request));
  }

  private checkSignature(cr: ChangeRequest, now: Date): SignedApproval | string {
    const c = this.d.config;
    const raw = cr.fields[c.signatureField!];
    if (raw === null || raw === undefined || raw === "") {
      return `its signature field ${c.signatureField} is empty: the approver must paste the output of \`sosvault approval sign\``;
    }
    if (!this.d.trust) return "no trusted approver certificates are configured";
    const v = verifySignedApproval(raw, this.d.trust, now);
    if (!v.ok) {
      return {
        malformed: "its signature is not a sosvault approval signature JSON",
        untrusted: `its signature was made with a certificate not in SOSVAULT_APPROVAL_TRUST_DIR`,
        certificate_expired: "its signature's certificate is not valid now",
        bad_signature: "its signature does not verify (the statement was changed after signing)",
      }[v.problem];
    }
    const s = v.approval.statement;
    const mismatch = [
      s.cr !== cr.key && `CR ${s.cr}`,
      s.status !== c.status && `status ${s.status}`,
      cr.approver && s.approver !== cr.approver.name && `approver ${s.approver}`,
      s.host !== this.d.host && `host ${s.host}`,
    ].filter(Boolean);
    if (mismatch.length > 0) {
      return `its signature is for another approval (${mismatch.join(", ")})`;
    }
    if (Date.parse(s.expires_at) <= now.getTime()) {
      return `its signature expired at ${s.expires_at}`;
    }
    if (Date.parse(s.signed_at) > now.getTime() + SKEW_MS) {
      return `its signature is dated in the future (${s.signed_at})`;
    }
    return v.approval;
  }
}

function reusedMessage(key: string): string {
  return `change request ${key} is not a valid approval: its signature was already used for a run; the approver must sign again`;
}

function refuse(message: string): AppError {
  return new AppError("approval_required", message);
}

/** Security: the host binding stops one approval from being replayed on another host. */
function namesHost(cr: ChangeRequest, field: string | null, host: string): boolean {
  const want = host.toLowerCase();
  const values: unknown[] = field && field !== "labels" ? [cr.fields[field]].flat() : cr.labels;
  return values.some((v) => {
    const text = typeof v === "string"
      ? v
      : v && typeof v === "object" && "value" in v
      ? String((v as { value: unknown }).value)
      : "";
    return text.split(/[\s,]+/).some((h) => h.toLowerCase() === want);
  });
}

function windowProblems(cr: ChangeRequest, [startF, endF]: [string, string], now: Date): string[] {
  const read = (f: string): number | null | "bad" => {
    const v = cr.fields[f];
    if (v === null || v === undefined || v === "") return null;
    if (typeof v !== "string") return "bad";
    try {
      return Date.parse(parseJiraTime(v));
    } catch {
      const d = Date.parse(v);
      return Number.isNaN(d) ? "bad" : d;
    }
  };
  const start = read(startF), end = read(endF);
  const out: string[] = [];
  if (start === "bad" || end === "bad") return ["its planned start or end is not a time"];
  if (start !== null && now.getTime() < start) {
    out.push(`its planned start ${new Date(start).toISOString()} has not come yet`);
  }
  if (end !== null && now.getTime() > end) {
    out.push(`its planned end ${new Date(end).toISOString()} has passed`);
  }
  return out;
}
