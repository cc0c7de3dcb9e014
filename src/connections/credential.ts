/**
 * What a connection's envelope holds in clear, per deployment, and what follows from it.
 *
 * - Data Center: the PAT itself, exactly as before Cloud support (old records open unchanged).
 * - Cloud: `{"email":…,"token":…}` as JSON, so the e-mail (personal data) is encrypted under the
 *   same key, IV rules and AAD as the token, and key rotation re-encrypts both in one step.
 */
import {
  cloudAuth,
  cloudSecretForms,
  dataCenterAuth,
  type Deployment,
  type JiraAuth,
} from "../jira/auth.ts";
import { fingerprint, type VaultKey } from "../vault/cipher.ts";
import type { ConnectionRecord } from "./store.ts";

export interface CloudSecret {
  email: string;
  token: string;
}

export function encodeCloudSecret(s: CloudSecret): string {
  return JSON.stringify({ email: s.email, token: s.token });
}

/** The token (the PAT on Data Center) and, on Cloud, the e-mail. Throws on a malformed one. */
export function decodeSecret(
  deployment: Deployment | undefined,
  plaintext: string,
): { token: string; email?: string } {
  if ((deployment ?? "data_center") === "data_center") return { token: plaintext };
  const parsed = JSON.parse(plaintext) as Partial<CloudSecret>;
  if (typeof parsed?.email !== "string" || typeof parsed?.token !== "string") {
    throw new Error("malformed Cloud credential");
  }
  return { token: parsed.token, email: parsed.email };
}

/**
 * The keyed fingerprints the secret guard compares tool arguments with: `pat_fp` for the token,
 * and on Cloud `secret_fps` for `email:token` and its base64 (what a Basic header carries).
 */
export async function secretFingerprints(
  key: VaultKey,
  deployment: Deployment | undefined,
  plaintext: string,
): Promise<Pick<ConnectionRecord, "pat_fp" | "secret_fps">> {
  const s = decodeSecret(deployment, plaintext);
  const patFp = await fingerprint(key, s.token);
  if (s.email === undefined) return { pat_fp: patFp };
  const [, ...others] = cloudSecretForms(s.email, s.token);
  return {
    pat_fp: patFp,
    secret_fps: await Promise.all(others.map((o) => fingerprint(key, o))),
  };
}

/** The auth scheme and route of a connection, from its record and decrypted secret. */
export function authOf(record: ConnectionRecord, plaintext: string, gateway: string): JiraAuth {
  const s = decodeSecret(record.deployment, plaintext);
  if (s.email === undefined) return dataCenterAuth(record.base_url, s.token);
  return cloudAuth({
    siteUrl: record.base_url,
    email: s.email,
    token: s.token,
    cloudId: record.token_kind === "scoped" ? record.cloud_id : undefined,
    gateway,
  });
}
