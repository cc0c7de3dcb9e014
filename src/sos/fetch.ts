/**
 * fetch_sosreport: copies a finished archive out of /var/tmp into the caller's own artifact
 * folder (mode 0600), reading it directly or through `sudo -n cat` when it is root's, and
 * verifies it against the checksum file sos wrote beside it.
 */
import { createHash } from "node:crypto";
import { basename, dirname, normalize } from "node:path";
import { AppError } from "../errors.ts";
import type { RequestContext } from "../context.ts";
import { randomId } from "../ids.ts";
import type { EventLog } from "../security/events.ts";
import type { Logger } from "../log.ts";
import { ARCHIVE_NAME } from "./output.ts";
import type { SosService } from "./report.ts";
import { type CommandRunner, streamCommand } from "./runner.ts";

export interface FetchResult {
  artifact_ref: string;
  filename: string;
  size: number;
  sha256: string;
}

export interface FetchDeps {
  sos: SosService;
  events: EventLog;
  log: Logger;
  runner: CommandRunner;
  artifactDir: string;
  catPath: string;
  timeoutMs: number;
}

const ARCHIVE_DIR = "/var/tmp";

export class FetchService {
  constructor(private d: FetchDeps) {}

  async fetch(
    ctx: RequestContext,
    input: { job_id?: string; archive_path?: string },
  ): Promise<FetchResult> {
    const event = {
      type: "sos_fetch" as const,
      user: ctx.user,
      request_id: ctx.requestId,
      source: ctx.source,
    };
    return await this.d.events.around(event, async () => {
      const { path, expected } = await this.resolve(ctx, input);
      return await this.copy(ctx.user, path, expected);
    });
  }

  private async resolve(ctx: RequestContext, input: { job_id?: string; archive_path?: string }) {
    if ((input.job_id === undefined) === (input.archive_path === undefined)) {
      throw new AppError("invalid_input", "give exactly one of job_id or archive_path");
    }
    if (input.job_id !== undefined) {
      const job = await this.d.sos.ownedJob(ctx, input.job_id);
      if (job.status !== "succeeded" || !job.archive_path) {
        throw new AppError(
          "artifact_invalid",
          job.status === "running"
            ? "this sosreport is still running: poll sosreport_status until it has succeeded"
            : "this sosreport job did not produce an archive",
        );
      }
      return { path: checkArchivePath(job.archive_path), expected: job.checksum };
    }
    const path = checkArchivePath(input.archive_path!);
    // Security: an archive another user's job produced belongs to that user.
    const owner = await this.d.sos.jobs.archiveOwner(path);
    if (owner && owner.user !== ctx.user) {
      await this.d.events.denied(ctx);
      throw new AppError(
        "artifact_invalid",
        "there is no such sosreport archive for you in /var/tmp",
      );
    }
    return { path, expected: null };
  }

  private async copy(
    user: string,
    path: string,
    expected: { algorithm: "md5" | "sha256"; value: string } | null,
  ): Promise<FetchResult> {
    // Security: lstat, not stat — the archive itself must be a regular file, never a link.
    const info = await Deno.lstat(path).catch(() => null);
    if (!info) {
      throw new AppError(
        "artifact_invalid",
        "the archive does not exist (any more) in /var/tmp: generate a new sosreport",
      );
    }
    if (!info.isFile || info.isSymlink) {
      throw new AppError("artifact_invalid", "the archive is not a regular file");
    }

    const dir = `${this.d.artifactDir}/${user}`;
    await Deno.mkdir(this.d.artifactDir, { recursive: true, mode: 0o700 });
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.chmod(dir, 0o700);
    const name = basename(path);
    const final = `${dir}/${name}`;
    const partial = `${dir}/.${name}.${randomId("", 6)}.partial`;
    const sha256 = createHash("sha256");
    const md5 = createHash("md5");
    let size = 0;
    const file = await Deno.open(partial, { write: true, createNew: true, mode: 0o600 });
    const sink = new WritableStream<Uint8Array>({
      async write(chunk) {
        sha256.update(chunk);
        md5.update(chunk);
        size += chunk.byteLength;
        for (let off = 0; off < chunk.byteLength;) off += await file.write(chunk.subarray(off));
      },
    });
    try {
      await this.readInto(path, sink);
      file.close();
    } catch (err) {
      try {
        file.close();
      } catch { /* closed */ }
      await Deno.remove(partial).catch(() => {});
      throw err;
    }
    const digests = { sha256: sha256.digest("hex"), md5: md5.digest("hex") };
    const want = await this.checksumBeside(path) ?? expected;
    if (!want || digests[want.algorithm] !== want.value.toLowerCase()) {
      await Deno.remove(partial).catch(() => {});
      throw new AppError(
        "artifact_invalid",
        want
          ? "the copied archive does not match the checksum sos wrote beside it: generate a new sosreport"
          : "sos wrote no checksum beside this archive, so the copy cannot be verified",
      );
    }
    await Deno.rename(partial, final);
    return { artifact_ref: final, filename: name, size, sha256: digests.sha256 };
  }

  /** Reads directly when the service user may; otherwise through the narrow `sudo -n cat` rule. */
  private async readInto(path: string, sink: WritableStream<Uint8Array>) {
    let direct: Deno.FsFile | null = null;
    try {
      direct = await Deno.open(path, { read: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.PermissionDenied)) {
        throw new AppError("artifact_invalid", "the archive cannot be read");
      }
    }
    if (direct) return await direct.readable.pipeTo(sink);
    const r = await streamCommand(["sudo", "-n", this.d.catPath, path], sink, this.d.timeoutMs);
    if (r.code !== 0) {
      this.d.log.warn("sudo_cat_failed", {
        code: r.code,
        stderr: r.stderr,
        spawn_error: r.spawnError,
      });
      throw new AppError(
        "sudo_not_configured",
        "the archive belongs to root and sudo refused `cat` for the sosvault service user: the operator must add the rule printed by `sosvault doctor`",
      );
    }
  }

  private async checksumBeside(
    path: string,
  ): Promise<{ algorithm: "md5" | "sha256"; value: string } | null> {
    for (const algorithm of ["sha256", "md5"] as const) {
      const file = `${path}.${algorithm}`;
      let text: string | null = null;
      try {
        text = await Deno.readTextFile(file);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue;
        const chunks: Uint8Array[] = [];
        const r = await streamCommand(
          ["sudo", "-n", this.d.catPath, file],
          new WritableStream({ write: (c) => void chunks.push(c) }),
          15_000,
        );
        if (r.code === 0) {
          text = new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
        }
      }
      const value = text?.trim().split(/\s+/)[0] ?? "";
      if (/^[0-9a-fA-F]+$/.test(value) && value.length === (algorithm === "sha256" ? 64 : 32)) {
        return { algorithm, value };
      }
    }
    return null;
  }
}

/**
 * Security: only a file directly in /var/tmp with sos's own name for our label — no other
 * directory, no traversal, no other name — so fetch cannot be aimed at anything else.
 */
export function checkArchivePath(input: string): string {
  if (typeof input !== "string" || input.includes("\0") || !input.startsWith("/")) {
    throw new AppError(
      "invalid_input",
      "archive_path must be the absolute path sos printed, in /var/tmp",
    );
  }
  const path = normalize(input);
  if (path !== input || dirname(path) !== ARCHIVE_DIR) {
    throw new AppError(
      "invalid_input",
      "archive_path must be directly in /var/tmp, with no '..' or other directory",
    );
  }
  if (!ARCHIVE_NAME.test(basename(path))) {
    throw new AppError(
      "invalid_input",
      "archive_path must be named sosreport-<host>-linux-mcp-sos-<date>-<id>.tar.xz",
    );
  }
  return path;
}
