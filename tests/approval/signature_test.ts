/**
 * Approver signatures end to end: keys made by the real `sosvault approval keygen`, statements
 * signed by `approval sign`, checked by `approval verify` and by the gate in cr+signature mode.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { freshDir } from "../helpers/paths.ts";
import { toolError } from "../helpers/mcp.ts";
import { TestClock } from "../helpers/clock.ts";
import { approvalCli, canRunGated, HOST, SIGNATURE_FIELD, startApprovalWorld } from "./_world.ts";
import { keygen, PASSPHRASE, sign } from "./_keys.ts";

Deno.test("approval keygen writes an encrypted PKCS#8 key (0600) and a self-signed certificate; the passphrase is never printed", async () => {
  const dir = await freshDir("approval-keys");
  const { key, cert, output } = await keygen(dir);
  const keyPem = await Deno.readTextFile(key);
  assert.match(keyPem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  assert.equal((await Deno.stat(key)).mode! & 0o777, 0o600);
  const c = new X509Certificate(await Deno.readTextFile(cert));
  assert.match(c.subject, /CN=Change Manager/);
  assert.equal(c.publicKey.asymmetricKeyType, "ed25519");
  assert.ok(c.verify(c.publicKey), "self-signed");
  assert.ok(!output.stdout.includes(PASSPHRASE) && !output.stderr.includes(PASSPHRASE));
  // An existing key is never overwritten.
  const again = await approvalCli(dir, [
    "keygen",
    "--name",
    "X",
    "--out",
    key.replace(/\/[^/]*$/, ""),
    "--passphrase-file",
    `${dir}/pass`,
  ]);
  assert.notEqual(again.code, 0);
  assert.equal(await Deno.readTextFile(key), keyPem);
  // No terminal and no file: refused, never read from argv.
  const noTty = await approvalCli(dir, ["keygen", "--name", "X", "--out", `${dir}/k2`]);
  assert.equal(noTty.code, 64);
  assert.match(noTty.stderr, /use --passphrase-file/);
});

Deno.test("approval sign and verify: a valid signature verifies; a tampered statement, a wrong passphrase, an untrusted certificate do not", async () => {
  const dir = await freshDir("approval-sign");
  const { key, cert } = await keygen(dir);
  await Deno.mkdir(`${dir}/trust`);
  await Deno.copyFile(cert, `${dir}/trust/carol.pem`);
  const sig = await sign(dir, key, "cr-1", ["--expires", "2h"]);
  const parsed = JSON.parse(sig);
  assert.equal(parsed.statement.cr, "CR-1");
  assert.equal(parsed.statement.approver, "carol");
  assert.equal(parsed.statement.status, "Approved");
  assert.equal(parsed.statement.host, HOST);
  await Deno.writeTextFile(`${dir}/sig.json`, sig);
  const ok = await approvalCli(dir, [
    "verify",
    "--signature",
    `${dir}/sig.json`,
    "--trust-dir",
    `${dir}/trust`,
    "--cr",
    "CR-1",
    "--host",
    HOST,
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /signature OK: CR-1 Approved by carol/);

  const tampered = { ...parsed, statement: { ...parsed.statement, cr: "CR-2" } };
  await Deno.writeTextFile(`${dir}/tampered.json`, JSON.stringify(tampered));
  const bad = await approvalCli(dir, [
    "verify",
    "--signature",
    `${dir}/tampered.json`,
    "--trust-dir",
    `${dir}/trust`,
  ]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /INVALID: bad_signature/);

  const otherCr = await approvalCli(dir, [
    "verify",
    "--signature",
    `${dir}/sig.json`,
    "--trust-dir",
    `${dir}/trust`,
    "--cr",
    "CR-9",
  ]);
  assert.equal(otherCr.code, 1);
  assert.match(otherCr.stderr, /it is for CR-1, not CR-9/);

  await Deno.mkdir(`${dir}/empty-trust`);
  const untrusted = await approvalCli(dir, [
    "verify",
    "--signature",
    `${dir}/sig.json`,
    "--trust-dir",
    `${dir}/empty-trust`,
  ]);
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /INVALID: untrusted/);

  await Deno.writeTextFile(`${dir}/wrong`, "not the passphrase\n");
  const wrong = await approvalCli(dir, [
    "sign",
    "--cr",
    "CR-1",
    "--approver",
    "carol",
    "--key",
    key,
    "--passphrase-file",
    `${dir}/wrong`,
  ]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /wrong passphrase/);
});

const canRun = canRunGated("cr+signature tests");

Deno.test({
  name:
    "cr+signature: a missing, malformed, tampered, untrusted, expired or mismatched signature is approval_required naming the problem; a valid one passes",
  ignore: !canRun,
  fn: async () => {
    const dir = await freshDir("approval-gate-sig");
    const { key, cert } = await keygen(dir);
    const stranger = await keygen(dir, "Someone Else");
    await Deno.mkdir(`${dir}/trust`);
    await Deno.copyFile(cert, `${dir}/trust/change-manager.pem`);
    // A private key dropped into the trust directory by mistake is not trust.
    await Deno.copyFile(stranger.key, `${dir}/trust/oops.pem`);
    const clock = new TestClock(Date.now());
    const s = await startApprovalWorld({
      SOSVAULT_APPROVAL: "cr+signature",
      SOSVAULT_APPROVAL_SIGNATURE_FIELD: SIGNATURE_FIELD,
      SOSVAULT_APPROVAL_TRUST_DIR: `${dir}/trust`,
    }, { clock });
    const id = s.connectionId;
    const refusal = async (cr: string, value: unknown) => {
      s.approvedCr(cr, { fields: { [SIGNATURE_FIELD]: value } });
      const err = toolError(await s.generate({ change_request: cr, connection_id: id }));
      assert.equal(err.code, "approval_required", err.message);
      return err.message;
    };
    try {
      assert.match(
        await refusal("CR-1", null),
        /its signature field customfield_10400 is empty: the approver must paste the output of `sosvault approval sign`/,
      );
      assert.match(
        await refusal("CR-2", "looks approved to me"),
        /not a sosvault approval signature JSON/,
      );
      const good = JSON.parse(await sign(dir, key, "CR-3"));
      const tampered = { ...good, statement: { ...good.statement, host: "db99" } };
      assert.match(
        await refusal("CR-3", JSON.stringify(tampered)),
        /its signature does not verify \(the statement was changed after signing\)/,
      );
      assert.match(
        await refusal("CR-4", await sign(dir, stranger.key, "CR-4")),
        /made with a certificate not in SOSVAULT_APPROVAL_TRUST_DIR/,
      );
      assert.match(
        await refusal("CR-5", await sign(dir, key, "CR-6")),
        /its signature is for another approval \(CR CR-6\)/,
      );
      const otherHost = await approvalCli(dir, [
        "sign",
        "--cr",
        "CR-7",
        "--approver",
        "dave",
        "--key",
        key,
        "--passphrase-file",
        `${dir}/pass`,
        "--host",
        "db99",
      ]);
      assert.match(
        await refusal("CR-7", otherHost.stdout.trim()),
        /its signature is for another approval \(approver dave, host db99\)/,
      );
      const shortLived = await sign(dir, key, "CR-8", ["--expires", "1h"]);
      clock.advance(2 * 3_600_000);
      assert.match(await refusal("CR-8", shortLived), /its signature expired at /);
      // The signature arrives as a JSON object (a field that stores JSON) just as well.
      // A valid signature passes the gate, and consent comes next; declining consent does not
      // use the signature up.
      s.approvedCr("CR-9", {
        fields: { [SIGNATURE_FIELD]: JSON.parse(await sign(dir, key, "CR-9")) },
      });
      const next = toolError(await s.generate({ change_request: "CR-9", connection_id: id }));
      assert.equal(next.code, "consent_required", next.message);
      const used = await Array.fromAsync(s.w.server.services.kv.list({ prefix: ["approval_sig"] }));
      assert.equal(used.length, 0);
    } finally {
      await s.close();
    }
  },
});
