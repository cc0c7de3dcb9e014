import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
/** Everything a test run leaves behind (logs, recorded responses, KV files) for the sweep. */
export const OUT_DIR = `${REPO_ROOT}/.test-out`;
export const TLS_DIR = `${REPO_ROOT}/tests/fixtures/tls`;
export const TEST_CA_FILE = `${TLS_DIR}/test-ca.pem`;

export async function freshDir(label: string): Promise<string> {
  const dir = `${OUT_DIR}/${label}-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}
