import assert from "node:assert/strict";
import { createLogger, redact } from "../src/log.ts";
import { makeDcPat } from "./helpers/canary.ts";

Deno.test("the logger masks secret-named fields at any depth", () => {
  const lines: string[] = [];
  const log = createLogger((l) => lines.push(l));
  const pat = makeDcPat();
  log.info("x", {
    request: { headers: { Authorization: `Bearer ${pat}`, accept: "json" } },
    pat,
    nested: [{ token: "t0ken-value" }],
  });
  const line = lines[0];
  assert.ok(!line.includes(pat));
  assert.ok(!line.includes("t0ken-value"));
  assert.match(line, /"accept":"json"/);
});

Deno.test("the logger masks secret-shaped text inside ordinary fields and messages", () => {
  const lines: string[] = [];
  const log = createLogger((l) => lines.push(l));
  const pat = makeDcPat();
  const err = new Error(`upstream said: Authorization: Bearer ${pat}`, {
    cause: new Error(`echo ${pat}`),
  });
  log.error(`failed with ${pat}`, {
    error: err,
    body: `{"x":"${pat}"}`,
    gh: "ghp_" + "a".repeat(36),
  });
  const line = lines[0];
  assert.ok(!line.includes(pat), line);
  assert.ok(!line.includes("ghp_aaaa"));
  const parsed = JSON.parse(line);
  assert.equal(parsed.level, "error");
  assert.equal(parsed.error.name, "Error");
});

Deno.test("redact() leaves ordinary ids, digests and paths alone", () => {
  const value = {
    connection_id: "jc_abcdefghijklmnopqrstuvwxyz012345",
    sha256: "a".repeat(64),
    path: "/var/tmp/sosreport-host-linux-mcp-sos-2026-11-24-abcdef.tar.xz",
    issue: "ABC-123",
  };
  assert.deepEqual(redact(value), value);
});
