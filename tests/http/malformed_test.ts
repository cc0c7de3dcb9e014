/**
 * Bad input gets a clear 4xx in the contract's shape — never a 500, never a stack trace, and
 * nothing is stored. Each row is one malformed request against the real server.
 */
import assert from "node:assert/strict";
import { errorOf, startWorld } from "../helpers/world.ts";
import { kvKeys } from "../../src/kv_keys.ts";

interface Row {
  name: string;
  method?: string;
  path?: string;
  body?: BodyInit;
  json?: unknown;
  headers?: Record<string, string>;
  auth?: "alice" | "none" | "garbage";
  status: number;
  code: string;
}

const C = "/api/jira/connections";
const J = { "content-type": "application/json" };
const BIG = "x".repeat(70 * 1024);

function rows(jira: string): Row[] {
  return [
    { name: "no body", path: C, headers: J, status: 400, code: "invalid_input" },
    { name: "empty JSON object", path: C, json: {}, status: 400, code: "invalid_input" },
    { name: "JSON array", path: C, json: [], status: 400, code: "invalid_input" },
    { name: "JSON string", path: C, json: "hello", status: 400, code: "invalid_input" },
    { name: "JSON null", path: C, json: null, status: 400, code: "invalid_input" },
    {
      name: "truncated JSON",
      path: C,
      body: '{"base_url": "https://x"',
      headers: J,
      status: 400,
      code: "invalid_input",
    },
    {
      name: "trailing garbage",
      path: C,
      body: '{"base_url":"a","pat":"b"} x',
      headers: J,
      status: 400,
      code: "invalid_input",
    },
    {
      name: "invalid UTF-8",
      path: C,
      body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
      headers: J,
      status: 400,
      code: "invalid_input",
    },
    {
      name: "UTF-16 body",
      path: C,
      body: new Uint8Array([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]),
      headers: J,
      status: 400,
      code: "invalid_input",
    },
    {
      name: "form-encoded body",
      path: C,
      body: "base_url=x&pat=y",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "text/plain body",
      path: C,
      body: "{}",
      headers: { "content-type": "text/plain" },
      status: 400,
      code: "invalid_input",
    },
    { name: "no content type", path: C, body: "{}", status: 400, code: "invalid_input" },
    {
      name: "JSON with a latin-1 charset",
      path: C,
      body: "{}",
      headers: { "content-type": "application/json; charset=latin1" },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "unknown field",
      path: C,
      json: { base_url: jira, pat: "p".repeat(44), extra: 1 },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "__proto__ field",
      path: C,
      body: `{"base_url":"${jira}","pat":"x","__proto__":{"admin":true}}`,
      headers: J,
      status: 400,
      code: "invalid_input",
    },
    { name: "missing pat", path: C, json: { base_url: jira }, status: 400, code: "invalid_input" },
    { name: "missing base_url", path: C, json: { pat: "abc" }, status: 400, code: "invalid_input" },
    {
      name: "pat is a number",
      path: C,
      json: { base_url: jira, pat: 12345 },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "pat is an object",
      path: C,
      json: { base_url: jira, pat: { v: "x" } },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "empty pat",
      path: C,
      json: { base_url: jira, pat: "" },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "pat with a space",
      path: C,
      json: { base_url: jira, pat: "Bearer abcdef" },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "pat with a NUL",
      path: C,
      json: { base_url: jira, pat: "abc\u0000def" },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "huge pat",
      path: C,
      json: { base_url: jira, pat: "a".repeat(5000) },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "base_url is empty",
      path: C,
      json: { base_url: "", pat: "abc" },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "base_url is plain http",
      path: C,
      json: { base_url: jira.replace("https", "http"), pat: "abc" },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "base_url with javascript:",
      path: C,
      json: { base_url: "javascript:alert(1)", pat: "abc" },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "base_url with a fragment",
      path: C,
      json: { base_url: jira + "#x", pat: "abc" },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "body over 64 KiB",
      path: C,
      json: { base_url: jira, pat: BIG },
      status: 413,
      code: "payload_too_large",
    },
    {
      name: "pat is an array",
      path: C,
      json: { base_url: jira, pat: ["a", "b"] },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "deeply nested JSON",
      path: C,
      body: "[".repeat(5000) + "]".repeat(5000),
      headers: J,
      status: 400,
      code: "invalid_input",
    },
    {
      name: "unknown query parameter on POST",
      path: `${C}?admin=1`,
      json: { base_url: jira, pat: "abc" },
      status: 400,
      code: "invalid_input",
    },
    {
      name: "malformed connection id",
      method: "GET",
      path: `${C}/not-an-id`,
      status: 400,
      code: "invalid_input",
    },
    {
      name: "connection id with traversal",
      method: "GET",
      path: `${C}/..%2f..%2fetc`,
      status: 400,
      code: "invalid_input",
    },
    {
      name: "overlong connection id",
      method: "GET",
      path: `${C}/jc_${"a".repeat(300)}`,
      status: 400,
      code: "invalid_input",
    },
    {
      name: "bad verify value",
      method: "GET",
      path: `${C}/jc_${"A".repeat(32)}?verify=yes`,
      status: 400,
      code: "invalid_input",
    },
    {
      name: "unknown query on GET",
      method: "GET",
      path: `${C}?limit=5`,
      status: 400,
      code: "invalid_input",
    },
    { name: "unknown route", method: "GET", path: "/api/nothing", status: 404, code: "not_found" },
    { name: "wrong method", method: "PUT", path: C, json: {}, status: 404, code: "not_found" },
    {
      name: "no Authorization",
      path: C,
      json: { base_url: jira, pat: "abc" },
      auth: "none",
      status: 401,
      code: "unauthenticated",
    },
    {
      name: "garbage Authorization",
      path: C,
      json: { base_url: jira, pat: "abc" },
      auth: "garbage",
      status: 401,
      code: "unauthenticated",
    },
    {
      name: "Basic Authorization",
      path: C,
      json: {},
      headers: { authorization: "Basic YWxpY2U6cHc=" },
      auth: "none",
      status: 401,
      code: "unauthenticated",
    },
    {
      name: "bad events type",
      method: "GET",
      path: "/api/security-events?type=nope",
      status: 400,
      code: "invalid_input",
    },
    {
      name: "bad events since",
      method: "GET",
      path: "/api/security-events?since=yesterday",
      status: 400,
      code: "invalid_input",
    },
    {
      name: "bad events limit",
      method: "GET",
      path: "/api/security-events?limit=-1",
      status: 400,
      code: "invalid_input",
    },
  ];
}

Deno.test("a table of malformed requests each get a 4xx in the contract's shape and store nothing", async () => {
  const w = await startWorld();
  try {
    const table = rows(w.jira.url);
    assert.ok(table.length >= 30);
    for (const r of table) {
      const token = r.auth === "none"
        ? undefined
        : r.auth === "garbage"
        ? "svt_garbage_garbage_garbage_x"
        : w.alice.token;
      const res = await w.server.call(r.method ?? "POST", r.path ?? C, {
        token,
        json: r.json,
        body: r.body,
        headers: r.headers,
      });
      assert.equal(res.status, r.status, `${r.name}: ${res.status} ${res.text}`);
      const err = errorOf(res);
      assert.equal(err.code, r.code, r.name);
      assert.ok(!/\bat .*\.ts:\d+|Error:|stack/i.test(res.text), `${r.name}: no stack trace`);
      if (r.status === 401) assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
    }
    assert.equal(
      (await Array.fromAsync(w.server.services.kv.list({ prefix: kvKeys.allConnections() })))
        .length,
      0,
    );
    assert.equal(w.jira.jira.requests.length, 0, "no malformed request reached Jira");
  } finally {
    await w.close();
  }
});

Deno.test("an error message never echoes the submitted PAT or an unknown field that looks like one", async () => {
  const w = await startWorld();
  try {
    const res = await w.server.call("POST", C, {
      token: w.alice.token,
      json: { base_url: "http://x", pat: w.alice.pat, [w.bob.pat]: 1 },
    });
    assert.equal(res.status, 400);
    assert.ok(!res.text.includes(w.alice.pat));
    assert.ok(!res.text.includes(w.bob.pat));
  } finally {
    await w.close();
  }
});
