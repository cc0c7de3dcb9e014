/**
 * A second, independent MCP client: the MCP Inspector CLI lists the tools, calls
 * jira_connection_status and gets the engage_support prompt against the running server, with
 * the bearer header.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";

export const INSPECTOR = "@modelcontextprotocol/inspector@2.12.0";

async function inspector(args: string[]): Promise<{ code: number; json: unknown; stderr: string }> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "NPM_CONFIG_REGISTRY", "XDG_CACHE_HOME"]) {
    const v = Deno.env.get(name);
    if (v) env[name] = v;
  }
  const out = await new Deno.Command("npx", {
    args: ["-y", INSPECTOR, "--cli", ...args],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  let json: unknown = undefined;
  try {
    json = JSON.parse(stdout);
  } catch { /* asserted by the caller */ }
  return { code: out.code, json, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("the MCP Inspector CLI lists the tools and calls jira_connection_status with a bearer token", async () => {
  const w = await startWorld();
  try {
    const id = await w.connect(w.alice);
    const target = [
      `${w.server.url}/mcp`,
      "--transport",
      "http",
      "--header",
      `Authorization: Bearer ${w.alice.token}`,
    ];
    const list = await inspector([...target, "--method", "tools/list"]);
    assert.equal(list.code, 0, list.stderr);
    const names = (list.json as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
    assert.ok(names.includes("jira_connection_status") && names.length === 8, names.join());

    const call = await inspector([
      ...target,
      "--method",
      "tools/call",
      "--tool-name",
      "jira_connection_status",
      "--tool-arg",
      `connection_id=${id}`,
    ]);
    assert.equal(call.code, 0, call.stderr);
    const result = call.json as {
      structuredContent: { connection_id: string; status: string };
      content: Array<{ text: string }>;
    };
    assert.equal(result.structuredContent.connection_id, id);
    assert.equal(result.structuredContent.status, "connected");
    assert.match(result.content[0].text, new RegExp(`^connection_id: ${id}$`, "m"));

    // The README's command for the guided workflow, as printed there.
    const prompt = await inspector([
      ...target,
      "--method",
      "prompts/get",
      "--prompt-name",
      "engage_support",
      "--prompt-args",
      "issue_key=SUP-123",
    ]);
    assert.equal(prompt.code, 0, prompt.stderr);
    const messages = (prompt.json as { messages: Array<{ content: { text: string } }> }).messages;
    assert.match(messages[0].content.text, /Jira issue SUP-123/);

    const denied = await inspector([
      `${w.server.url}/mcp`,
      "--transport",
      "http",
      "--header",
      "Authorization: Bearer svt_wrong_wrong_wrong_wrong",
      "--method",
      "tools/list",
    ]);
    assert.notEqual(denied.code, 0, "a wrong token cannot list tools");
  } finally {
    await w.close();
  }
});
