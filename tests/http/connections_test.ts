/**
 * The connection API end to end: real server, real KV on disk, fake Jira over HTTPS.
 */
import assert from "node:assert/strict";
import { errorOf, startWorld } from "../helpers/world.ts";
import { TestClock } from "../helpers/clock.ts";
import { kvKeys } from "../../src/kv_keys.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

Deno.test("GET /health answers without authentication", async () => {
  const w = await startWorld();
  try {
    const res = await w.server.call("GET", "/health");
    assert.equal(res.status, 200);
    assert.equal(res.body.status, "healthy");
    assert.equal(res.body.service, "sosvault");
    assert.match(res.body.version, /^\d+\.\d+\.\d+/);
    assert.match(res.body.timestamp, ISO);
    assert.match(res.headers.get("x-request-id") ?? "", /^req_/);
  } finally {
    await w.close();
  }
});

Deno.test("POST /api/jira/connections verifies the PAT with Jira and returns only an opaque id", async () => {
  const w = await startWorld();
  try {
    const res = await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: { base_url: w.jira.url + "/", pat: w.alice.pat },
    });
    assert.equal(res.status, 201, res.text);
    const c = res.body;
    assert.deepEqual(Object.keys(c).sort(), [
      "base_url",
      "connection_id",
      "created_at",
      "deployment",
      "expires_at",
      "jira_user",
      "key_version",
      "last_verified_at",
      "revoked_at",
      "status",
    ]);
    assert.match(c.connection_id, /^jc_[A-Za-z0-9_-]{32}$/);
    assert.equal(c.status, "connected");
    assert.equal(c.base_url, w.jira.url);
    // Issue 12: every connection says its kind; this Jira's serverInfo says "Server".
    assert.equal(c.deployment, "data_center");
    assert.deepEqual(c.jira_user, { name: "alice.jira", display_name: "Alice Example" });
    assert.match(c.created_at, ISO);
    assert.equal(Date.parse(c.expires_at) - Date.parse(c.created_at), 28800 * 1000);
    assert.equal(c.revoked_at, null);
    assert.ok(!res.text.includes(w.alice.pat));

    const myself = w.jira.jira.requests.filter((r) => r.path.endsWith("/rest/api/2/myself"));
    assert.equal(myself.length, 1);
    assert.equal(myself[0].headers["authorization"], `Bearer ${w.alice.pat}`);
    assert.equal(myself[0].headers["cookie"], undefined);
    assert.deepEqual(myself[0].violations, []);

    const events = await w.server.services.events.list({ type: "connect" });
    assert.equal(events.length, 1);
    assert.equal(events[0].outcome, "success");
    assert.equal(events[0].connection_id, c.connection_id);
    assert.equal(events[0].source, "http");
  } finally {
    await w.close();
  }
});

Deno.test("a PAT Jira rejects is invalid_credentials and nothing is stored", async () => {
  const w = await startWorld();
  try {
    w.jira.jira.revokePat(w.alice.pat);
    const res = await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: { base_url: w.jira.url, pat: w.alice.pat },
    });
    assert.equal(res.status, 422);
    assert.equal(errorOf(res).code, "invalid_credentials");
    const kv = w.server.services.kv;
    for (const prefix of [kvKeys.allConnections(), kvKeys.allSecrets()]) {
      assert.equal((await Array.fromAsync(kv.list({ prefix }))).length, 0);
    }
    const [event] = await w.server.services.events.list({ type: "connect" });
    assert.equal(event.outcome, "failure");
    assert.equal(event.error_code, "invalid_credentials");
  } finally {
    await w.close();
  }
});

Deno.test("GET lists only the caller's own connections; GET by id and ?verify=1 re-check with Jira", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock });
  try {
    const a1 = await w.connect(w.alice);
    const a2 = await w.connect(w.alice);
    await w.connect(w.bob);
    const list = await w.server.call("GET", "/api/jira/connections", { token: w.alice.token });
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.connections.map((c: { connection_id: string }) => c.connection_id).sort(),
      [a1, a2].sort(),
    );

    const got = await w.server.call("GET", `/api/jira/connections/${a1}`, { token: w.alice.token });
    assert.equal(got.status, 200);
    assert.equal(got.body.connection_id, a1);

    clock.advance(60_000);
    const before = w.jira.jira.requests.length;
    const verified = await w.server.call("GET", `/api/jira/connections/${a1}?verify=1`, {
      token: w.alice.token,
    });
    assert.equal(verified.status, 200, verified.text);
    assert.equal(verified.body.last_verified_at, clock.now().toISOString());
    assert.equal(w.jira.jira.requests.length, before + 1);
  } finally {
    await w.close();
  }
});

Deno.test("?verify=1 after Jira revoked the PAT is invalid_credentials", async () => {
  const w = await startWorld();
  try {
    const id = await w.connect(w.alice);
    w.jira.jira.revokePat(w.alice.pat);
    const res = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: w.alice.token,
    });
    assert.equal(res.status, 422);
    assert.equal(errorOf(res).code, "invalid_credentials");
    const [event] = await w.server.services.events.list({ type: "verify" });
    assert.equal(event.outcome, "failure");
  } finally {
    await w.close();
  }
});

Deno.test("DELETE revokes at once, deletes the ciphertext, is idempotent, and any use after is connection_revoked", async () => {
  const w = await startWorld();
  try {
    const id = await w.connect(w.alice);
    const kv = w.server.services.kv;
    assert.ok((await kv.get(kvKeys.secret(id))).value);
    const res = await w.server.call("DELETE", `/api/jira/connections/${id}`, {
      token: w.alice.token,
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, "revoked");
    assert.match(res.body.revoked_at, ISO);
    assert.equal((await kv.get(kvKeys.secret(id))).value, null, "ciphertext must be gone");

    const again = await w.server.call("DELETE", `/api/jira/connections/${id}`, {
      token: w.alice.token,
    });
    assert.equal(again.status, 200);
    assert.equal(again.body.revoked_at, res.body.revoked_at);

    const status = await w.server.call("GET", `/api/jira/connections/${id}`, {
      token: w.alice.token,
    });
    assert.equal(status.body.status, "revoked");

    const before = w.jira.jira.requests.length;
    const use = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: w.alice.token,
    });
    assert.equal(use.status, 409);
    assert.equal(errorOf(use).code, "connection_revoked");
    assert.equal(
      w.jira.jira.requests.length,
      before,
      "Jira must not be called with a revoked connection",
    );
  } finally {
    await w.close();
  }
});

Deno.test("expiry is exact against the injected clock: connected at expires_at-1ms, expired at expires_at", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock, env: { JIRA_CONNECTION_TTL_SECONDS: "3600" } });
  try {
    const id = await w.connect(w.alice);
    const expiresAt = Date.parse(
      (await w.server.call("GET", `/api/jira/connections/${id}`, { token: w.alice.token })).body
        .expires_at,
    );
    clock.set(expiresAt - 1);
    const ok = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: w.alice.token,
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, "connected");

    clock.set(expiresAt);
    const use = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: w.alice.token,
    });
    assert.equal(use.status, 409);
    assert.equal(errorOf(use).code, "connection_expired");
    const status = await w.server.call("GET", `/api/jira/connections/${id}`, {
      token: w.alice.token,
    });
    assert.equal(status.body.status, "expired");
    assert.equal(
      (await w.server.services.kv.get(kvKeys.secret(id))).value,
      null,
      "expired ciphertext is deleted",
    );
    assert.equal(
      (await w.server.services.events.list({ type: "expire" })).length,
      1,
      "exactly one expire event",
    );
  } finally {
    await w.close();
  }
});

Deno.test("bob cannot read, verify, revoke or use alice's connection, and cannot tell it exists", async () => {
  const w = await startWorld();
  try {
    const id = await w.connect(w.alice);
    const random = "jc_" + "A".repeat(32);
    for (
      const [method, path] of [
        ["GET", `/api/jira/connections/${id}`],
        ["GET", `/api/jira/connections/${id}?verify=1`],
        ["DELETE", `/api/jira/connections/${id}`],
      ] as const
    ) {
      const theirs = await w.server.call(method, path, { token: w.bob.token });
      const none = await w.server.call(method, path.replace(id, random), { token: w.bob.token });
      assert.equal(theirs.status, 404);
      assert.equal(none.status, 404);
      const [a, b] = [errorOf(theirs), errorOf(none)];
      assert.equal(a.code, "not_found");
      assert.deepEqual({ ...a, request_id: "" }, { ...b, request_id: "" });
    }
    const list = await w.server.call("GET", "/api/jira/connections", { token: w.bob.token });
    assert.deepEqual(list.body.connections, []);
    const still = await w.server.call("GET", `/api/jira/connections/${id}`, {
      token: w.alice.token,
    });
    assert.equal(still.body.status, "connected");
    const denied = await w.server.services.events.list({ type: "denied", user: "bob" });
    assert.equal(denied.filter((e) => e.connection_id === id).length, 3);
  } finally {
    await w.close();
  }
});

Deno.test("a ciphertext copied onto another record does not decrypt: a clear error and a decrypt_failed event", async () => {
  const w = await startWorld();
  try {
    const alice1 = await w.connect(w.alice);
    const alice2 = await w.connect(w.alice);
    const bob1 = await w.connect(w.bob);
    const kv = w.server.services.kv;
    const stolen = (await kv.get(kvKeys.secret(alice1))).value;
    for (const [target, token] of [[bob1, w.bob.token], [alice2, w.alice.token]] as const) {
      await kv.set(kvKeys.secret(target), stolen);
      const res = await w.server.call("GET", `/api/jira/connections/${target}?verify=1`, { token });
      assert.equal(res.status, 500);
      const err = errorOf(res);
      assert.equal(err.code, "unexpected_error");
      assert.match(err.message, /cannot be decrypted/);
    }
    assert.equal((await w.server.services.events.list({ type: "decrypt_failed" })).length, 2);
    const myself = w.jira.jira.requests.filter((r) => r.path.endsWith("/myself"));
    assert.equal(myself.length, 3, "no Jira call is made with a swapped ciphertext");
  } finally {
    await w.close();
  }
});
