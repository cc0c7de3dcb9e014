/**
 * The guided workflow over the official SDK client against the real server: the prompt
 * `engage_support` (prompts/list, prompts/get) and the resource `sosvault://workflow`
 * (resources/list, resources/read). Both need the session's bearer token, refuse bad or secret
 * arguments without echoing them, and name only tools that exist.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { connectMcp } from "../helpers/mcp.ts";
import { TOOLS } from "../../src/mcp/tools/mod.ts";

async function setup() {
  const w = await startWorld();
  const alice = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  return {
    w,
    alice,
    async close() {
      await alice.close();
      await w.close();
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; message: string };
    return { code: e.code, message: e.message };
  }
  throw new Error("expected the request to be refused");
}

Deno.test("the server announces prompts and resources, and lists engage_support and sosvault://workflow", async () => {
  const { alice, close } = await setup();
  try {
    const caps = alice.client.getServerCapabilities();
    assert.ok(caps?.prompts, "prompts capability");
    assert.ok(caps?.resources, "resources capability");
    assert.match(alice.client.getInstructions() ?? "", /engage_support/);

    const { prompts } = await alice.client.listPrompts();
    assert.deepEqual(prompts.map((p: { name: string }) => p.name), ["engage_support"]);
    assert.deepEqual(
      prompts[0].arguments?.map((a: { name: string; required?: boolean }) => [
        a.name,
        a.required ?? false,
      ]),
      [["issue_key", true], ["connection_id", false]],
    );

    const { resources } = await alice.client.listResources();
    assert.deepEqual(
      resources.map((r: { uri: string; mimeType?: string }) => [r.uri, r.mimeType]),
      [[
        "sosvault://workflow",
        "text/markdown",
      ]],
    );
  } finally {
    await close();
  }
});

Deno.test("resources/read sosvault://workflow: every step in order, the secret rules, only real tool names", async () => {
  const { alice, close } = await setup();
  try {
    const { contents } = await alice.client.readResource({ uri: "sosvault://workflow" });
    assert.equal(contents.length, 1);
    assert.equal(contents[0].uri, "sosvault://workflow");
    assert.equal(contents[0].mimeType, "text/markdown");
    const text = String(contents[0].text);

    // connect → verify → generate → fetch → attach, in that order.
    const order = [
      "jira_connect",
      "jira_connection_status",
      "generate_sosreport",
      "fetch_sosreport",
      "jira_attach_artifact",
    ].map((name) => text.indexOf(`\`${name}\``));
    assert.ok(order.every((i) => i >= 0), `every step is named: ${order}`);
    assert.deepEqual([...order].sort((a, b) => a - b), order, "the steps are in order");

    // Every tool is there, and every tool-like name in the guide is a real tool.
    const tools = new Set(TOOLS.map((t) => t.name));
    for (const name of tools) assert.ok(text.includes(`\`${name}\``), `${name} in the guide`);
    const named = [...text.matchAll(/`((?:jira|sos|fetch|generate)[a-z_]*)`/g)].map((m) => m[1]);
    assert.deepEqual(named.filter((n) => !tools.has(n)), [], "no tool that does not exist");

    // Only `connected` goes on; expired and revoked mean a new connection.
    assert.match(text, /Go on only when `status` is\s+`connected`/);
    assert.match(text, /`expired` or `revoked` mean[^.]*cannot be used again: go back to\s+step 1/);
    // The secret boundary.
    assert.match(text, /Never ask the user for a Jira token/);
    assert.match(text, /never accept one in the\s+chat/);
    assert.match(text, /Never invent a `consent_token` or a `change_request` key/);
  } finally {
    await close();
  }
});

Deno.test("prompts/get engage_support: names the issue (normalised), and starts at verify when given a connection", async () => {
  const { w, alice, close } = await setup();
  try {
    const fresh = await alice.client.getPrompt({
      name: "engage_support",
      arguments: { issue_key: "sup-123" },
    });
    assert.equal(fresh.messages.length, 1);
    assert.equal(fresh.messages[0].role, "user");
    const freshText = (fresh.messages[0].content as { text: string }).text;
    assert.match(freshText, /Jira issue SUP-123/);
    assert.match(freshText, /start at step 1/);
    assert.ok(freshText.includes("`jira_connect`"));

    const id = await w.connect(w.alice);
    const known = await alice.client.getPrompt({
      name: "engage_support",
      arguments: { issue_key: "SUP-123", connection_id: id },
    });
    const knownText = (known.messages[0].content as { text: string }).text;
    assert.ok(knownText.includes(`\`${id}\``), "the connection is named");
    assert.match(knownText, /Start at step 2 \(verify it\)/);
    assert.ok(!knownText.includes(w.alice.pat), "the PAT is nowhere in the prompt");
  } finally {
    await close();
  }
});

Deno.test("prompts/get refuses a bad issue key, a token as connection_id and unknown prompts, echoing none", async () => {
  const { w, alice, close } = await setup();
  try {
    const badKey = await rejection(
      alice.client.getPrompt({ name: "engage_support", arguments: { issue_key: "SUP 1; rm" } }),
    );
    assert.equal(badKey.code, -32602);
    assert.match(badKey.message, /issue_key must look like ABC-123/);
    assert.ok(!badKey.message.includes("rm"), "the input is not echoed");

    const missing = await rejection(alice.client.getPrompt({ name: "engage_support" }));
    assert.equal(missing.code, -32602);
    assert.match(missing.message, /issue_key is required/);

    // The user's own PAT pasted where the connection id goes: refused as a secret, recorded.
    const pasted = await rejection(alice.client.getPrompt({
      name: "engage_support",
      arguments: { issue_key: "SUP-1", connection_id: w.alice.pat },
    }));
    assert.equal(pasted.code, -32602);
    assert.ok(!pasted.message.includes(w.alice.pat));
    const events = await w.server.services.events.list({ type: "secret_rejected", user: "alice" });
    assert.equal(events.length, 1);

    const notAnId = await rejection(alice.client.getPrompt({
      name: "engage_support",
      arguments: { issue_key: "SUP-1", connection_id: "my-connection" },
    }));
    assert.equal(notAnId.code, -32602);
    assert.match(notAnId.message, /jc_… id shown on the connect page/);

    const extra = await rejection(alice.client.getPrompt({
      name: "engage_support",
      arguments: { issue_key: "SUP-1", project: "x" },
    }));
    assert.equal(extra.code, -32602);

    const unknown = await rejection(alice.client.getPrompt({ name: "something_else" }));
    assert.equal(unknown.code, -32602);
    assert.match(unknown.message, /no prompt like that/);

    const noResource = await rejection(alice.client.readResource({ uri: "file:///etc/passwd" }));
    assert.equal(noResource.code, -32002);
  } finally {
    await close();
  }
});

Deno.test("prompts and resources need the bearer token like tools", async () => {
  const { w, close } = await setup();
  try {
    for (const method of ["prompts/list", "resources/read"]) {
      const res = await fetch(`${w.server.url}/mcp`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method,
          params: method === "resources/read" ? { uri: "sosvault://workflow" } : {},
        }),
      });
      const body = await res.text();
      assert.equal(res.status, 401, method);
      assert.ok(!body.includes("Engaging support"), "nothing of the guide without a token");
    }
  } finally {
    await close();
  }
});

Deno.test("an open session's prompts/get and resources/read: 401 without the token, 404 with another user's", async () => {
  const { w, alice, close } = await setup();
  try {
    const sid = alice.transport.sessionId!;
    const bob = await w.server.addUser("mallory");
    const requests = [
      ["prompts/get", { name: "engage_support", arguments: { issue_key: "SUP-1" } }],
      ["resources/read", { uri: "sosvault://workflow" }],
      ["prompts/list", {}],
      ["resources/list", {}],
    ] as const;
    for (const [method, params] of requests) {
      for (const [authorization, status] of [[undefined, 401], [`Bearer ${bob}`, 404]] as const) {
        const res = await fetch(`${w.server.url}/mcp`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
            "mcp-session-id": sid,
            "mcp-protocol-version": "2025-06-18",
            ...(authorization ? { authorization } : {}),
          },
          body: JSON.stringify({ jsonrpc: "2.0", id: 7, method, params }),
        });
        const body = await res.text();
        assert.equal(res.status, status, `${method} ${authorization ? "other user" : "no token"}`);
        assert.ok(!body.includes("Engag"), "nothing of the guide or the prompt leaks");
      }
    }
    // alice's own session is unharmed.
    const r = await alice.client.readResource({ uri: "sosvault://workflow" });
    assert.equal(r.contents.length, 1);
  } finally {
    await close();
  }
});

Deno.test("prompts/get and resources/read spend the user's tool budget like tools/call", async () => {
  const w = await startWorld({ env: { SOSVAULT_RATE_TOOLS: "2/60" } });
  const alice = await connectMcp(w.server.url, w.alice.token);
  try {
    await alice.client.getPrompt({ name: "engage_support", arguments: { issue_key: "SUP-1" } });
    await alice.client.readResource({ uri: "sosvault://workflow" });
    const third = await rejection(
      alice.client.getPrompt({ name: "engage_support", arguments: { issue_key: "SUP-1" } }),
    );
    assert.notEqual(third.code, -32602, "not blamed on the arguments");
    assert.match(third.message, /too many|rate|slow down|try again/i);
    // And the same budget covers tools: the next tool call is refused too.
    const tool = await alice.call("jira_connect", {});
    assert.ok(tool.isError, JSON.stringify(tool));
    assert.equal(JSON.parse(tool.content[0].text).error.code, "rate_limited");
  } finally {
    await alice.close();
    await w.close();
  }
});
