/**
 * Isolation over MCP: a connection and a session belong to one user.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";

Deno.test("bob's token with alice's connection_id is not_found, like a random id, and recorded as denied", async () => {
  const w = await startWorld();
  const bob = await connectMcp(w.server.url, w.bob.token);
  try {
    const id = await w.connect(w.alice);
    const random = "jc_" + "Q".repeat(32);
    for (
      const [tool, extra] of [
        ["jira_connection_status", {}],
        ["jira_list_attachments", { issue_key: "SUP-1" }],
        ["jira_revoke_connection", {}],
      ] as const
    ) {
      const theirs = toolError(await bob.call(tool, { connection_id: id, ...extra }));
      const none = toolError(await bob.call(tool, { connection_id: random, ...extra }));
      assert.equal(theirs.code, "not_found", tool);
      assert.equal(theirs.message, none.message, tool);
    }
    const status = await w.server.call("GET", `/api/jira/connections/${id}`, {
      token: w.alice.token,
    });
    assert.equal(status.body.status, "connected", "bob's revoke did nothing");
    const denied = await w.server.services.events.list({ type: "denied", user: "bob" });
    assert.ok(denied.filter((e) => e.connection_id === id && e.source === "mcp").length >= 3);
  } finally {
    await bob.close();
    await w.close();
  }
});

Deno.test("bob's token on alice's MCP session id is rejected exactly like an unknown session", async () => {
  const w = await startWorld();
  const alice = await connectMcp(w.server.url, w.alice.token);
  try {
    const sid = alice.transport.sessionId!;
    assert.match(sid, /^mcp_/);
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" });
    const headers = (token: string, session: string) => ({
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-session-id": session,
      "mcp-protocol-version": "2025-11-25",
    });
    const hijack = await fetch(`${w.server.url}/mcp`, {
      method: "POST",
      headers: headers(w.bob.token, sid),
      body,
    });
    const unknown = await fetch(`${w.server.url}/mcp`, {
      method: "POST",
      headers: headers(w.bob.token, "mcp_" + "x".repeat(32)),
      body,
    });
    assert.equal(hijack.status, 404);
    assert.equal(unknown.status, 404);
    assert.deepEqual(await hijack.json(), await unknown.json());
    const noAuth = await fetch(`${w.server.url}/mcp`, {
      method: "POST",
      headers: { ...headers(w.bob.token, sid), authorization: "" },
      body,
    });
    assert.equal(noAuth.status, 401);
    assert.equal((await noAuth.json()).error.code, "unauthenticated");
    // alice's session still works
    const { tools } = await alice.client.listTools();
    assert.equal(tools.length, 8);
    assert.ok(
      (await w.server.services.events.list({ type: "denied", user: "bob" })).some((e) =>
        e.source === "mcp"
      ),
    );
  } finally {
    await alice.close();
    await w.close();
  }
});

Deno.test("a browser page on another origin cannot drive /mcp", async () => {
  const w = await startWorld();
  try {
    const res = await fetch(`${w.server.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${w.alice.token}`,
        origin: "https://evil.example",
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-11-25",
          capabilities: {},
          clientInfo: { name: "x", version: "1" },
        },
      }),
    });
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error.code, "forbidden");
  } finally {
    await w.close();
  }
});

Deno.test("an idle MCP session is closed after the idle limit (injected clock), and its id then answers 404", async () => {
  const { TestClock } = await import("../helpers/clock.ts");
  const clock = new TestClock();
  const w = await startWorld({ clock });
  const alice = await connectMcp(w.server.url, w.alice.token);
  try {
    const sid = alice.transport.sessionId!;
    assert.equal(w.server.sessions.size, 1);
    clock.advance(29 * 60_000);
    w.server.sessions.sweep();
    assert.equal((await alice.client.listTools()).tools.length, 8, "still alive before the limit");
    clock.advance(31 * 60_000);
    w.server.sessions.sweep();
    assert.equal(w.server.sessions.size, 0);
    const res = await fetch(`${w.server.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${w.alice.token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": sid,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    assert.equal(res.status, 404);
    await res.body?.cancel();
  } finally {
    await alice.close();
    await w.close();
  }
});
