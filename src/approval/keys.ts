/**
 * `approval keygen`: an Ed25519 key pair and a self-signed X.509 certificate built by
 * @peculiar/x509 on WebCrypto; the private key leaves memory only as encrypted PKCS#8.
 */
import * as x509 from "@peculiar/x509";
import { createPrivateKey } from "node:crypto";
import { Buffer } from "node:buffer";

export interface GeneratedKeys {
  certPem: string;
  /** PKCS#8, AES-256-CBC under the passphrase (scrypt/PBKDF2 as OpenSSL chooses). */
  encryptedKeyPem: string;
}

export async function generateApproverKeys(
  name: string,
  passphrase: string,
  now: Date,
  days = 365,
): Promise<GeneratedKeys> {
  x509.cryptoProvider.set(crypto);
  const alg = { name: "Ed25519" };
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]) as CryptoKeyPair;
  const serial = Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("").replace(/^[89a-f]/, "7");
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial,
    name: new x509.Name([{ CN: [name] }, { O: ["sosvault change approval"] }]),
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + days * 86_400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    ],
  });
  const der = Buffer.from(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const encryptedKeyPem = createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({
    format: "pem",
    type: "pkcs8",
    cipher: "aes-256-cbc",
    passphrase,
  }) as string;
  der.fill(0);
  return { certPem: cert.toString("pem"), encryptedKeyPem };
}
