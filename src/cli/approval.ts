/**
 * `sosvault approval keygen|sign|verify`: an approver's key pair and certificate, signatures
 * over the canonical approval statement, and checking one the way the gate does. None of these
 * needs the server's key or KV. Passphrases come from a file or the terminal, never argv.
 */
import { AppError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import { generateApproverKeys } from "../approval/keys.ts";
import {
  signatureFingerprint,
  signStatement,
  TrustStore,
  verifySignedApproval,
} from "../approval/signature.ts";
import type { CliIO } from "./io.ts";

export interface ApprovalFlags {
  name?: string;
  out?: string;
  "passphrase-file"?: string;
  cr?: string;
  key?: string;
  cert?: string;
  host?: string;
  expires?: string;
  approver?: string;
  status?: string;
  signature?: string;
  "trust-dir"?: string;
}

export interface ApprovalCliDeps {
  clock: Clock;
  hostname: () => string;
  /** Reads a passphrase from the terminal without echo. */
  promptPassphrase: (prompt: string) => Promise<string>;
}

export const APPROVAL_USAGE = `approval keygen --name NAME --out DIR [--passphrase-file F]
  sosvault approval sign --cr KEY --approver JIRA_USER --key FILE [--cert FILE] [--host H]
                         [--status S] [--expires ISO|24h|7d] [--passphrase-file F]
  sosvault approval verify --signature FILE --trust-dir DIR [--cr KEY] [--host H]`;

const KEY_FILE = "approver-key.pem";
const CERT_FILE = "approver-cert.pem";

export async function approvalCommand(
  args: string[],
  flags: ApprovalFlags,
  io: CliIO,
  deps: ApprovalCliDeps,
): Promise<number> {
  const [sub, ...rest] = args;
  if (rest.length > 0) return io.usage(APPROVAL_USAGE);
  switch (sub) {
    case "keygen":
      return await keygen(flags, io, deps);
    case "sign":
      return await signCmd(flags, io, deps);
    case "verify":
      return await verifyCmd(flags, io, deps);
    default:
      return io.usage(APPROVAL_USAGE);
  }
}

async function passphrase(flags: ApprovalFlags, deps: ApprovalCliDeps, confirm: boolean) {
  let p: string;
  if (flags["passphrase-file"]) {
    p = (await Deno.readTextFile(flags["passphrase-file"])).split(/\r?\n/)[0];
  } else {
    p = await deps.promptPassphrase("Passphrase for the approver key: ");
    if (confirm && p !== await deps.promptPassphrase("Repeat the passphrase: ")) {
      throw new AppError("invalid_input", "the passphrases do not match");
    }
  }
  if (p.length < 8) {
    throw new AppError("invalid_input", "the passphrase must have at least 8 characters");
  }
  return p;
}

async function keygen(flags: ApprovalFlags, io: CliIO, deps: ApprovalCliDeps): Promise<number> {
  if (!flags.name || !flags.out) return io.usage(APPROVAL_USAGE);
  if (!/^[\p{L}\p{N} .'_-]{1,64}$/u.test(flags.name)) {
    throw new AppError("invalid_input", "--name must be 1 to 64 letters, digits, spaces or .'_-");
  }
  const pass = await passphrase(flags, deps, true);
  const keys = await generateApproverKeys(flags.name, pass, deps.clock());
  await Deno.mkdir(flags.out, { recursive: true, mode: 0o700 });
  const keyPath = `${flags.out}/${KEY_FILE}`;
  const certPath = `${flags.out}/${CERT_FILE}`;
  // createNew: an existing key is never overwritten by mistake.
  await Deno.writeTextFile(keyPath, keys.encryptedKeyPem, { createNew: true, mode: 0o600 });
  await Deno.writeTextFile(certPath, keys.certPem, { createNew: true, mode: 0o644 });
  io.out(`wrote ${keyPath} (encrypted private key, 0600) and ${certPath} (certificate)`);
  io.out(`give ${CERT_FILE} to the sosvault operator for SOSVAULT_APPROVAL_TRUST_DIR`);
  return 0;
}

function expiry(text: string | undefined, now: Date): string {
  const s = text ?? "24h";
  const m = /^(\d{1,4})([hd])$/.exec(s);
  if (m) {
    return new Date(now.getTime() + Number(m[1]) * (m[2] === "h" ? 3_600_000 : 86_400_000))
      .toISOString();
  }
  const t = Date.parse(s);
  if (Number.isNaN(t) || t <= now.getTime()) {
    throw new AppError("invalid_input", "--expires must be a future ISO time, or like 24h or 7d");
  }
  return new Date(t).toISOString();
}

async function signCmd(flags: ApprovalFlags, io: CliIO, deps: ApprovalCliDeps): Promise<number> {
  if (!flags.cr || !flags.key || !flags.approver) return io.usage(APPROVAL_USAGE);
  const cr = flags.cr.trim().toUpperCase();
  if (!/^[A-Z][A-Z0-9_]{1,254}-[1-9][0-9]*$/.test(cr)) {
    throw new AppError("invalid_input", "--cr must be an issue key like CR-1042");
  }
  const now = deps.clock();
  const certPath = flags.cert ?? flags.key.replace(/[^/]*$/, CERT_FILE);
  const [keyPem, certPem] = await Promise.all([
    Deno.readTextFile(flags.key),
    Deno.readTextFile(certPath),
  ]);
  const pass = await passphrase(flags, deps, false);
  let signed;
  try {
    signed = signStatement(
      {
        cr,
        status: flags.status ?? "Approved",
        approver: flags.approver,
        host: flags.host ?? deps.hostname(),
        signed_at: now.toISOString(),
        expires_at: expiry(flags.expires, now),
      },
      keyPem,
      pass,
      certPem,
    );
  } catch {
    throw new AppError(
      "invalid_input",
      "the key could not be used: wrong passphrase, or the key does not match the certificate",
    );
  }
  io.out(JSON.stringify(signed));
  return 0;
}

async function verifyCmd(flags: ApprovalFlags, io: CliIO, deps: ApprovalCliDeps): Promise<number> {
  if (!flags.signature || !flags["trust-dir"]) return io.usage(APPROVAL_USAGE);
  const raw = await Deno.readTextFile(flags.signature);
  const trust = await TrustStore.load(flags["trust-dir"]);
  const v = verifySignedApproval(raw, trust, deps.clock());
  if (!v.ok) {
    io.err(`signature INVALID: ${v.problem}`);
    return 1;
  }
  const s = v.approval.statement;
  const problems = [
    flags.cr && s.cr !== flags.cr.toUpperCase() && `it is for ${s.cr}, not ${flags.cr}`,
    flags.host && s.host !== flags.host && `it is for host ${s.host}, not ${flags.host}`,
    Date.parse(s.expires_at) <= deps.clock().getTime() && `it expired at ${s.expires_at}`,
  ].filter(Boolean);
  if (problems.length > 0) {
    io.err(`signature INVALID: ${problems.join("; ")}`);
    return 1;
  }
  io.out(
    `signature OK: ${s.cr} ${s.status} by ${s.approver} for ${s.host}, signed ${s.signed_at}, expires ${s.expires_at}, signer ${v.signer}, fingerprint ${
      signatureFingerprint(v.approval)
    }`,
  );
  return 0;
}

/** Reads one line from the terminal with echo off. */
export async function terminalPassphrase(prompt: string): Promise<string> {
  if (!Deno.stdin.isTerminal()) {
    throw new AppError(
      "invalid_input",
      "no terminal to read the passphrase from: use --passphrase-file",
    );
  }
  await Deno.stderr.write(new TextEncoder().encode(prompt));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  try {
    const buf = new Uint8Array(1);
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null || buf[0] === 13 || buf[0] === 10) break;
      if (buf[0] === 3) throw new AppError("invalid_input", "cancelled");
      if (buf[0] === 127 || buf[0] === 8) bytes.pop();
      else bytes.push(buf[0]);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(new TextEncoder().encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
