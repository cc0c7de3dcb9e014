/** Approver keys and signatures made with the real `sosvault approval` CLI. */
import assert from "node:assert/strict";
import { approvalCli, HOST } from "./_world.ts";

export const PASSPHRASE = "correct horse battery staple";

/** Makes an approver's keys with the real CLI; returns their paths. */
export async function keygen(dir: string, name = "Change Manager") {
  const out = `${dir}/keys-${crypto.randomUUID().slice(0, 6)}`;
  await Deno.writeTextFile(`${dir}/pass`, PASSPHRASE + "\n", { mode: 0o600 });
  const r = await approvalCli(dir, [
    "keygen",
    "--name",
    name,
    "--out",
    out,
    "--passphrase-file",
    `${dir}/pass`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return { key: `${out}/approver-key.pem`, cert: `${out}/approver-cert.pem`, output: r };
}

/** Signs with the real CLI; returns the signature JSON text. */
export async function sign(
  dir: string,
  key: string,
  cr: string,
  extra: string[] = [],
): Promise<string> {
  const r = await approvalCli(dir, [
    "sign",
    "--cr",
    cr,
    "--approver",
    "carol",
    "--key",
    key,
    "--passphrase-file",
    `${dir}/pass`,
    "--host",
    HOST,
    ...extra,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}
