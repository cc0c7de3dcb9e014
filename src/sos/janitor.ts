/** Deletes fetched copies older than SOSVAULT_ARTIFACT_TTL_SECONDS from the artifact dir. */
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";

export async function sweepArtifacts(
  artifactDir: string,
  ttlMs: number,
  clock: Clock,
  log: Logger,
): Promise<number> {
  const cutoff = clock().getTime() - ttlMs;
  let removed = 0;
  let users: Deno.DirEntry[];
  try {
    users = await Array.fromAsync(Deno.readDir(artifactDir));
  } catch {
    return 0;
  }
  for (const u of users) {
    if (!u.isDirectory) continue;
    for await (const f of Deno.readDir(`${artifactDir}/${u.name}`)) {
      if (!f.isFile) continue;
      const path = `${artifactDir}/${u.name}/${f.name}`;
      const info = await Deno.lstat(path).catch(() => null);
      if (info?.mtime && info.mtime.getTime() < cutoff) {
        await Deno.remove(path).catch(() => {});
        removed++;
      }
    }
  }
  if (removed) log.info("artifacts_swept", { removed });
  return removed;
}
