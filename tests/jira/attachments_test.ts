// Listing attachments and reading attachment settings, against the fake Jira over real HTTPS.

import assert from "node:assert/strict";
import { AppError } from "../../src/errors.ts";
import { JiraClient } from "../../src/jira/client.ts";
import { httpTransport, inProcessTransport } from "../../src/jira/transport.ts";
import {
  attachmentSettings,
  listIssueAttachments,
  normaliseIssueKey,
  parseJiraTime,
} from "../../src/jira/attachments.ts";
import {
  type RunningFakeJira,
  startFakeJira,
  type StartFakeJiraOptions,
  testCaPem,
} from "../helpers/fake_jira_server.ts";
import { makeDcPat } from "../helpers/canary.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const transport = httpTransport(await testCaPem());
const client = new JiraClient({ transport, timeoutMs: 10_000, sleep: () => Promise.resolve() });

interface Env {
  server: RunningFakeJira;
  pat: string;
}

/** A fake Jira with user fred (PAT `pat`), run for `fn` and always closed. */
async function withJira(
  options: StartFakeJiraOptions,
  fn: (env: Env) => Promise<void>,
): Promise<void> {
  const server = await startFakeJira(options);
  const pat = makeDcPat();
  server.jira.addUser({ name: "fred", displayName: "Fred F. User" });
  server.jira.addUser({ name: "wilma", displayName: "Wilma Flintstone" });
  server.jira.addPat("fred", pat);
  try {
    await fn({ server, pat });
  } finally {
    await server.close();
  }
}

/** Awaits a rejection with an AppError of `code` whose public text never holds the PAT. */
async function rejectsWith(p: Promise<unknown>, code: string, pat: string): Promise<AppError> {
  const err = await p.then(
    () => assert.fail(`expected ${code}, got success`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AppError, `not an AppError: ${err}`);
  assert.equal(err.code, code, err.message);
  assert.ok(!err.message.includes(pat), "the PAT leaked into the message");
  assert.ok(!JSON.stringify(err.detail ?? {}).includes(pat), "the PAT leaked into the detail");
  return err;
}

// ---------------------------------------------------------------------------------------------
// normaliseIssueKey() and parseJiraTime()

Deno.test("normaliseIssueKey() trims, upper-cases and accepts keys and numeric ids", () => {
  assert.equal(normaliseIssueKey("ABC-123"), "ABC-123");
  assert.equal(normaliseIssueKey("  sup-7\n"), "SUP-7");
  assert.equal(normaliseIssueKey("a20091-15"), "A20091-15");
  assert.equal(normaliseIssueKey("MY_PROJ-1"), "MY_PROJ-1");
  assert.equal(normaliseIssueKey("10002"), "10002");
  assert.equal(normaliseIssueKey("Z" + "A".repeat(254) + "-9"), "Z" + "A".repeat(254) + "-9");
});

Deno.test("normaliseIssueKey() refuses what is not a key or id, without echoing the input", () => {
  const bad = [
    "",
    "   ",
    "A-1", // project keys have two or more characters
    "ABC-0",
    "ABC-012",
    "1BC-1",
    "ABC_1",
    "ABC-1/../../myself",
    "ABC-1?fields=*all",
    "ABC -1",
    "0",
    "0123",
    "1234567890123456789", // 19 digits
    "ıssue-1", // dotless i upper-cases to ASCII I
    "ſup-1", // long s upper-cases to ASCII S
    "Z" + "A".repeat(255) + "-9",
    "ABC-1\r\nX-Evil: 1",
  ];
  for (const input of bad) {
    assert.throws(
      () => normaliseIssueKey(input),
      (e: unknown) =>
        e instanceof AppError && e.code === "invalid_input" &&
        /ABC-123/.test(e.message) && (input.trim() === "" || !e.message.includes(input.trim())),
      JSON.stringify(input),
    );
  }
  assert.throws(() => normaliseIssueKey(undefined as unknown as string), AppError);
});

Deno.test("parseJiraTime() converts Jira's ±hhmm, ±hh:mm and Z forms to ISO UTC", () => {
  assert.equal(parseJiraTime("2018-09-19T18:15:01.060-0700"), "2018-09-20T01:15:01.060Z");
  assert.equal(parseJiraTime("2024-03-01T10:00:00.000+05:30"), "2024-03-01T04:30:00.000Z");
  assert.equal(parseJiraTime("2024-03-01T10:00:00.5+0530"), "2024-03-01T04:30:00.500Z");
  assert.equal(parseJiraTime("2024-03-01T10:00:00Z"), "2024-03-01T10:00:00.000Z");
  assert.equal(parseJiraTime("2024-03-01T10:00:00.123456+0000"), "2024-03-01T10:00:00.123Z");
  assert.equal(parseJiraTime("2023-12-31T23:30:00.000-0100"), "2024-01-01T00:30:00.000Z");
  assert.equal(parseJiraTime("2024-02-29T12:00:00.000+1400"), "2024-02-28T22:00:00.000Z");
});

Deno.test("parseJiraTime() refuses malformed and impossible timestamps", () => {
  for (
    const s of [
      "",
      "yesterday",
      "2018-09-19",
      "2018-09-19T18:15:01.060",
      "2018-09-19 18:15:01.060-0700",
      "2018-02-30T00:00:00.000Z",
      "2018-13-01T00:00:00.000Z",
      "2018-09-19T24:00:00.000Z",
      "2018-09-19T18:15:01.060-2500",
      "2018-09-19T18:15:01.060-07",
    ]
  ) {
    assert.throws(
      () => parseJiraTime(s),
      (e: unknown) => e instanceof AppError && e.code === "upstream_unavailable",
      s,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// listIssueAttachments()

Deno.test("listIssueAttachments() returns an empty list for an issue without attachments", async () => {
  await withJira({}, async ({ server, pat }) => {
    server.jira.addIssue({ key: "SUP-1" });
    const out = await listIssueAttachments(client, server.url, pat, "sup-1");
    assert.deepEqual(out, { issue_key: "SUP-1", attachments: [] });
    const rec = server.jira.requests.at(-1)!;
    assert.equal(rec.path, "/rest/api/2/issue/SUP-1");
    // Without fields=attachment some Jira versions leave the list empty.
    assert.equal(rec.query, "fields=attachment");
    assert.equal(rec.headers.authorization, `Bearer ${pat}`);
    assert.deepEqual(rec.violations, []);
  });
});

Deno.test("listIssueAttachments() maps one attachment to the contract's fields, in UTC", async () => {
  await withJira({}, async ({ server, pat }) => {
    server.jira.addIssue({
      key: "SUP-2",
      attachments: [{
        filename: "sosreport-host-2024.tar.xz",
        size: 97613,
        author: "fred",
        created: "2018-09-19T18:15:01.060-0700",
      }],
    });
    const out = await listIssueAttachments(client, server.url, pat, "SUP-2");
    assert.equal(out.issue_key, "SUP-2");
    assert.equal(out.attachments.length, 1);
    const [a] = out.attachments;
    assert.deepEqual(Object.keys(a).sort(), [
      "author",
      "created",
      "filename",
      "id",
      "mime_type",
      "size",
    ]);
    assert.match(a.id, /^\d+$/);
    assert.equal(a.filename, "sosreport-host-2024.tar.xz");
    assert.equal(a.size, 97613);
    assert.equal(a.mime_type, "application/x-xz");
    assert.equal(a.created, "2018-09-20T01:15:01.060Z");
    assert.equal(a.author, "Fred F. User");
  });
});

Deno.test("listIssueAttachments() keeps n attachments in order with non-ASCII and duplicate names", async () => {
  await withJira({ utcOffsetMinutes: 330 }, async ({ server, pat }) => {
    const names = [
      "sosreport-höst-ünïcødé.tar.xz",
      "日本語のログ.txt",
      "emoji-🚀.log",
      'with "quotes" and \\ backslash.bin',
      "日本語のログ.txt",
    ];
    server.jira.addIssue({
      key: "SUP-3",
      attachments: names.map((filename, i) => ({
        filename,
        size: 1000 + i,
        author: i % 2 ? "wilma" : "fred",
      })),
    });
    const out = await listIssueAttachments(client, server.url, pat, "SUP-3");
    assert.deepEqual(out.attachments.map((a) => a.filename), names);
    assert.deepEqual(out.attachments.map((a) => a.size), [1000, 1001, 1002, 1003, 1004]);
    assert.equal(new Set(out.attachments.map((a) => a.id)).size, 5, "duplicates keep their own id");
    assert.deepEqual(
      out.attachments.map((a) => a.author),
      ["Fred F. User", "Wilma Flintstone", "Fred F. User", "Wilma Flintstone", "Fred F. User"],
    );
    for (const a of out.attachments) {
      assert.match(a.created, ISO);
      // Created "now" on a +0530 Jira: converted back to UTC, it is within a minute of now.
      assert.ok(Math.abs(Date.parse(a.created) - Date.now()) < 60_000, a.created);
    }
  });
});

Deno.test("listIssueAttachments() reports the canonical key for a moved issue and for an id", async () => {
  await withJira({}, async ({ server, pat }) => {
    server.jira.addIssue({
      key: "NEW-7",
      id: "10777",
      movedFrom: ["OLD-7"],
      attachments: [{ filename: "a.txt", size: 1 }],
    });
    const moved = await listIssueAttachments(client, server.url, pat, "old-7");
    assert.equal(moved.issue_key, "NEW-7");
    assert.equal(moved.attachments.length, 1);
    const byId = await listIssueAttachments(client, server.url, pat, "10777");
    assert.equal(byId.issue_key, "NEW-7");
  });
});

Deno.test("listIssueAttachments() answers not_found for a missing or invisible issue", async () => {
  await withJira({}, async ({ server, pat }) => {
    server.jira.addIssue({ key: "HID-1", browsers: ["wilma"] });
    for (const key of ["NOPE-1", "HID-1"]) {
      const err = await rejectsWith(
        listIssueAttachments(client, server.url, pat, key),
        "not_found",
        pat,
      );
      assert.equal(
        err.message,
        `Jira issue ${key} does not exist, or your Jira account may not see it`,
      );
    }
  });
});

Deno.test("listIssueAttachments() refuses the anonymous-200 trap as invalid_credentials", async () => {
  await withJira({}, async ({ server, pat }) => {
    server.jira.addIssue({ key: "PUB-1", attachments: [{ filename: "a.txt", size: 1 }] });
    server.jira.setMode("anonymous_ok");
    server.jira.revokePat(pat);
    await rejectsWith(
      listIssueAttachments(client, server.url, pat, "PUB-1"),
      "invalid_credentials",
      pat,
    );
    const rec = server.jira.requests.at(-1)!;
    assert.equal(rec.status, 200, "Jira did answer 200, as anonymous");
  });
});

Deno.test("listIssueAttachments() maps a revoked PAT's 401 to invalid_credentials", async () => {
  await withJira({}, async ({ server, pat }) => {
    server.jira.addIssue({ key: "SUP-1" });
    server.jira.revokePat(pat);
    await rejectsWith(
      listIssueAttachments(client, server.url, pat, "SUP-1"),
      "invalid_credentials",
      pat,
    );
  });
});

Deno.test("listIssueAttachments() treats a missing attachment field (attachments disabled) as none", async () => {
  await withJira({ attachmentsEnabled: false }, async ({ server, pat }) => {
    server.jira.addIssue({ key: "SUP-1", attachments: [{ filename: "a.txt", size: 1 }] });
    const out = await listIssueAttachments(client, server.url, pat, "SUP-1");
    assert.deepEqual(out, { issue_key: "SUP-1", attachments: [] });
  });
});

Deno.test("listIssueAttachments() never follows self or content URLs on another host", async () => {
  await withJira(
    { advertisedBaseUrl: "https://jira-internal.example.invalid/jira" },
    async ({ server, pat }) => {
      server.jira.addIssue({ key: "SUP-1", attachments: [{ filename: "a.txt", size: 3 }] });
      const out = await listIssueAttachments(client, server.url, pat, "SUP-1");
      assert.equal(out.attachments.length, 1);
      assert.ok(!JSON.stringify(out).includes("jira-internal"), "no URL is passed on");
      assert.equal(server.jira.requests.length, 1, "one request, to the configured base only");
    },
  );
});

Deno.test("listIssueAttachments() refuses a malformed key before calling Jira", async () => {
  await withJira({}, async ({ server, pat }) => {
    await rejectsWith(
      listIssueAttachments(client, server.url, pat, "../myself"),
      "invalid_input",
      pat,
    );
    assert.equal(server.jira.requests.length, 0);
  });
});

/** An in-process Jira answering GET issue with `body`, as user fred. */
function cannedClient(body: unknown): JiraClient {
  return new JiraClient({
    transport: inProcessTransport(() =>
      Promise.resolve(
        new Response(JSON.stringify(body), {
          status: 200,
          headers: { "Content-Type": "application/json;charset=UTF-8", "X-AUSERNAME": "fred" },
        }),
      )
    ),
    timeoutMs: 5000,
  });
}

Deno.test("listIssueAttachments() tolerates the nulls Data Center sends for unfilled fields", async () => {
  const pat = makeDcPat();
  const none = await listIssueAttachments(
    cannedClient({ key: "SUP-1", fields: null, names: null, schema: null, expand: null }),
    "https://jira.example.com",
    pat,
    "SUP-1",
  );
  assert.deepEqual(none, { issue_key: "SUP-1", attachments: [] });
  const nullList = await listIssueAttachments(
    cannedClient({ key: "SUP-1", fields: { attachment: null } }),
    "https://jira.example.com",
    pat,
    "SUP-1",
  );
  assert.deepEqual(nullList.attachments, []);
  const sparse = await listIssueAttachments(
    cannedClient({
      key: "SUP-1",
      fields: {
        attachment: [
          { id: 10403, filename: "x.bin", size: 5, mimeType: null, created: null, author: null },
          {
            id: "10404",
            filename: "y.bin",
            size: 6,
            created: "not a date",
            author: { name: "fred", displayName: null },
          },
        ],
      },
    }),
    "https://jira.example.com",
    pat,
    "SUP-1",
  );
  assert.deepEqual(sparse.attachments, [
    {
      id: "10403",
      filename: "x.bin",
      size: 5,
      mime_type: "application/octet-stream",
      created: "",
      author: "",
    },
    {
      id: "10404",
      filename: "y.bin",
      size: 6,
      mime_type: "application/octet-stream",
      created: "",
      author: "fred",
    },
  ]);
});

Deno.test("listIssueAttachments() answers upstream_unavailable for a body that is not an issue", async () => {
  const pat = makeDcPat();
  for (
    const body of [
      [],
      { fields: { attachment: [] } },
      { key: "SUP-1", fields: { attachment: [{ filename: "x", size: 1 }] } },
      { key: "SUP-1", fields: { attachment: [{ id: "1", filename: "x", size: -1 }] } },
      { key: "<script>", fields: {} },
    ]
  ) {
    await rejectsWith(
      listIssueAttachments(cannedClient(body), "https://jira.example.com", pat, "SUP-1"),
      "upstream_unavailable",
      pat,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// attachmentSettings()

Deno.test("attachmentSettings() reports enabled and uploadLimit from attachment/meta", async () => {
  await withJira({ uploadLimit: 123_456 }, async ({ server, pat }) => {
    assert.deepEqual(await attachmentSettings(client, server.url, pat), {
      enabled: true,
      uploadLimit: 123_456,
    });
    server.jira.setOptions({ attachmentsEnabled: false, uploadLimit: 10_485_760 });
    assert.deepEqual(await attachmentSettings(client, server.url, pat), {
      enabled: false,
      uploadLimit: 10_485_760,
    });
    const rec = server.jira.requests.at(-1)!;
    assert.equal(rec.path, "/rest/api/2/attachment/meta");
    assert.deepEqual(rec.violations, []);
  });
});

Deno.test("attachmentSettings() works under a context path and refuses a dead PAT", async () => {
  await withJira({ contextPath: "/jira" }, async ({ server, pat }) => {
    assert.equal((await attachmentSettings(client, server.url, pat)).enabled, true);
    assert.equal(server.jira.requests.at(-1)!.path, "/jira/rest/api/2/attachment/meta");
    server.jira.revokePat(pat);
    await rejectsWith(attachmentSettings(client, server.url, pat), "invalid_credentials", pat);
  });
});

Deno.test("attachmentSettings() tolerates nulls and refuses a body that is not the bean", async () => {
  const pat = makeDcPat();
  assert.deepEqual(
    await attachmentSettings(
      cannedClient({ enabled: null, uploadLimit: null }),
      "https://j.example",
      pat,
    ),
    { enabled: true, uploadLimit: null },
  );
  assert.deepEqual(
    await attachmentSettings(cannedClient({ enabled: true, uploadLimit: -1 }), "https://j", pat),
    { enabled: true, uploadLimit: null },
  );
  await rejectsWith(
    attachmentSettings(cannedClient({ enabled: "yes" }), "https://j.example", pat),
    "upstream_unavailable",
    pat,
  );
});
