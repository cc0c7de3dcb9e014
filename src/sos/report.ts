/**
 * Generating sosreports: consent first, then `sudo -n <sos> report …` with exactly the argv the
 * sudoers rule allows, one run per host, progress from sos's own "Starting N/M" lines, the
 * archive path from sos's own final message, TERM then KILL on timeout.
 */
import { AppError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { RequestContext } from "../context.ts";
import { randomId } from "../ids.ts";
import type { Logger } from "../log.ts";
import type { EventLog } from "../security/events.ts";
import { codeOf } from "../connections/service.ts";
import { ConsentService } from "./consent.ts";
import { JobStore, type PublicJob, type SosJob, toPublicJob } from "./jobs.ts";
import type { CommandRunner } from "./runner.ts";
import { ARCHIVE_NAME, parseArchivePath, parseChecksum, parseProgress } from "./output.ts";
import { sosArgv } from "./sudoers.ts";
import type { Approval, ApprovalGate, ApprovalInput } from "../approval/gate.ts";

export interface SosServiceDeps {
  kv: Deno.Kv;
  clock: Clock;
  log: Logger;
  events: EventLog;
  consents: ConsentService;
  /** The change-approval gate; its check is a no-op when the policy is off. */
  approval: ApprovalGate;
  runner: CommandRunner;
  /** Absolute path of sos, resolved once at start; null when sos is not installed. */
  sosPath: string | null;
  host: string;
  timeoutMs: number;
  /** How long generate_sosreport waits before answering `running` (about 25 s). */
  waitMs: number;
}

export interface GenerateHooks {
  progress(done: number, total: number, message?: string): Promise<void> | void;
  /** Asks the human through the client (form elicitation): true/false, or null when unsupported. */
  confirm(message: string): Promise<boolean | null>;
}

const ARCHIVE_DIR = "/var/tmp";

export class SosService {
  readonly #jobs: JobStore;
  readonly #instance = randomId("inst_", 9);
  readonly #live = new Map<
    string,
    {
      job: SosJob;
      done: Promise<void>;
      listeners: Set<(j: SosJob) => void>;
      stop: AbortController;
    }
  >();

  constructor(private d: SosServiceDeps) {
    this.#jobs = new JobStore(d.kv);
  }

  get jobs(): JobStore {
    return this.#jobs;
  }

  /** A job that was running when its server died can never finish: mark it failed. */
  async recoverInterrupted(): Promise<number> {
    let n = 0;
    for await (const job of this.#jobs.running()) {
      if (job.host !== this.d.host || job.instance === this.#instance) continue;
      await this.#jobs.finish({
        ...job,
        status: "failed",
        error: {
          code: "unexpected_error",
          message: "The sosvault server restarted while this sosreport was running: run it again",
        },
        finished_at: this.d.clock().toISOString(),
      });
      n++;
    }
    const lock = await this.#jobs.holder(this.d.host);
    if (lock && lock.instance !== this.#instance) await this.d.kv.delete(["sos_lock", this.d.host]);
    return n;
  }

  async generate(
    ctx: RequestContext,
    input: { consent_token?: string } & ApprovalInput,
    hooks: GenerateHooks,
  ): Promise<PublicJob> {
    const event = {
      type: "sos_generate" as const,
      user: ctx.user,
      request_id: ctx.requestId,
      source: ctx.source,
      connection_id: input.connection_id,
      change_request: safeKey(input.change_request),
    };
    try {
      if (!this.d.sosPath) {
        throw new AppError(
          "sos_unavailable",
          "sos is not installed on this host: the operator must install it (Debian/Ubuntu: apt install sosreport; RHEL/Fedora: dnf install sos), then restart sosvault",
        );
      }
      // Operator problems first, so a human is not asked to consent to a run that cannot start.
      const argv = ["sudo", "-n", ...sosArgv(this.d.sosPath)];
      await this.checkSudo(argv);
      // Before consent: a human is not asked to agree to a run the organisation has not approved.
      const approval = await this.d.approval.check(ctx, input);
      if (approval) Object.assign(event, auditOf(approval));
      await this.obtainConsent(ctx, input, hooks);
      if (approval) await this.d.approval.claim(approval);
      const job: SosJob = {
        job_id: randomId("job_", 18),
        user: ctx.user,
        host: this.d.host,
        instance: this.#instance,
        status: "running",
        progress: { done: 0, total: 0 },
        archive_path: null,
        size: null,
        checksum: null,
        error: null,
        started_at: this.d.clock().toISOString(),
        finished_at: null,
        ...(approval ? { approval: auditOf(approval) } : {}),
      };
      if (!await this.#jobs.start(job)) {
        const holder = await this.#jobs.holder(this.d.host);
        throw new AppError(
          "conflict",
          `A sosreport is already running on this host${
            holder && (await this.#jobs.get(holder.job_id))?.user === ctx.user
              ? ` (your job ${holder.job_id}: poll it with sosreport_status)`
              : ""
          }; only one runs at a time. Try again when it has finished.`,
        );
      }
      const listeners = new Set<(j: SosJob) => void>();
      const stop = new AbortController();
      const done = this.run(job, argv, listeners, stop.signal);
      this.#live.set(job.job_id, { job, done, listeners, stop });
      const onUpdate = (j: SosJob) =>
        void hooks.progress(j.progress.done, j.progress.total, "sos report");
      listeners.add(onUpdate);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([done, new Promise((r) => (timer = setTimeout(r, this.d.waitMs)))]);
      clearTimeout(timer);
      listeners.delete(onUpdate);
      return toPublicJob(this.#live.get(job.job_id)?.job ?? (await this.#jobs.get(job.job_id))!);
    } catch (err) {
      await this.d.events.record({ ...event, outcome: "failure", error_code: codeOf(err) });
      throw err;
    }
  }

  async status(ctx: RequestContext, jobId: string): Promise<PublicJob> {
    const live = this.#live.get(jobId)?.job;
    const job = live ??
      (/^job_[A-Za-z0-9_-]{20,40}$/.test(jobId) ? await this.#jobs.get(jobId) : null);
    if (!/^job_[A-Za-z0-9_-]{20,40}$/.test(jobId)) {
      throw new AppError(
        "invalid_input",
        "job_id must look like job_… (the id generate_sosreport returned)",
      );
    }
    if (!job || job.user !== ctx.user) {
      await this.d.events.denied(ctx);
      throw new AppError("not_found", "No sosreport job with this id exists for you");
    }
    return toPublicJob(job);
  }

  /** The owner's job, for fetch_sosreport. */
  async ownedJob(ctx: RequestContext, jobId: string): Promise<SosJob> {
    await this.status(ctx, jobId);
    return this.#live.get(jobId)?.job ?? (await this.#jobs.get(jobId))!;
  }

  /**
   * Stops this process's runs started under a change request (it left its approved status).
   * Returns how many were stopped.
   */
  stopUnder(changeRequest: string, reason: string): number {
    let n = 0;
    for (const live of this.#live.values()) {
      if (live.job.approval?.change_request !== changeRequest) continue;
      live.stop.abort(reason);
      n++;
    }
    return n;
  }

  /** Waits for every run this process started (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.#live.values()].map((l) => l.done));
  }

  private async obtainConsent(
    ctx: RequestContext,
    input: { consent_token?: string },
    hooks: GenerateHooks,
  ) {
    if (input.consent_token !== undefined) {
      return await this.d.consents.consume(ctx, input.consent_token);
    }
    const answer = await hooks.confirm(
      `Run "sos report" as root on ${this.d.host} now? It collects system configuration, logs and command output into an archive in /var/tmp (this can take several minutes). Nothing leaves the host until you attach it to a Jira issue.`,
    );
    if (answer === null) throw ConsentService.missing();
    if (!answer) throw ConsentService.declined();
    await this.d.events.record({
      type: "consent",
      outcome: "success",
      user: ctx.user,
      request_id: ctx.requestId,
      source: ctx.source,
    });
  }

  /** Fails fast, before taking the lock, when sudo would ask for a password or refuse. */
  private async checkSudo(argv: string[]) {
    const probe = await this.d.runner(["sudo", "-n", "-l", ...argv.slice(2)], {
      timeoutMs: 15_000,
    });
    if (probe.spawnError === "not_found") {
      throw new AppError(
        "sudo_not_configured",
        "sudo is not installed on this host: the operator must install it and add the rule printed by `sosvault doctor`",
      );
    }
    if (probe.code !== 0) {
      throw new AppError(
        "sudo_not_configured",
        `sudo refuses to run sos for the sosvault service user without a password: the operator must add the rule printed by \`sosvault doctor\` to /etc/sudoers.d/sosvault (it allows exactly: sudo -n ${
          argv.slice(2).join(" ")
        })`,
      );
    }
  }

  private async run(
    job: SosJob,
    argv: string[],
    listeners: Set<(j: SosJob) => void>,
    stop: AbortSignal,
  ): Promise<void> {
    let lastSave = 0;
    const update = (patch: Partial<SosJob>) => {
      job = { ...job, ...patch };
      const live = this.#live.get(job.job_id);
      if (live) live.job = job;
      for (const l of listeners) l(job);
    };
    try {
      const result = await this.d.runner(argv, {
        timeoutMs: this.d.timeoutMs,
        signal: stop,
        onLine: (line) => {
          const p = parseProgress(line);
          if (!p || p.done < job.progress.done) return;
          update({ progress: p });
          const now = Date.now();
          if (now - lastSave > 2000) {
            lastSave = now;
            void this.#jobs.save(job).catch(() => {});
          }
        },
      });
      const finished_at = this.d.clock().toISOString();
      if (result.stopped) {
        update({
          status: "failed",
          finished_at,
          error: {
            code: "approval_required",
            message: `sos was stopped: ${String(stop.reason)}`,
          },
        });
      } else if (result.timedOut) {
        update({
          status: "failed",
          finished_at,
          error: {
            code: "unexpected_error",
            message: `sos did not finish within ${
              Math.round(this.d.timeoutMs / 1000)
            } s (SOSVAULT_SOS_TIMEOUT_SECONDS) and was stopped`,
          },
        });
      } else if (result.code !== 0) {
        const sudoRefused = /sudo: .*(password|not allowed|terminal)|is not allowed to execute/i
          .test(result.output);
        update({
          status: "failed",
          finished_at,
          error: sudoRefused
            ? {
              code: "sudo_not_configured",
              message:
                "sudo refused to run sos: the operator must add the rule printed by `sosvault doctor`",
            }
            : {
              code: "unexpected_error",
              message: `sos exited with ${result.signal ?? `code ${result.code}`}: ${
                lastLine(result.output)
              }`,
            },
        });
      } else {
        const path = parseArchivePath(result.output);
        if (
          !path || !path.startsWith(`${ARCHIVE_DIR}/`) ||
          !ARCHIVE_NAME.test(path.slice(ARCHIVE_DIR.length + 1))
        ) {
          update({
            status: "failed",
            finished_at,
            error: {
              code: "unexpected_error",
              message: "sos finished but its output named no archive in /var/tmp",
            },
          });
        } else {
          const info = await Deno.lstat(path).catch(() => null);
          update({
            status: "succeeded",
            finished_at,
            archive_path: path,
            size: info?.isFile ? info.size : null,
            checksum: parseChecksum(result.output),
            progress: { done: job.progress.total || 1, total: job.progress.total || 1 },
          });
        }
      }
      if (job.status === "failed") {
        this.d.log.warn("sos_failed", {
          job_id: job.job_id,
          error: job.error,
          output_tail: result.output.slice(-2000),
        });
      }
    } catch (err) {
      update({
        status: "failed",
        finished_at: this.d.clock().toISOString(),
        error: { code: "unexpected_error", message: "sos could not be run" },
      });
      this.d.log.error("sos_run_error", { job_id: job.job_id, error: err });
    } finally {
      await this.#jobs.finish(job);
      this.#live.delete(job.job_id);
      await this.d.events.record({
        type: "sos_generate",
        outcome: job.status === "succeeded" ? "success" : "failure",
        user: job.user,
        source: "mcp",
        error_code: job.error?.code,
        ...job.approval,
      });
    }
  }
}

function lastLine(output: string): string {
  const lines = output.trim().split(/\r?\n/).filter((l) => l.trim());
  return (lines.at(-1) ?? "no output").slice(0, 300);
}

function auditOf(a: Approval): NonNullable<SosJob["approval"]> {
  return {
    change_request: a.change_request,
    approver: a.approver,
    ...(a.signature_fingerprint ? { signature_fingerprint: a.signature_fingerprint } : {}),
  };
}

/** The CR key for the audit trail, only when it has an issue key's shape (never raw input). */
function safeKey(key: string | undefined): string | undefined {
  return key && /^[A-Za-z][A-Za-z0-9_]{1,254}-[1-9][0-9]{0,17}$/.test(key)
    ? key.toUpperCase()
    : undefined;
}
