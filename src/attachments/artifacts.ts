/**
 * Which local files may be attached (DESIGN.md section 6): a regular, non-empty file inside one
 * of SOSVAULT_ARTIFACT_ROOTS — and inside the artifact dir, only the caller's own subfolder.
 */
import { basename, isAbsolute, normalize, sep } from "node:path";
import { AppError } from "../errors.ts";

export interface ArtifactPolicy {
  artifactDir: string;
  roots: readonly string[];
  maxBytes: number;
}

export interface Artifact {
  path: string;
  name: string;
  size: number;
}

const OUTSIDE =
  "artifact_ref is outside the directories sosvault may attach from: use the artifact_ref returned by fetch_sosreport, or a file under SOSVAULT_ARTIFACT_ROOTS";

function inside(path: string, dir: string): boolean {
  const d = dir.endsWith(sep) ? dir : dir + sep;
  return path.startsWith(d);
}

async function realOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.realPath(path);
  } catch {
    return null;
  }
}

export async function resolveArtifact(
  ref: string,
  user: string,
  policy: ArtifactPolicy,
): Promise<Artifact> {
  if (!isAbsolute(ref) || ref.includes("\0")) {
    throw new AppError("artifact_invalid", "artifact_ref must be an absolute path to a local file");
  }
  const lexical = normalize(ref);
  const userDir = normalize(`${policy.artifactDir}/${user}`);
  const allowed = (p: string, dirs: { roots: string[]; artifactDir: string; userDir: string }) =>
    dirs.roots.some((r) => inside(p, r)) &&
    (!inside(p, dirs.artifactDir) || inside(p, dirs.userDir));

  // Security: a lexical check first, so paths like /etc/passwd are refused without touching them.
  const lexicalDirs = {
    roots: policy.roots.map((r) => normalize(r)),
    artifactDir: normalize(policy.artifactDir),
    userDir,
  };
  if (!allowed(lexical, lexicalDirs)) throw new AppError("artifact_invalid", OUTSIDE);

  // Security: again after resolving symlinks, so a link inside a root cannot point outside it
  // (or into another user's folder).
  const real = await realOrNull(lexical);
  if (!real) {
    throw new AppError(
      "artifact_invalid",
      "artifact_ref does not exist (or cannot be read): fetch the sosreport again",
    );
  }
  const realArtifactDir = await realOrNull(policy.artifactDir) ?? lexicalDirs.artifactDir;
  const realDirs = {
    roots: (await Promise.all(policy.roots.map(realOrNull))).filter((r): r is string => r !== null),
    artifactDir: realArtifactDir,
    userDir: normalize(`${realArtifactDir}/${user}`),
  };
  if (!allowed(real, realDirs)) throw new AppError("artifact_invalid", OUTSIDE);

  const info = await Deno.stat(real);
  if (!info.isFile) throw new AppError("artifact_invalid", "artifact_ref is not a regular file");
  if (info.size === 0) {
    throw new AppError(
      "artifact_invalid",
      "artifact_ref is an empty file: there is nothing to attach",
    );
  }
  if (info.size > policy.maxBytes) {
    throw new AppError(
      "payload_too_large",
      `the file is ${info.size} bytes, above the limit of ${policy.maxBytes} bytes (JIRA_ATTACHMENT_MAX_BYTES)`,
    );
  }
  try {
    (await Deno.open(real, { read: true })).close();
  } catch {
    throw new AppError(
      "artifact_invalid",
      "artifact_ref cannot be read by the sosvault service user",
    );
  }
  return { path: real, name: basename(real), size: info.size };
}

/** A file name for Jira: the artifact's own, or one the caller chose, without path parts. */
export function attachmentName(requested: string | undefined, fallback: string): string {
  const name = (requested ?? fallback).normalize("NFC");
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused here
  const unsafe = /[\/\\\u0000-\u001f\u007f]/;
  if (
    !name || name === "." || name === ".." || unsafe.test(name) ||
    new TextEncoder().encode(name).length > 255
  ) {
    throw new AppError(
      "invalid_input",
      "filename must be a plain file name (no slashes or control characters, at most 255 bytes)",
    );
  }
  return name;
}
