import assert from "node:assert/strict";
import { ENV_VARS } from "../src/config.ts";
import { REPO_ROOT } from "./helpers/paths.ts";

Deno.test("the README's configuration table lists exactly the variables the code reads", async () => {
  const readme = await Deno.readTextFile(`${REPO_ROOT}/README.md`);
  const section = readme.split("## Configuration")[1].split("\n## ")[0];
  const documented = [...section.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]);
  assert.deepEqual(documented, [...ENV_VARS]);
});

Deno.test("every deno task uses explicit permissions: never -A, and the server set's env lists exactly the config variables", async () => {
  const { tasks, permissions } = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
  for (const [name, cmd] of Object.entries(tasks as Record<string, string>)) {
    assert.ok(!/(^|\s)(-A|--allow-all)(\s|$)/.test(cmd), `${name} uses -A`);
    assert.ok(!/--allow-env(\s|$)/.test(cmd), `${name} allows every variable`);
  }
  for (const [name, set] of Object.entries(permissions as Record<string, { all?: boolean }>)) {
    assert.ok(!("all" in set), `permission set ${name} grants all`);
  }
  assert.deepEqual(permissions.server.env, [...ENV_VARS]);
});

Deno.test("the README's MCP tool table lists exactly the live tools, in order", async () => {
  const { TOOLS } = await import("../src/mcp/tools/mod.ts");
  const readme = await Deno.readTextFile(`${REPO_ROOT}/README.md`);
  const section = readme.split("## MCP endpoint")[1].split("\n## ")[0];
  const documented = [...section.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm)].map((m) => m[1]);
  assert.deepEqual(documented, TOOLS.map((t) => t.name));
});
