/**
 * The live tools/list, as a real client sees it: strict inputs, declared outputs, honest
 * annotations, and no field anywhere that could carry a credential.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";

const SECRETISH =
  /(^|_)(pat|token|secret|password|passwd|passphrase|api_?key|authorization|credentials?|bearer|cookie|private_key)s?($|_)/i;
/** The one-time sosreport consent is the user's own, minted outside MCP, not a credential. */
const ALLOWED = new Set(["consent_token"]);

// deno-lint-ignore no-explicit-any
function walk(schema: any, path: string, visit: (name: string, path: string, node: any) => void) {
  if (!schema || typeof schema !== "object") return;
  for (const [name, sub] of Object.entries(schema.properties ?? {})) {
    visit(name, `${path}.${name}`, sub);
    walk(sub, `${path}.${name}`, visit);
  }
  for (const key of ["items", "additionalProperties"]) {
    if (typeof schema[key] === "object") walk(schema[key], `${path}[]`, visit);
  }
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    for (const s of schema[key] ?? []) walk(s, path, visit);
  }
}

Deno.test("tools/list: the eight tools, strict inputs, declared outputs, four annotations, no secret-named field", async () => {
  const w = await startWorld();
  const mcp = await connectMcp(w.server.url, w.alice.token);
  try {
    const tools: Tool[] = (await mcp.client.listTools()).tools;
    assert.deepEqual(tools.map((t: Tool) => t.name), [
      "jira_connect",
      "jira_connection_status",
      "jira_list_attachments",
      "jira_attach_artifact",
      "jira_revoke_connection",
      "generate_sosreport",
      "sosreport_status",
      "fetch_sosreport",
    ]);
    for (const tool of tools) {
      assert.ok(tool.description && tool.description.length > 40, tool.name);
      assert.equal(tool.inputSchema.type, "object");
      assert.equal(
        (tool.inputSchema as { additionalProperties?: unknown }).additionalProperties,
        false,
        `${tool.name} input is strict`,
      );
      assert.equal(tool.outputSchema?.type, "object", `${tool.name} declares an output schema`);
      const a = tool.annotations!;
      for (
        const hint of [
          "readOnlyHint",
          "destructiveHint",
          "idempotentHint",
          "openWorldHint",
        ] as const
      ) {
        assert.equal(typeof a[hint], "boolean", `${tool.name}.${hint}`);
      }
      assert.ok(
        !(a.readOnlyHint && a.destructiveHint),
        `${tool.name} cannot be read-only and destructive`,
      );
      for (
        const [label, schema] of [["input", tool.inputSchema], [
          "output",
          tool.outputSchema,
        ]] as const
      ) {
        walk(schema, `${tool.name}.${label}`, (name, path, node) => {
          assert.ok(ALLOWED.has(name) || !SECRETISH.test(name), `${path} is named like a secret`);
          if (label === "input") assert.ok(node.description, `${path} is described`);
        });
      }
    }
    const byName = Object.fromEntries(tools.map((t: Tool) => [t.name, t.annotations!]));
    assert.equal(byName.jira_connection_status.readOnlyHint, true);
    assert.equal(byName.jira_list_attachments.readOnlyHint, true);
    assert.equal(byName.jira_revoke_connection.destructiveHint, true);
    assert.equal(byName.jira_attach_artifact.openWorldHint, true);
  } finally {
    await mcp.close();
    await w.close();
  }
});

Deno.test("every tool rejects an unknown property with invalid_input", async () => {
  const w = await startWorld();
  const mcp = await connectMcp(w.server.url, w.alice.token);
  try {
    const id = "jc_" + "A".repeat(32);
    const calls: Array<[string, Record<string, unknown>]> = [
      ["jira_connect", { base_url: "https://127.0.0.1", pat_hint: "x" }],
      ["jira_connection_status", { connection_id: id, verbose: true }],
      ["jira_list_attachments", { connection_id: id, issue_key: "SUP-1", expand: "all" }],
      ["jira_attach_artifact", {
        connection_id: id,
        issue_key: "SUP-1",
        artifact_ref: "/tmp/x",
        overwrite: true,
      }],
      ["jira_revoke_connection", { connection_id: id, force: true }],
    ];
    for (const [name, args] of calls) {
      const err = toolError(await mcp.call(name, args));
      assert.equal(err.code, "invalid_input", name);
      assert.match(err.message, /unknown field/, name);
    }
    const missing = toolError(await mcp.call("jira_connection_status", {}));
    assert.equal(missing.code, "invalid_input");
    assert.match(missing.message, /connection_id is required/);
    const unknownTool = toolError(await mcp.call("jira_delete_everything", {}));
    assert.equal(unknownTool.code, "invalid_input");
  } finally {
    await mcp.close();
    await w.close();
  }
});

Deno.test("the secret-name check itself flags credential-like names and passes ordinary ones", () => {
  for (
    const bad of [
      "pat",
      "jira_pat",
      "api_token",
      "token",
      "password",
      "apikey",
      "authorization",
      "client_secret",
    ]
  ) {
    assert.ok(SECRETISH.test(bad), bad);
  }
  for (
    const ok of [
      "archive_path",
      "artifact_ref",
      "connection_id",
      "issue_key",
      "patch_level",
      "filename",
    ]
  ) {
    assert.ok(!SECRETISH.test(ok), ok);
  }
});
