/**
 * SOSVAULT_AUTH=oidc as a resource server: JWT access tokens from the configured issuer are
 * the only way into /api and /mcp; every bad token gets the contract's error, a
 * WWW-Authenticate challenge an MCP client can act on, and a security event without the token.
 */
import assert from "node:assert/strict";
import { exportSPKI, generateKeyPair, UnsecuredJWT } from "jose";
import { errorOf } from "../helpers/world.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { startOidcWorld } from "./_oidc_world.ts";
import { usersCommand } from "../../src/cli/users.ts";
import type { CliIO } from "../../src/cli/io.ts";
import { oidcIssuerCheck } from "../../src/cli/doctor.ts";

function challengeOf(res: { headers: Headers }): string {
  const h = res.headers.get("www-authenticate");
  assert.ok(h, "a WWW-Authenticate header");
  return h;
}

Deno.test("without a token: 401 pointing at the protected-resource metadata, and that metadata", async () => {
  const w = await startOidcWorld();
  try {
    for (const path of ["/mcp", "/api/jira/connections"]) {
      const res = path === "/mcp"
        ? await w.server.call("POST", path, { json: {} })
        : await w.server.call("GET", path);
      assert.equal(res.status, 401, path);
      assert.equal(errorOf(res).code, "unauthenticated");
      assert.equal(
        challengeOf(res),
        `Bearer resource_metadata="${w.server.url}/.well-known/oauth-protected-resource/mcp", scope="sosvault"`,
      );
    }
    for (const path of ["/oauth-protected-resource/mcp", "/oauth-protected-resource"]) {
      const meta = await w.server.call("GET", `/.well-known${path}`);
      assert.equal(meta.status, 200);
      assert.deepEqual(meta.body, {
        resource: w.audience,
        authorization_servers: [w.idp.issuer],
        scopes_supported: ["sosvault"],
        bearer_methods_supported: ["header"],
        resource_name: "sosvault",
      });
    }
    // A request without a token is how every client starts: it is not a security event.
    assert.equal((await w.server.services.events.list({ type: "denied" })).length, 0);
  } finally {
    await w.close();
  }
});

Deno.test("a valid token: the user appears on first use, admin comes from the group claim", async () => {
  const w = await startOidcWorld();
  try {
    const alice = await w.token("alice");
    const bob = await w.token("Bob"); // normalised to the user-name rules: lower case
    assert.equal(
      (await w.server.call("GET", "/api/jira/connections", { token: alice })).status,
      200,
    );
    assert.equal((await w.server.call("GET", "/api/jira/connections", { token: bob })).status, 200);
    const users = await w.server.services.oidc!.users.list();
    assert.deepEqual(users.map((u) => [u.name, u.admin]), [["alice", true], ["bob", false]]);
    assert.equal(
      (await w.server.call("GET", "/api/security-events", { token: alice })).status,
      200,
    );
    const notAdmin = await w.server.call("GET", "/api/security-events", { token: bob });
    assert.equal(notAdmin.status, 403);
    assert.equal(errorOf(notAdmin).code, "forbidden");

    // Without preferred_username the user is `sub`, when sub fits the rules.
    const bySub = await w.token("x", { preferred_username: undefined, sub: "carol" });
    assert.equal(
      (await w.server.call("GET", "/api/jira/connections", { token: bySub })).status,
      200,
    );
    assert.ok((await w.server.services.oidc!.users.list()).some((u) => u.name === "carol"));
  } finally {
    await w.close();
  }
});

Deno.test("every bad token: 401/403, the contract's error, a challenge, and an event without the token", async () => {
  const w = await startOidcWorld();
  try {
    const other = await generateKeyPair("RS256", { extractable: true });
    const pem = await exportSPKI(
      await crypto.subtle.importKey(
        "jwk",
        w.idp.publicJwk as JsonWebKey,
        { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
        true,
        ["verify"],
      ),
    );
    const good = await w.token("alice");
    const [h, p, s] = good.split(".");
    const forged = JSON.parse(new TextDecoder().decode(Uint8Array.from(
      atob(p.replace(/-/g, "+").replace(/_/g, "/")),
      (c) => c.charCodeAt(0),
    )));
    forged.preferred_username = "mallory";
    const tamperedPayload = btoa(JSON.stringify(forged)).replace(/\+/g, "-").replace(/\//g, "_")
      .replace(/=+$/, "");
    const now = Math.floor(w.clock.now().getTime() / 1000);

    const cases: Array<[string, string, number, RegExp]> = [
      ["expired", await w.token("alice", { exp: now - 61, iat: now - 400 }), 401, /expired/],
      ["not yet valid", await w.token("alice", { nbf: now + 600 }), 401, /not valid yet/],
      [
        "wrong audience",
        await w.token("alice", { aud: "https://elsewhere.example/mcp" }),
        401,
        /aud/,
      ],
      [
        "wrong issuer",
        await w.token("alice", { iss: "https://idp.elsewhere.example" }),
        401,
        /another issuer/,
      ],
      ["alg none", new UnsecuredJWT(w.claims("alice")).encode(), 401, /algorithm/],
      [
        "HMAC keyed with the public key",
        await w.idp.sign(w.claims("alice"), { alg: "HS256", key: new TextEncoder().encode(pem) }),
        401,
        /algorithm/,
      ],
      [
        "unknown kid",
        await w.idp.sign(w.claims("alice"), { kid: "rotated-away", key: other.privateKey }),
        401,
        /key the issuer does not publish/,
      ],
      ["tampered payload", `${h}.${tamperedPayload}.${s}`, 401, /signature/],
      [
        "missing scope",
        await w.token("alice", { scope: "openid profile" }),
        403,
        /lacks the scope 'sosvault'/,
      ],
      ["a Jira PAT as bearer", await newCanaryPat(), 401, /never send your Jira token here/],
      [
        "a name outside the user-name rules",
        await w.token("x", { preferred_username: "Alice Example", sub: "a|b" }),
        401,
        /not a sosvault user name/,
      ],
    ];
    for (const [what, token, status, message] of cases) {
      for (const [method, path] of [["POST", "/mcp"], ["GET", "/api/jira/connections"]]) {
        const before =
          (await w.server.services.events.list({ type: "denied", limit: 1000 })).length;
        const res = await w.server.call(method, path, {
          token,
          json: method === "POST" ? {} : undefined,
        });
        assert.equal(res.status, status, `${what} on ${path}`);
        const err = errorOf(res);
        assert.equal(err.code, status === 403 ? "forbidden" : "unauthenticated", what);
        assert.match(err.message, message, what);
        const expected = status === 403 ? "insufficient_scope" : "invalid_token";
        assert.equal(
          challengeOf(res),
          `Bearer error="${expected}", resource_metadata="${w.server.url}/.well-known/oauth-protected-resource/mcp", scope="sosvault"`,
          what,
        );
        const events = await w.server.services.events.list({ type: "denied", limit: 1000 });
        assert.equal(events.length, before + 1, `${what}: one denied event`);
        const event = events.find((e) => e.request_id === err.request_id);
        assert.ok(event, `${what}: the event carries the response's request id`);
        assert.equal(event.source, path === "/mcp" ? "mcp" : "http");
        assert.equal(event.error_code, err.code);
        assert.ok(!JSON.stringify(events).includes(token), `${what}: the token is not in an event`);
        assert.ok(!res.text.includes(token), `${what}: the token is not echoed`);
      }
      assert.ok(!w.server.logs.join("\n").includes(token), `${what}: the token is not logged`);
    }
    // Scope refusals know who asked; the event says so.
    const scopeEvents = (await w.server.services.events.list({ type: "denied", limit: 1000 }))
      .filter((e) => e.error_code === "forbidden");
    assert.ok(scopeEvents.length >= 2 && scopeEvents.every((e) => e.user === "alice"));
  } finally {
    await w.close();
  }
});

Deno.test("an unknown kid refetches the issuer's keys at most once a minute", async () => {
  const w = await startOidcWorld();
  try {
    const other = await generateKeyPair("RS256");
    const forgedKid = await w.idp.sign(w.claims("alice"), {
      kid: "new-kid",
      key: other.privateKey,
    });
    const start = w.idp.jwksFetches;
    // The keys were fetched at start, less than a minute ago: no refetch yet.
    assert.equal(
      (await w.server.call("GET", "/api/jira/connections", { token: forgedKid })).status,
      401,
    );
    assert.equal(w.idp.jwksFetches - start, 0);
    w.clock.advance(61_000);
    for (let i = 0; i < 5; i++) {
      assert.equal(
        (await w.server.call("GET", "/api/jira/connections", { token: forgedKid })).status,
        401,
      );
    }
    assert.equal(w.idp.jwksFetches - start, 1, "five unknown kids inside a minute: one refetch");
    w.clock.advance(61_000);
    assert.equal(
      (await w.server.call("GET", "/api/jira/connections", { token: forgedKid })).status,
      401,
    );
    assert.equal(w.idp.jwksFetches - start, 2, "a minute later: one more");
    // Known keys are served from memory: good tokens never fetch.
    for (let i = 0; i < 3; i++) {
      const ok = await w.server.call("GET", "/api/jira/connections", {
        token: await w.token("alice"),
      });
      assert.equal(ok.status, 200);
    }
    assert.equal(w.idp.jwksFetches - start, 2);
  } finally {
    await w.close();
  }
});

Deno.test("users remove blocks an OIDC user's valid tokens and revokes their connections; add lifts it", async () => {
  const w = await startOidcWorld();
  const out: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => out.push(l), usage: () => 64 };
  try {
    const token = await w.token("bob");
    assert.equal((await w.server.call("GET", "/api/jira/connections", { token })).status, 200);
    assert.equal(await usersCommand(w.server.services, ["remove", "bob"], {}, io), 0);
    assert.match(out.join("\n"), /Blocked bob/);
    const res = await w.server.call("GET", "/api/jira/connections", { token });
    assert.equal(res.status, 401);
    assert.match(errorOf(res).message, /removed from sosvault/);
    assert.match(challengeOf(res), /error="invalid_token"/);
    const [event] = await w.server.services.events.list({ type: "denied", user: "bob" });
    assert.equal(event.error_code, "unauthenticated");
    // A name blocked before its first login stays out too.
    assert.equal(await usersCommand(w.server.services, ["remove", "dave"], {}, io), 0);
    assert.equal(
      (await w.server.call("GET", "/api/jira/connections", { token: await w.token("dave") }))
        .status,
      401,
    );
    assert.equal(await usersCommand(w.server.services, ["add", "bob"], {}, io), 0);
    assert.match(out.join("\n"), /bob may sign in again/);
    assert.equal((await w.server.call("GET", "/api/jira/connections", { token })).status, 200);
  } finally {
    await w.close();
  }
});

Deno.test("the IdP down at start: the server starts, warns, answers 503 until the keys arrive", async () => {
  const w = await startOidcWorld({ idpDown: true });
  try {
    assert.ok(
      w.server.logs.some((l) => l.includes("oidc_issuer_unreachable")),
      "a warning in the log",
    );
    const doctor = await oidcIssuerCheck(w.server.services.oidc!);
    assert.equal(doctor.status, "fail");
    assert.match(
      doctor.what,
      /cannot be reached \(\/\.well-known\/openid-configuration answered 503\)/,
    );
    assert.equal((await w.server.call("GET", "/health")).status, 200);
    const token = await w.token("alice");
    const res = await w.server.call("POST", "/mcp", { token, json: {} });
    assert.equal(res.status, 503);
    assert.equal(errorOf(res).code, "upstream_unavailable");
    w.idp.down = false;
    // Retries are spaced (5 s): right away it is still 503, after the gap the keys are fetched.
    assert.equal((await w.server.call("GET", "/api/jira/connections", { token })).status, 503);
    w.clock.advance(5_001);
    assert.equal((await w.server.call("GET", "/api/jira/connections", { token })).status, 200);
  } finally {
    await w.close();
  }
});
