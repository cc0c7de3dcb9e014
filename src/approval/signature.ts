/**
 * Approver signatures: a canonical statement (CR key, status, approver, host, signed_at,
 * expires_at) signed with the approver's Ed25519 or ECDSA P-256 key, checked against the
 * certificates an operator trusts. node:crypto does the cryptography; nothing is hand-rolled.
 */
import { createHash, createPrivateKey, sign, verify, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import { z } from "zod";

export interface Statement {
  cr: string;
  status: string;
  approver: string;
  host: string;
  signed_at: string;
  expires_at: string;
}

/** The JSON an approver pastes into the CR's signature field. */
export interface SignedApproval {
  v: 1;
  statement: Statement;
  /** SHA-256 of the signer's certificate (DER), lower-case hex. */
  cert_sha256: string;
  /** Base64 signature over `canonicalStatement(statement)`. */
  signature: string;
}

const iso = z.string().max(40).refine((s) => !Number.isNaN(Date.parse(s)), "must be a time");
const statementSchema = z.strictObject({
  cr: z.string().min(1).max(255),
  status: z.string().min(1).max(255),
  approver: z.string().min(1).max(255),
  host: z.string().min(1).max(255),
  signed_at: iso,
  expires_at: iso,
});
export const signedApprovalSchema = z.strictObject({
  v: z.literal(1),
  statement: statementSchema,
  cert_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  signature: z.string().regex(/^[A-Za-z0-9+/]{40,200}={0,2}$/),
});

/**
 * The exact bytes signed: fixed key order and a version prefix, never the pasted text, so
 * whitespace or key order in the CR field cannot change what was approved.
 */
export function canonicalStatement(s: Statement): Uint8Array {
  return new TextEncoder().encode(
    "sosvault-approval-v1\n" + JSON.stringify([
      s.cr,
      s.status,
      s.approver,
      s.host,
      s.signed_at,
      s.expires_at,
    ]),
  );
}

/** Identifies one signature (for reuse detection and the audit trail). */
export function signatureFingerprint(a: SignedApproval): string {
  return createHash("sha256").update(Buffer.from(a.signature, "base64")).digest("hex");
}

export function certSha256(cert: X509Certificate): string {
  return cert.fingerprint256.replaceAll(":", "").toLowerCase();
}

/** Signs with an encrypted PKCS#8 PEM key. Throws when the passphrase is wrong. */
export function signStatement(
  statement: Statement,
  keyPem: string,
  passphrase: string,
  certPem: string,
): SignedApproval {
  const key = createPrivateKey({ key: keyPem, passphrase });
  const cert = new X509Certificate(certPem);
  const bytes = canonicalStatement(statement);
  const sig = sign(digestFor(key.asymmetricKeyType), bytes, key);
  if (!verify(digestFor(key.asymmetricKeyType), bytes, cert.publicKey, sig)) {
    throw new Error("the key does not belong to the certificate");
  }
  return {
    v: 1,
    statement: { ...statement },
    cert_sha256: certSha256(cert),
    signature: sig.toString("base64"),
  };
}

function digestFor(type: string | undefined): string | null {
  return type === "ed25519" ? null : "sha256";
}

/** Certificates an operator trusts, by their SHA-256. */
export class TrustStore {
  constructor(readonly certs: Map<string, X509Certificate>) {}

  static async load(dir: string): Promise<TrustStore> {
    const certs = new Map<string, X509Certificate>();
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.endsWith(".pem")) continue;
      const text = await Deno.readTextFile(`${dir}/${e.name}`);
      // Security: a private key placed in the trust directory by mistake is never read as trust.
      if (!text.includes("BEGIN CERTIFICATE")) continue;
      const cert = new X509Certificate(text);
      certs.set(certSha256(cert), cert);
    }
    return new TrustStore(certs);
  }
}

export type VerifyProblem =
  | "malformed"
  | "untrusted"
  | "certificate_expired"
  | "bad_signature";

/** Checks the signature itself; the caller checks that the statement matches the CR. */
export function verifySignedApproval(
  raw: unknown,
  trust: TrustStore,
  now: Date,
): { ok: true; approval: SignedApproval; signer: string } | { ok: false; problem: VerifyProblem } {
  let value = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw.trim());
    } catch {
      return { ok: false, problem: "malformed" };
    }
  }
  const parsed = signedApprovalSchema.safeParse(value);
  if (!parsed.success) return { ok: false, problem: "malformed" };
  const a = parsed.data as SignedApproval;
  const cert = trust.certs.get(a.cert_sha256);
  if (!cert) return { ok: false, problem: "untrusted" };
  if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
    return { ok: false, problem: "certificate_expired" };
  }
  let good = false;
  try {
    good = verify(
      digestFor(cert.publicKey.asymmetricKeyType),
      canonicalStatement(a.statement),
      cert.publicKey,
      Buffer.from(a.signature, "base64"),
    );
  } catch {
    good = false;
  }
  if (!good) return { ok: false, problem: "bad_signature" };
  return { ok: true, approval: a, signer: cert.subject };
}
