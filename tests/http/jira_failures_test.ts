/**
 * How Jira's failures reach the user: every answer of a real Jira (and of what stands in front
 * of it) maps to one contract code, with a message that says what to do and no upstream body.
 */
import assert from "node:assert/strict";
import { errorOf, startWorld, type World } from "../helpers/world.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import type { FakeJiraMode } from "../../src/jira/fake/mod.ts";

async function connectWith(w: World, base: string, pat = w.alice.pat) {
  return await w.server.call("POST", "/api/jira/connections", {
    token: w.alice.token,
    json: { base_url: base, pat },
  });
}

const MODES: Array<[FakeJiraMode, number, string, RegExp]> = [
  ["sso_redirect", 422, "invalid_credentials", /login or single sign-on page/],
  ["sso_saml_form", 422, "invalid_credentials", /login or single sign-on page/],
  ["login_page", 422, "invalid_credentials", /login or single sign-on page/],
  ["server_error", 502, "upstream_unavailable", /HTTP 500/],
  ["unavailable", 502, "upstream_unavailable", /HTTP 503/],
  ["rate_limited", 429, "rate_limited", /try again in 2 seconds/],
];

for (const [mode, status, code, message] of MODES) {
  Deno.test(`connecting while Jira is in '${mode}' mode answers ${status} ${code} and stores nothing`, async () => {
    const w = await startWorld();
    try {
      w.jira.jira.setMode(mode);
      const res = await connectWith(w, w.jira.url);
      assert.equal(res.status, status, res.text);
      const err = errorOf(res);
      assert.equal(err.code, code);
      assert.match(err.message, message);
      assert.ok(!/<html|<form|SAMLRequest/i.test(res.text), "no upstream body in the answer");
      if (code === "rate_limited") assert.equal(res.headers.get("retry-after"), "2");
      const list = await w.server.call("GET", "/api/jira/connections", { token: w.alice.token });
      assert.deepEqual(list.body.connections, []);
    } finally {
      await w.close();
    }
  });
}

Deno.test("retryable Jira answers on GET are retried a bounded number of times", async () => {
  const w = await startWorld();
  try {
    w.jira.jira.setMode("unavailable");
    await connectWith(w, w.jira.url);
    const calls = w.jira.jira.requests.filter((r) => r.path.endsWith("/myself")).length;
    assert.equal(calls, 3, "one try and two retries");
  } finally {
    await w.close();
  }
});

Deno.test("a 401 in the REST JSON form is invalid_credentials too", async () => {
  const w = await startWorld();
  try {
    w.jira.jira.setOptions({ unauthorizedBody: "json" });
    const res = await connectWith(w, w.jira.url, "MTExMTExMTExMTExOn9/f39/f39/f39/f39/f39/f38A");
    assert.equal(res.status, 422);
    assert.equal(errorOf(res).code, "invalid_credentials");
  } finally {
    await w.close();
  }
});

Deno.test("a Jira whose certificate the configured CA did not sign is upstream_unavailable (TLS)", async () => {
  const w = await startWorld();
  const rogue = await startFakeJira({ tls: "rogue", jira: w.jira.jira });
  try {
    const res = await connectWith(w, rogue.url);
    assert.equal(res.status, 502);
    const err = errorOf(res);
    assert.equal(err.code, "upstream_unavailable");
    assert.match(err.message, /TLS/);
    assert.equal(w.jira.jira.requests.length, 0, "no request reaches an untrusted server");
  } finally {
    await rogue.close();
    await w.close();
  }
});

Deno.test("a Jira slower than JIRA_TIMEOUT_SECONDS is upstream_unavailable with a timeout message", async () => {
  const w = await startWorld({ env: { JIRA_TIMEOUT_SECONDS: "1" } });
  try {
    w.jira.jira.setOptions({ latencyMs: 1500 });
    const res = await connectWith(w, w.jira.url);
    assert.equal(res.status, 502);
    assert.match(errorOf(res).message, /did not answer in time/);
  } finally {
    await w.close();
  }
});

Deno.test("an unreachable Jira is upstream_unavailable", async () => {
  const w = await startWorld();
  try {
    const closed = await startFakeJira();
    const url = closed.url;
    await closed.close();
    const res = await connectWith(w, url);
    assert.equal(res.status, 502);
    assert.equal(errorOf(res).code, "upstream_unavailable");
  } finally {
    await w.close();
  }
});

Deno.test("a wrong context path (Jira's HTML 404) is not_found with a hint about the path", async () => {
  const w = await startWorld();
  try {
    const res = await connectWith(w, w.jira.url + "/wrong");
    assert.equal(res.status, 404);
    assert.match(errorOf(res).message, /context path/);
  } finally {
    await w.close();
  }
});

Deno.test("base URLs that are not HTTPS, carry credentials, or point at internal or unlisted hosts are refused before any call", async () => {
  const w = await startWorld();
  try {
    const cases: Array<[string, number, string]> = [
      ["http://127.0.0.1:1/", 400, "invalid_input"],
      ["ftp://jira.example.com", 400, "invalid_input"],
      ["not a url", 400, "invalid_input"],
      ["https://user:pw@127.0.0.1/", 400, "invalid_input"],
      ["https://127.0.0.1/?x=1", 400, "invalid_input"],
      ["https://jira.example.com", 403, "forbidden"],
      ["https://169.254.169.254/", 403, "forbidden"],
    ];
    for (const [base, status, code] of cases) {
      const res = await connectWith(w, base);
      assert.equal(res.status, status, `${base}: ${res.text}`);
      assert.equal(errorOf(res).code, code);
    }
    assert.equal(w.jira.jira.requests.length, 0);
  } finally {
    await w.close();
  }
});
