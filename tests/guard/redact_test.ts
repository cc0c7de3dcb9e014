/** Cutting the caller's own secrets out of Jira data (issue 14 item 2), on its own. */
import assert from "node:assert/strict";
import { AppError } from "../../src/errors.ts";
import { KnownSecrets } from "../../src/security/known_secrets.ts";
import { redactSecrets } from "../../src/jira/redact.ts";
import { cloudSecretForms } from "../../src/jira/auth.ts";
import { makeCloudToken, makeDcPat } from "../helpers/canary.ts";
import { disguises } from "./_disguises.ts";

Deno.test("KnownSecrets.redact() replaces each written-out span and keeps the text around it", () => {
  const pat = makeDcPat();
  const known = KnownSecrets.forSecrets([pat]);
  assert.deepEqual(known.redact(`notes-${pat}.txt`), {
    text: "notes-[redacted].txt",
    redacted: 1,
    exhausted: false,
  });
  assert.equal(known.redact(`x_${pat}_y`).text, "x_[redacted]_y");
  assert.equal(known.redact(`2026${pat}0001`).text, "2026[redacted]0001");
  assert.equal(known.redact(`${pat} and ${pat}`).text, "[redacted] and [redacted]");
  assert.equal(known.redact(`${pat} and ${pat}`).redacted, 2);
  // Touching occurrences become one span.
  assert.deepEqual(known.redact(`${pat}${pat}`), {
    text: "[redacted]",
    redacted: 1,
    exhausted: false,
  });
  for (const ordinary of ["notes-2026.txt", makeDcPat(), "SUP-123", ""]) {
    assert.deepEqual(known.redact(ordinary), { text: ordinary, redacted: 0, exhausted: false });
  }
});

Deno.test("KnownSecrets.redact() replaces the whole text when the secret hides in an encoded form", () => {
  const pat = makeDcPat();
  const known = KnownSecrets.forSecrets([pat]);
  for (const [name, text] of disguises(pat)) {
    const r = known.redact(text);
    assert.equal(r.exhausted, false, name);
    assert.ok(r.redacted >= 1, name);
    assert.equal(known.search(r.text).found, false, `${name}: nothing of it is left`);
  }
  const percent = [...pat].map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  const url = `https://jira.example/secure/attachment/1/a-${percent}.txt`;
  assert.equal(known.redact(url).text, "[redacted]");
});

Deno.test("KnownSecrets.redact() fails closed past its bounds", () => {
  const pat = makeDcPat();
  const known = KnownSecrets.forSecrets([pat]);
  assert.equal(known.redact("a".repeat(70_000)).exhausted, true, "longer than is searched");
  const many = Array.from({ length: KnownSecrets.MAX_CONFIRMS + 1 }, () => pat).join(" ");
  assert.equal(known.redact(many).exhausted, true, "more confirmations than the budget");
});

Deno.test("redactSecrets() walks keys and values of a Jira bean and counts what it replaced", () => {
  const pat = makeDcPat();
  const found = { spans: 0 };
  const bean = {
    key: "SUP-1",
    fields: {
      attachment: [
        { id: "1", filename: `${pat}.txt`, size: 1, author: { displayName: `Eve ${pat}` } },
        { id: "2", filename: "ok.txt", size: 2, [`k${pat}`]: true },
      ],
    },
  };
  const out = redactSecrets(bean, [pat], found);
  assert.equal(found.spans, 3);
  assert.equal(out.fields.attachment[0].filename, "[redacted].txt");
  assert.equal(out.fields.attachment[0].author?.displayName, "Eve [redacted]");
  assert.ok("k[redacted]" in out.fields.attachment[1]);
  assert.ok(!JSON.stringify(out).includes(pat));
  const untouched = { spans: 0 };
  assert.deepEqual(redactSecrets({ a: ["b", 1, null, true] }, [pat], untouched), {
    a: ["b", 1, null, true],
  });
  assert.equal(untouched.spans, 0);
});

Deno.test("redactSecrets() removes every form of a Cloud credential, and refuses what it cannot search", () => {
  const token = makeCloudToken();
  const forms = cloudSecretForms("me@example.com", token);
  const found = { spans: 0 };
  const out = redactSecrets(
    [`a ${token} b`, `me@example.com:${token}`, `Basic ${forms[2]}`],
    forms,
    found,
  );
  assert.ok(found.spans >= 3);
  for (const s of out) assert.ok(!s.includes(token) && !s.includes(forms[2]), s);
  assert.throws(
    () => redactSecrets({ name: `${token}${"x".repeat(70_000)}` }, forms, { spans: 0 }),
    (e) => e instanceof AppError && e.code === "upstream_unavailable" && !e.message.includes(token),
  );
});
