/**
 * Every path the configuration names, checked at start against what Deno granted this process,
 * so a path outside the permissions stops the start (exit 78) with the variable, the path and
 * the directories allowed, instead of failing later with Deno's raw "Requires write access".
 * The check asks Deno itself (`Deno.permissions.querySync`, which never prompts), so it holds
 * for `deno task start`, the compiled binary and any other set of flags alike.
 */
import denoConfig from "../deno.json" with { type: "json" };
import type { Config } from "./config.ts";

export type Access = "read" | "write";

export interface PathNeed {
  /** The environment variable the path comes from (its default, when unset). */
  variable: string;
  path: string;
  access: Access[];
}

type Query = (d: Deno.PermissionDescriptor) => Deno.PermissionStatus;

/**
 * The paths a configuration makes the process read or write, with the variable behind each.
 * `serve` uses them all; a CLI command only the store, the keys and the event export (the
 * artifact and Jira paths are the server's, and `doctor` reports on them itself).
 */
export function configuredPaths(config: Config, use: "serve" | "cli" = "serve"): PathNeed[] {
  const needs: PathNeed[] = [];
  const add = (variable: string, path: string | undefined | null, ...access: Access[]) => {
    if (path) needs.push({ variable, path, access });
  };
  // Deno KV writes the store and its -wal and -shm files beside it.
  if (!/^[a-z]+:\/\//i.test(config.kvPath) && config.kvPath !== ":memory:") {
    for (const suffix of ["", "-wal", "-shm"]) {
      add("SOSVAULT_KV_PATH", config.kvPath + suffix, "read", "write");
    }
  }
  const key = config.masterKey;
  if (key.kind === "file") add("TOKEN_VAULT_MASTER_KEY_FILE", key.path, "read");
  if (key.kind === "dev-generated") {
    add("SOSVAULT_KV_PATH (the dev key beside it)", key.path, "read", "write");
  }
  if (key.kind === "vault") {
    const v = key.settings;
    add("VAULT_CACERT", v.caFile, "read");
    add("VAULT_ROLE_ID_FILE", v.roleIdFile, "read");
    // Removing the secret ID after use needs write access to it.
    if (v.removeSecretId) add("VAULT_SECRET_ID_FILE", v.secretIdFile, "read", "write");
    else add("VAULT_SECRET_ID_FILE", v.secretIdFile, "read");
  }
  if (config.eventExport?.kind === "file") {
    add("SOSVAULT_EVENT_EXPORT", config.eventExport.path, "write");
  }
  if (use === "cli") return needs;
  add("JIRA_CA_FILE", config.caFile, "read");
  add("SOSVAULT_ARTIFACT_DIR", config.artifactDir, "read", "write");
  for (const root of config.artifactRoots) add("SOSVAULT_ARTIFACT_ROOTS", root, "read");
  add("SOSVAULT_OIDC_CLIENT_SECRET_FILE", config.oidc?.clientSecretFile, "read");
  add("SOSVAULT_APPROVAL_TRUST_DIR", config.approval.trustDir, "read");
  add("SOSVAULT_WEBHOOK_SECRET_FILE", config.webhookSecretFile, "read");
  return needs;
}

/** The directories of deno.json's `server` set that this process really may read or write. */
export function allowedDirectories(access: Access, query: Query = querySync): string[] {
  const set = (denoConfig as { permissions?: Record<string, Record<string, unknown>> })
    .permissions?.server?.[access];
  const listed = Array.isArray(set) ? set.filter((p): p is string => typeof p === "string") : [];
  // The set also names single programs (sos, cat); only directories are places to move to.
  return listed.filter((path) =>
    query({ name: access, path }).state === "granted" && !isProgram(path)
  );
}

function isProgram(path: string): boolean {
  if (/\/(sos|cat)$/.test(path)) return true;
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** One problem per path the process may not use as configured; empty when all are fine. */
export function pathPermissionProblems(needs: PathNeed[], query: Query = querySync): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const need of needs) {
    const missing = need.access.filter((name) =>
      query({ name, path: need.path }).state !== "granted"
    );
    // The -wal and -shm files of the store say nothing the store itself has not said.
    const key = `${need.variable}:${missing.join()}:${need.path.replace(/-(wal|shm)$/, "")}`;
    if (missing.length === 0 || seen.has(key)) continue;
    seen.add(key);
    const allowed = missing.map((access) => {
      const dirs = allowedDirectories(access, query);
      return `${access}: ${dirs.length ? dirs.join(", ") : "none of the packaged directories"}`;
    }).join("; ");
    problems.push(
      `${need.variable} is ${need.path}, which sosvault may not ${
        missing.join(" or ")
      } (Deno permissions). Allowed (${allowed}). Move it under one of those, or widen the ` +
        "`server` permission set in deno.json (its read/write lists) and rebuild the binary " +
        "with `deno task compile`",
    );
  }
  return problems;
}

function querySync(d: Deno.PermissionDescriptor): Deno.PermissionStatus {
  return Deno.permissions.querySync(d);
}
