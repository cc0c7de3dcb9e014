/** Sosreport jobs in KV: owned by one user, surviving a restart (DESIGN.md section 6). */
import type { ErrorCode } from "../errors.ts";

export type JobStatus = "running" | "succeeded" | "failed";

export interface SosJob {
  job_id: string;
  user: string;
  host: string;
  /** The server process that runs it; a job whose process is gone is marked failed at start. */
  instance: string;
  status: JobStatus;
  progress: { done: number; total: number };
  archive_path: string | null;
  size: number | null;
  /** From sos's own output, when it printed one (sos ≥ 4.1 prints sha256, 4.0 md5). */
  checksum: { algorithm: "md5" | "sha256"; value: string } | null;
  error: { code: ErrorCode; message: string } | null;
  started_at: string;
  finished_at: string | null;
  /** The change approval it ran under, when the approval gate is on. */
  approval?: { change_request: string; approver: string; signature_fingerprint?: string };
}

/** The job as tools show it. */
export interface PublicJob {
  job_id: string;
  status: JobStatus;
  progress: { done: number; total: number };
  archive_path?: string;
  size?: number;
  sha256?: string;
  error?: { code: ErrorCode; message: string };
}

export function toPublicJob(j: SosJob): PublicJob {
  return {
    job_id: j.job_id,
    status: j.status,
    progress: j.progress,
    ...(j.archive_path ? { archive_path: j.archive_path } : {}),
    ...(j.size !== null ? { size: j.size } : {}),
    ...(j.checksum?.algorithm === "sha256" ? { sha256: j.checksum.value } : {}),
    ...(j.error ? { error: j.error } : {}),
  };
}

const JOB_TTL_MS = 30 * 86_400_000;

export const jobKeys = {
  job: (id: string) => ["sos_job", id] as const,
  all: () => ["sos_job"] as const,
  lock: (host: string) => ["sos_lock", host] as const,
  archive: (path: string) => ["sos_archive", path] as const,
};

export class JobStore {
  constructor(private kv: Deno.Kv) {}

  async get(id: string): Promise<SosJob | null> {
    return (await this.kv.get<SosJob>(jobKeys.job(id))).value;
  }

  /** Creates the job and takes the host's lock in one atomic step; false if the lock is held. */
  async start(job: SosJob): Promise<boolean> {
    const res = await this.kv.atomic()
      .check({ key: jobKeys.lock(job.host), versionstamp: null })
      .set(jobKeys.lock(job.host), {
        job_id: job.job_id,
        instance: job.instance,
        started_at: job.started_at,
      })
      .set(jobKeys.job(job.job_id), job, { expireIn: JOB_TTL_MS })
      .commit();
    return res.ok;
  }

  async holder(host: string): Promise<{ job_id: string; instance: string } | null> {
    return (await this.kv.get<{ job_id: string; instance: string }>(jobKeys.lock(host))).value;
  }

  async save(job: SosJob): Promise<void> {
    await this.kv.set(jobKeys.job(job.job_id), job, { expireIn: JOB_TTL_MS });
  }

  /** Records the end of a job and releases the host's lock (if this job still holds it). */
  async finish(job: SosJob): Promise<void> {
    const lock = await this.kv.get<{ job_id: string }>(jobKeys.lock(job.host));
    const op = this.kv.atomic().set(jobKeys.job(job.job_id), job, { expireIn: JOB_TTL_MS });
    if (lock.value?.job_id === job.job_id) op.check(lock).delete(jobKeys.lock(job.host));
    if (job.archive_path) {
      op.set(jobKeys.archive(job.archive_path), { job_id: job.job_id, user: job.user }, {
        expireIn: JOB_TTL_MS,
      });
    }
    if (!(await op.commit()).ok) await this.finish(job);
  }

  async archiveOwner(path: string): Promise<{ job_id: string; user: string } | null> {
    return (await this.kv.get<{ job_id: string; user: string }>(jobKeys.archive(path))).value;
  }

  async *running(): AsyncGenerator<SosJob> {
    for await (const e of this.kv.list<SosJob>({ prefix: jobKeys.all() })) {
      if (e.value.status === "running") yield e.value;
    }
  }
}
