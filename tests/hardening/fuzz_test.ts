/**
 * Fuzzing the intake and the tools (SECURITY_TESTS T14) with fast-check, against `sosvault
 * serve` running as a child process with the fake Jira on loopback HTTPS. More than 5,000
 * generated inputs — JSON bodies for POST /api/jira/connections and /api/sos/consents, forms
 * for the connect page, arguments for every MCP tool through the SDK client, and raw bodies
 * on an MCP session — including huge bodies, deep nesting, NUL, `__proto__`, invalid UTF-8 and
 * long strings. For every one of them: no 5xx except 502 upstream_unavailable, no
 * unexpected_error, unknown keys refused, the contract's error shape, and no form or piece of
 * a canary PAT in the answer. Afterwards the process is alive, /health answers, and its log has
 * no unhandled error.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { freshDir } from "../helpers/paths.ts";
import { serveProcess } from "../helpers/process.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { makeDcPat, newCanaryPat } from "../helpers/canary.ts";
import {
  addUsersDirect,
  assertNoLeak,
  childEnv,
  needlesOf,
  rawMcpSession,
  readRawAnswer,
} from "./_helpers.ts";

/** Cases per target; their sum is the size of the run. */
const RUNS = {
  connectJson: 1200,
  connectRaw: 500,
  consents: 400,
  connectPage: 1000,
  toolArgs: 1600,
  mcpRaw: 500,
};
const TOTAL = Object.values(RUNS).reduce((a, b) => a + b, 0);

const ALLOWED_HTTP = new Set([
  200,
  201,
  202,
  400,
  401,
  403,
  404,
  405,
  406,
  409,
  410,
  413,
  415,
  422,
  429,
  502,
]);
const enc = new TextEncoder();

function utf8(text: string): Uint8Array {
  return enc.encode(text);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Byte sequences that are not UTF-8: lone continuation, overlong NUL, a surrogate, truncation. */
const INVALID_UTF8 = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80], [0xf8, 0x88]];

/** JSON text of `entries` in order, duplicates and `__proto__` kept exactly as given. */
function objectText(entries: Array<[string, unknown]>): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`;
}

Deno.test(`${TOTAL} generated bodies and tool arguments never get a 5xx other than 502, never echo a canary, and never take the server down`, async (t) => {
  const dir = await freshDir("fuzz");
  const env = childEnv(dir);
  const tokens = await addUsersDirect(env.SOSVAULT_KV_PATH, ["alice", "bob"]);
  const alicePat = await newCanaryPat();
  const bobPat = await newCanaryPat();
  const jira = await startFakeJira();
  jira.jira.addUser({ name: "alice.jira", displayName: "Alice Example" });
  jira.jira.addUser({ name: "bob.jira", displayName: "Bob Example" });
  jira.jira.addPat("alice.jira", alicePat);
  jira.jira.addPat("bob.jira", bobPat);
  jira.jira.addIssue({ key: "SUP-1" });
  // The fake keeps every request in memory otherwise; thousands of them are not needed here.
  jira.jira.setOptions({ maxRecordedRequests: 100 });
  await Deno.mkdir(`${dir}/artifacts/alice`, { recursive: true, mode: 0o700 });
  await Deno.mkdir(`${dir}/artifacts/bob`, { recursive: true, mode: 0o700 });
  const small = `${dir}/artifacts/alice/small.txt`;
  await Deno.writeTextFile(small, "fuzz\n", { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/artifacts/bob/theirs.txt`, "bob\n", { mode: 0o600 });

  const server = await serveProcess(dir, env);
  let exited = false;
  server.child.status.then(() => (exited = true));
  const record = await Deno.open(`${dir}/fuzz-answers.log`, { append: true, create: true });
  let closeMcp = async () => {};
  try {
    const needles = needlesOf([alicePat, bobPat]);
    let cases = 0;

    const api = async (method: string, path: string, token: string, body?: unknown) => {
      const res = await fetch(server.url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    const connected = await api("POST", "/api/jira/connections", tokens.alice, {
      base_url: jira.url,
      pat: alicePat,
    });
    assert.equal(connected.status, 201);
    const aliceId: string = connected.body.connection_id;
    const spareId: string = (await api("POST", "/api/jira/connections", tokens.alice, {
      base_url: jira.url,
      pat: alicePat,
    })).body.connection_id;
    const bobId: string = (await api("POST", "/api/jira/connections", tokens.bob, {
      base_url: jira.url,
      pat: bobPat,
    })).body.connection_id;
    // Tool results are kept in fuzz-answers.log below, with every other answer.
    const mcp = await connectMcp(server.url, tokens.alice);
    closeMcp = () => mcp.close();

    /** Checks one HTTP answer and keeps a trimmed copy for the canary sweep. */
    const checkAnswer = (where: string, status: number, type: string, text: string) => {
      cases++;
      const kept = type.includes("text/html")
        ? (/<main[\s\S]*<\/main>/.exec(text)?.[0] ?? text.slice(0, 2000))
        : text.slice(0, 4000);
      record.writeSync(utf8(`${where} -> ${status}\n${kept}\n`));
      assert.ok(ALLOWED_HTTP.has(status), `${where}: answered ${status}: ${text.slice(0, 300)}`);
      assertNoLeak(text, needles, where);
      // /mcp answers protocol errors in JSON-RPC's shape; everything else in the contract's.
      if (type.includes("application/json") && status >= 400 && !where.includes("mcp")) {
        const body = JSON.parse(text);
        assert.deepEqual(Object.keys(body), ["error"], `${where}: ${text}`);
        assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "request_id"]);
        assert.notEqual(body.error.code, "unexpected_error", `${where}: ${text}`);
        if (status === 502) assert.equal(body.error.code, "upstream_unavailable");
      }
    };

    // ---- generators ---------------------------------------------------------------------------

    const canaryish = fc.constantFrom(
      alicePat,
      bobPat,
      `Bearer ${alicePat}`,
      encodeURIComponent(alicePat),
      `see ${alicePat} here`,
      alicePat.slice(0, 20) + "\u200b" + alicePat.slice(20),
      `${jira.url}/${alicePat}`,
    );
    const oddities = fc.constantFrom(
      "",
      " ",
      "\u0000",
      "a\u0000b",
      "__proto__",
      "constructor",
      "prototype",
      "toString",
      "../../../etc/passwd",
      "/etc/passwd",
      "%00",
      "%2e%2e%2f",
      "\ud800",
      "\udfff\ud800",
      "\uFEFF",
      "\u202e",
      "null",
      "1e309",
      "-0",
      "SUP-1",
      "sup-1",
      "SUP-999",
      "10001",
      "jc_" + "A".repeat(32),
      "<script>alert(1)</script>",
      '"><img src=x onerror=alert(1)>',
      "${7*7}{{7*7}}",
      "\r\nX-Injected: 1",
      "ATATT3xFfGF0" + "a".repeat(60),
      "ghp_" + "b".repeat(36),
      "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
    );
    const urlish = fc.oneof(
      fc.constantFrom(
        jira.url,
        `${jira.url}/`,
        `${jira.url}/jira`,
        `${jira.url}/rest/api/2`,
        jira.url.replace("https:", "http:"),
        "https://169.254.169.254/latest/meta-data",
        "https://localhost./",
        "https://[::ffff:127.0.0.1]",
        "https://2130706433",
        "https://0x7f.1",
        "https://[::1]",
        "https://0.0.0.0",
        "https://user:pw@127.0.0.1",
        "https://127.0.0.1:1",
        `${jira.url}?q=1`,
        `${jira.url}#frag`,
        "javascript:alert(1)",
        "file:///etc/passwd",
        "data:text/html,hi",
      ),
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      fc.webPath().map((p) => jira.url + p),
    );
    const longText = fc.integer({ min: 1_000, max: 80_000 }).map((n) => "x".repeat(n));
    const text = fc.oneof(
      { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
      { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
      { weight: 3, arbitrary: oddities },
      { weight: 2, arbitrary: canaryish },
      { weight: 2, arbitrary: urlish },
      { weight: 1, arbitrary: longText },
    );
    const anyJson = fc.oneof(
      { weight: 3, arbitrary: text },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
      { weight: 1, arbitrary: fc.constantFrom(null, true, 0, -1, 1e308, [], {}, [alicePat]) },
    );
    const key = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom("__proto__", "constructor", "prototype", "PAT", "pat ", "Base_URL", "ttl"),
      fc.constantFrom("admin", "user", "expires_at", "status", "connection_id", "\u0000"),
      canaryish,
    );
    /** Extra keys that are not among `known` (one case in four): each must make the call fail. */
    const extras = (known: string[]) =>
      fc.oneof(
        { weight: 3, arbitrary: fc.constant([] as Array<[string, unknown]>) },
        {
          weight: 1,
          arbitrary: fc.array(fc.tuple(key.filter((k) => !known.includes(k)), anyJson), {
            minLength: 1,
            maxLength: 3,
          }),
        },
      );
    /** PATs Jira knows (alice's, bob's), DC-shaped ones it does not, and anything else. */
    const patLike = fc.oneof(
      { weight: 3, arbitrary: canaryish },
      { weight: 2, arbitrary: fc.constant(null).map(() => makeDcPat()) },
      { weight: 2, arbitrary: anyJson },
    );
    const baseUrlLike = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(jira.url, `${jira.url}/`) },
      { weight: 3, arbitrary: urlish },
      { weight: 1, arbitrary: anyJson },
    );

    // ---- POST /api/jira/connections -------------------------------------------------------------

    await t.step(
      `POST /api/jira/connections: ${RUNS.connectJson} generated JSON bodies`,
      async () => {
        const body = fc.record({
          base_url: fc.option(baseUrlLike, { nil: undefined, freq: 8 }),
          pat: fc.option(patLike, { nil: undefined, freq: 8 }),
          extra: extras(["base_url", "pat"]),
          token: fc.constantFrom(tokens.alice, tokens.bob),
        });
        await fc.assert(
          fc.asyncProperty(body, async (b) => {
            const entries: Array<[string, unknown]> = [];
            if (b.base_url !== undefined) entries.push(["base_url", b.base_url]);
            if (b.pat !== undefined) entries.push(["pat", b.pat]);
            entries.push(...b.extra);
            const payload = objectText(entries);
            const res = await fetch(`${server.url}/api/jira/connections`, {
              method: "POST",
              headers: { authorization: `Bearer ${b.token}`, "content-type": "application/json" },
              body: payload,
            });
            const textBody = await res.text();
            checkAnswer(
              "POST /api/jira/connections",
              res.status,
              res.headers.get("content-type") ?? "",
              textBody,
            );
            if (b.extra.length > 0) {
              assert.ok([400, 413].includes(res.status), `unknown keys accepted: ${res.status}`);
            }
          }),
          {
            numRuns: RUNS.connectJson,
            endOnFailure: true,
            // Found by this fuzzer: a PAT with a non-ASCII character was an unexpected_error (500).
            examples: [[{
              base_url: jira.url,
              pat: alicePat.slice(0, 20) + "\u200b" + alicePat.slice(20),
              extra: [],
              token: tokens.alice,
            }]],
          },
        );
      },
    );

    await t.step(
      `POST /api/jira/connections: ${RUNS.connectRaw} raw bodies (bytes, invalid UTF-8, nesting, huge)`,
      async () => {
        const raw = fc.oneof(
          fc.uint8Array({ maxLength: 2048 }),
          fc.tuple(fc.json({ maxDepth: 2 }), fc.constantFrom(...INVALID_UTF8), fc.nat()).map(
            ([json, bad, at]) => {
              const bytes = utf8(json);
              const cut = at % (bytes.length + 1);
              return concat(bytes.slice(0, cut), Uint8Array.from(bad), bytes.slice(cut));
            },
          ),
          fc.integer({ min: 1, max: 50_000 }).map((n) => utf8("[".repeat(n) + "]".repeat(n))),
          fc.integer({ min: 1, max: 20_000 }).map((n) =>
            utf8('{"a":'.repeat(n) + "1" + "}".repeat(n))
          ),
          fc.integer({ min: 64 * 1024 - 40, max: 300 * 1024 }).map((n) =>
            utf8(objectText([["base_url", jira.url], ["pat", "p".repeat(n)]]))
          ),
          fc.constantFrom(
            '{"base_url":"https://127.0.0.1","pat":"\\u0000"}',
            '\uFEFF{"base_url":"https://127.0.0.1","pat":"x"}',
            '{"__proto__":{"admin":true},"base_url":"https://127.0.0.1","pat":"x"}',
            '{"constructor":{"prototype":{"polluted":true}}}',
            '{"pat":"a","pat":"b","base_url":"x"}',
            "null",
            "1",
            '"x"',
            "[]",
            "",
            "{",
            '{"base_url":"\\ud800","pat":"x"}',
          ).map(utf8),
        );
        const type = fc.constantFrom(
          "application/json",
          "application/json",
          "application/json; charset=utf-8",
          "application/json; charset=latin1",
          "text/plain",
          "application/x-www-form-urlencoded",
          "",
        );
        await fc.assert(
          fc.asyncProperty(raw, type, fc.boolean(), async (bytes, ct, streamed) => {
            const headers: Record<string, string> = { authorization: `Bearer ${tokens.alice}` };
            if (ct) headers["content-type"] = ct;
            // A streamed body has no Content-Length: the cap must hold while reading.
            const res = await fetch(`${server.url}/api/jira/connections`, {
              method: "POST",
              headers,
              body: streamed ? new Blob([bytes as BlobPart]).stream() : bytes as BodyInit,
            });
            checkAnswer(
              "POST /api/jira/connections (raw)",
              res.status,
              res.headers.get("content-type") ?? "",
              await res.text(),
            );
          }),
          { numRuns: RUNS.connectRaw, endOnFailure: true },
        );
      },
    );

    // ---- POST /api/sos/consents ---------------------------------------------------------------

    await t.step(`POST /api/sos/consents: ${RUNS.consents} generated bodies`, async () => {
      const body = fc.oneof(
        fc.constant(undefined),
        fc.constant("{}"),
        extras([]).filter((e) => e.length > 0).map(objectText),
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        fc.uint8Array({ maxLength: 512 }),
        fc.integer({ min: 60 * 1024, max: 200 * 1024 }).map((n) =>
          objectText([["x", "y".repeat(n)]])
        ),
      );
      await fc.assert(
        fc.asyncProperty(body, async (b) => {
          const res = await fetch(`${server.url}/api/sos/consents`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${tokens.alice}`,
              ...(b === undefined ? {} : { "content-type": "application/json" }),
            },
            body: b as BodyInit | undefined,
          });
          const textBody = await res.text();
          checkAnswer(
            "POST /api/sos/consents",
            res.status,
            res.headers.get("content-type") ?? "",
            textBody,
          );
          if (b === undefined || b === "{}") assert.equal(res.status, 201, textBody);
          else if (typeof b === "string" && /^\{"/.test(b)) {
            assert.ok(
              [400, 413].includes(res.status),
              `a body with fields was accepted: ${res.status}`,
            );
          }
        }),
        { numRuns: RUNS.consents, endOnFailure: true },
      );
    });

    // ---- the connect page -----------------------------------------------------------------------

    await t.step(`POST /connect/{code}: ${RUNS.connectPage} generated forms`, async () => {
      let code = "";
      let uses = 0;
      const freshCode = async () => {
        const r = await mcp.call("jira_connect", {});
        return new URL(r.structuredContent.connect_url).pathname.split("/").pop()!;
      };
      const codeArb = fc.oneof(
        { weight: 6, arbitrary: fc.constant("live") },
        { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map(encodeURIComponent) },
        {
          weight: 1,
          arbitrary: fc.constantFrom("A".repeat(32), "..%2f..%2fetc", "%00", "x".repeat(3000)),
        },
      );
      const asText = (v: unknown) => typeof v === "string" ? v : JSON.stringify(v) ?? "";
      const fields = fc.tuple(
        fc.option(baseUrlLike.map(asText), { nil: undefined, freq: 8 }),
        fc.option(patLike.map(asText), { nil: undefined, freq: 8 }),
        extras(["base_url", "pat"]),
      ).map(([b, p, x]) => {
        const entries: Array<[string, string]> = [];
        if (b !== undefined) entries.push(["base_url", b]);
        if (p !== undefined) entries.push(["pat", p]);
        for (const [k, v] of x) entries.push([k, asText(v)]);
        return entries;
      });
      const form = fc.oneof(
        { weight: 8, arbitrary: fields.map((fs) => utf8(new URLSearchParams(fs).toString())) },
        {
          weight: 1,
          arbitrary: fc.tuple(
            fc.constantFrom("base_url=", "pat=", "x="),
            fc.constantFrom("%FF", "%C0%80", "%ED%A0%80", "%", "%zz", "%00"),
          ).map(([a, b]) => utf8(`${a}${b}&pat=x`)),
        },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 1024 }) },
        {
          weight: 1,
          arbitrary: fc.integer({ min: 16 * 1024 - 20, max: 100 * 1024 }).map((n) =>
            utf8(`base_url=${jira.url}&pat=${"p".repeat(n)}`)
          ),
        },
      );
      const headers = fc.record({
        type: fc.constantFrom(
          "application/x-www-form-urlencoded",
          "application/x-www-form-urlencoded",
          "application/x-www-form-urlencoded; charset=utf-8",
          "multipart/form-data; boundary=x",
          "application/json",
          "",
        ),
        site: fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom(undefined, "same-origin") },
          { weight: 1, arbitrary: fc.constantFrom("cross-site", "same-site", "none") },
        ),
        origin: fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom(undefined, "self") },
          { weight: 1, arbitrary: fc.constantFrom("null", "https://evil.example") },
        ),
      });
      await fc.assert(
        fc.asyncProperty(codeArb, form, headers, async (c, body, h) => {
          let path = c;
          if (c === "live") {
            // A link survives four failed attempts; a new one every four uses keeps most live.
            if (uses++ % 4 === 0) code = await freshCode();
            path = code;
          }
          const hs: Record<string, string> = {};
          if (h.type) hs["content-type"] = h.type;
          if (h.site) hs["sec-fetch-site"] = h.site;
          if (h.origin) hs.origin = h.origin === "self" ? server.url : h.origin;
          const res = await fetch(`${server.url}/connect/${path}`, {
            method: "POST",
            headers: hs,
            body: body as BodyInit,
          });
          const type = res.headers.get("content-type") ?? "";
          checkAnswer("POST /connect/{code}", res.status, type, await res.text());
          assert.match(type, /^text\/html/, "the connect page answers HTML only");
          const names = [...new URLSearchParams(new TextDecoder().decode(body)).keys()];
          if (names.some((n) => n !== "base_url" && n !== "pat")) {
            assert.notEqual(res.status, 200, "a form with unknown fields connected");
          }
        }),
        {
          numRuns: RUNS.connectPage,
          endOnFailure: true,
          // Found by this fuzzer: a PAT pasted into the base URL field, with another token in
          // the PAT field, came back in the retry form.
          examples: [[
            "live",
            utf8(
              new URLSearchParams({ base_url: `${jira.url}/${alicePat}`, pat: bobPat }).toString(),
            ),
            { type: "application/x-www-form-urlencoded", site: "same-origin", origin: "self" },
          ]],
        },
      );
    });

    // ---- MCP tool arguments through the SDK client --------------------------------------------

    await t.step(`tools/call: ${RUNS.toolArgs} generated arguments across every tool`, async () => {
      const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 10 });
      const wrong = fc.constantFrom(null, 0, true, [], {}, ["SUP-1"], { $ref: "x" });
      const val = <T>(a: fc.Arbitrary<T>) =>
        fc.oneof({ weight: 12, arbitrary: a }, { weight: 2, arbitrary: text }, {
          weight: 1,
          arbitrary: wrong,
        });
      const pick = <T>(likely: T, ...others: T[]) =>
        fc.oneof({ weight: 3, arbitrary: fc.constant(likely) }, {
          weight: 2,
          arbitrary: fc.constantFrom(...others),
        });
      const connection = pick(aliceId, bobId, "jc_" + "Q".repeat(32), "jc_x", "");
      const revocable = fc.constantFrom(spareId, bobId, "jc_" + "R".repeat(32));
      const issue = pick("SUP-1", "sup-1", "SUP-999", "10001", "NOPE-1", "a-1");
      const artifact = pick(
        small,
        small,
        "/etc/passwd",
        `${dir}/artifacts/bob/theirs.txt`,
        `${dir}/artifacts/alice/../bob/theirs.txt`,
        `${dir}/artifacts/alice/missing.bin`,
        `${dir}/artifacts/alice`,
        "relative.txt",
        `${small}\u0000.png`,
      );
      const archive = fc.constantFrom(
        "/var/tmp/sosreport-host-linux-mcp-sos-2026-11-24-abcdefg.tar.xz",
        "/var/tmp/../etc/shadow",
        "/etc/shadow",
        "/var/tmp/sosreport-host-linux-mcp-sos-2026-11-24-abcdefg.tar.xz /etc/shadow",
      );
      const shapes: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
        jira_connect: fc.record({ base_url: opt(val(urlish)) }),
        jira_connection_status: fc.record({ connection_id: opt(val(connection)) }),
        jira_list_attachments: fc.record({
          connection_id: opt(val(connection)),
          issue_key: opt(val(issue)),
        }),
        jira_attach_artifact: fc.record({
          connection_id: opt(val(connection)),
          issue_key: opt(val(issue)),
          artifact_ref: opt(val(artifact)),
          filename: opt(
            val(fc.constantFrom("x.txt", "../x", "a/b", "con", "é.txt", "x".repeat(300))),
          ),
        }),
        jira_revoke_connection: fc.record({ connection_id: opt(val(revocable)) }),
        generate_sosreport: fc.record({
          consent_token: opt(val(fc.constantFrom("sc_" + "A".repeat(40), "sc_"))),
          // The change-approval fields (issue 13): approval is off here, so they are accepted
          // and unused; the fuzz still proves no value of theirs escapes as unexpected_error.
          change_request: opt(val(fc.constantFrom("CR-1042", "cr 1", "x".repeat(301)))),
          connection_id: opt(val(connection)),
        }),
        sosreport_status: fc.record({
          job_id: opt(val(fc.constantFrom("job_" + "A".repeat(24), "job_"))),
        }),
        fetch_sosreport: fc.record({
          job_id: opt(val(fc.constantFrom("job_" + "B".repeat(24)))),
          archive_path: opt(val(archive)),
        }),
      };
      const known: Record<string, string[]> = {
        jira_connect: ["base_url"],
        jira_connection_status: ["connection_id"],
        jira_list_attachments: ["connection_id", "issue_key"],
        jira_attach_artifact: ["connection_id", "issue_key", "artifact_ref", "filename"],
        jira_revoke_connection: ["connection_id"],
        generate_sosreport: ["consent_token", "change_request", "connection_id"],
        sosreport_status: ["job_id"],
        fetch_sosreport: ["job_id", "archive_path"],
        no_such_tool: [],
      };
      const call = fc.constantFrom(...Object.keys(known)).chain((name) =>
        fc.tuple(fc.constant(name), shapes[name] ?? fc.constant({}), extras(known[name]))
      );
      await fc.assert(
        fc.asyncProperty(call, async ([name, args, extra]) => {
          const fields = Object.entries(args).filter(([, v]) => v !== undefined);
          const unknown = extra;
          const json = objectText([...fields, ...unknown]);
          let result;
          try {
            result = await mcp.call(name, JSON.parse(json));
          } catch (err) {
            // A `__proto__` key is refused for the whole message, before any tool (HTTP 400).
            assert.ok(json.includes('"__proto__":'), `${name}: ${err}`);
            assert.match(String(err), /HTTP 400|__proto__/);
            cases++;
            return;
          }
          const textResult = JSON.stringify(result);
          cases++;
          record.writeSync(utf8(`tools/call ${name} -> ${textResult.slice(0, 2000)}\n`));
          assertNoLeak(textResult, needles, `tools/call ${name}`);
          if (result.isError) {
            const err = toolError(result);
            assert.notEqual(err.code, "unexpected_error", `${name}: ${err.message}`);
          }
          if (unknown.length > 0 || name === "no_such_tool") {
            const code = toolError(result).code;
            assert.ok(["invalid_input", "secret_rejected"].includes(code), `${name}: ${code}`);
          }
        }),
        {
          numRuns: RUNS.toolArgs,
          endOnFailure: true,
          // Found by this fuzzer: the SDK turned a `__proto__` key into a prototype, unseen.
          examples: [[["jira_revoke_connection", { connection_id: spareId }, [["__proto__", -1]]]]],
        },
      );
      const still = await mcp.call("jira_connection_status", { connection_id: aliceId });
      assert.equal(
        still.structuredContent.status,
        "connected",
        "the fuzz never revoked alice's main connection",
      );
    });

    // ---- raw bodies on an MCP session ---------------------------------------------------------

    await t.step(`POST /mcp: ${RUNS.mcpRaw} raw JSON-RPC bodies on a live session`, async () => {
      const session = await rawMcpSession(server.url, tokens.alice);
      const rpc = (method: unknown, params: unknown, id: unknown = 1) =>
        JSON.stringify({ jsonrpc: "2.0", id, method, params });
      const body = fc.oneof(
        fc.uint8Array({ maxLength: 1024 }),
        fc.tuple(fc.json({ maxDepth: 2 }), fc.constantFrom(...INVALID_UTF8)).map(([j, bad]) =>
          concat(utf8(j), Uint8Array.from(bad))
        ),
        fc.integer({ min: 1, max: 50_000 }).map((n) => utf8("[".repeat(n) + "]".repeat(n))),
        fc.integer({ min: 1, max: 5_000 }).map((n) =>
          utf8(
            rpc("tools/call", {
              name: "jira_connection_status",
              arguments: JSON.parse('{"a":'.repeat(n) + "1" + "}".repeat(n)),
            }),
          )
        ),
        fc.integer({ min: 1024 * 1024 - 100, max: 1200 * 1024 }).map((n) =>
          utf8(rpc("tools/call", { name: "jira_connect", arguments: { base_url: "h".repeat(n) } }))
        ),
        fc.tuple(
          fc.oneof(
            fc.string(),
            fc.constantFrom(
              "tools/call",
              "tools/list",
              "initialize",
              "ping",
              "resources/list",
              "__proto__",
            ),
          ),
          fc.jsonValue({ maxDepth: 3 }),
          fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constant(undefined)),
        ).map(
          ([m, p, id]) => utf8(rpc(m, p, id)),
        ),
        fc.tuple(
          fc.oneof(fc.string(), fc.constantFrom("jira_connection_status", "jira_attach_artifact")),
          anyJson,
        ).map(([name, args]) => utf8(rpc("tools/call", { name, arguments: args }))),
        fc.constantFrom(
          `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"jira_connection_status","arguments":{"__proto__":{"connection_id":"${aliceId}"}}}}`,
          `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"jira_list_attachments","arguments":{"connection_id":"${aliceId}","issue_key":"SUP-1\\u0000"}}}`,
          `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`,
          `{"jsonrpc":"2.0","id":1e400,"method":"ping"}`,
          `{"jsonrpc":"1.0","id":1,"method":"ping"}`,
          `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
          `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"jira_connect","arguments":{"base_url":"${alicePat}"}}}`,
          "",
          "null",
        ).map(utf8),
      );
      const extraHeaders = fc.constantFrom<Record<string, string>>(
        {},
        {},
        {},
        { "content-type": "text/plain" },
        { accept: "application/json" },
        { "mcp-protocol-version": "1999-01-01" },
      );
      await fc.assert(
        fc.asyncProperty(body, extraHeaders, async (b, h) => {
          const answer = await session.post(b as BodyInit, h);
          checkAnswer("mcp raw", answer.status, answer.contentType, answer.text);
          for (const m of answer.messages) {
            const msg = m as { result?: { isError?: boolean; content?: Array<{ text: string }> } };
            if (msg.result?.isError) {
              const code = JSON.parse(msg.result.content![0].text).error.code;
              assert.notEqual(code, "unexpected_error");
            }
          }
        }),
        { numRuns: RUNS.mcpRaw, endOnFailure: true },
      );
      const list = await session.post(
        JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
      );
      assert.equal(list.status, 200, "the session survived its fuzzing");
      await session.close();
    });

    // ---- ten-megabyte bodies ------------------------------------------------------------------

    await t.step(
      "10 MB bodies are refused without reading them whole, on every intake",
      async () => {
        const big = new Uint8Array(10 * 1024 * 1024).fill(0x61);
        for (
          const [path, type] of [
            ["/api/jira/connections", "application/json"],
            ["/api/sos/consents", "application/json"],
            ["/connect/" + "A".repeat(32), "application/x-www-form-urlencoded"],
            ["/mcp", "application/json"],
          ]
        ) {
          for (const streamed of [false, true]) {
            try {
              const res = await fetch(server.url + path, {
                method: "POST",
                headers: {
                  authorization: `Bearer ${tokens.alice}`,
                  "content-type": type,
                  accept: "application/json, text/event-stream",
                },
                body: streamed ? new Blob([big]).stream() : big,
              });
              const answer = await readRawAnswer(res);
              checkAnswer(`POST ${path} (10 MB)`, answer.status, answer.contentType, answer.text);
              assert.ok([400, 404, 413].includes(answer.status), `${path}: ${answer.status}`);
            } catch (err) {
              // Refusing early may close the connection before the client finished sending.
              assert.match(String(err), /connection|reset|broken pipe|closed/i);
              cases++;
            }
          }
        }
      },
    );

    assert.ok(cases >= 5000, `only ${cases} cases ran`);
    assert.equal(exited, false, "the server process is alive");
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, "healthy");
    const unhandled = server.lines.filter((l) => /unhandled|uncaught|panicked/i.test(l));
    assert.deepEqual(unhandled, [], "no unhandled error in the server's output");
    assertNoLeak(server.lines.join("\n"), needles, "the server's log");
  } finally {
    record.close();
    await closeMcp();
    await server.stop();
    await jira.close();
  }
});
