/**
 * Issue 14 item 1: the caller's own PAT hidden inside a longer argument (a file name, an issue
 * key) is refused as secret_rejected before any byte reaches Jira, whatever surrounds it.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { disguises } from "./_disguises.ts";

Deno.test("the caller's own PAT inside a file name is refused before a byte is sent, whatever surrounds it", async () => {
  const w = await startWorld();
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  try {
    const id = await w.connect(w.alice);
    const dir = `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const path = `${dir}/report.txt`;
    await Deno.writeTextFile(path, "hello", { mode: 0o600 });
    w.jira.jira.requests.length = 0;
    for (const [name, filename] of disguises(w.alice.pat)) {
      const result = await mcp.call("jira_attach_artifact", {
        connection_id: id,
        issue_key: "SUP-1",
        artifact_ref: path,
        filename,
      });
      const err = toolError(result);
      assert.equal(err.code, "secret_rejected", name);
      assert.match(err.message, /revoke it in Jira/, `${name}: told it is the own token`);
      assert.ok(!JSON.stringify(result).includes(w.alice.pat), `${name}: not echoed`);
    }
    for (const [name, key] of disguises(w.alice.pat).slice(0, 3)) {
      const err = toolError(
        await mcp.call("jira_list_attachments", { connection_id: id, issue_key: key }),
      );
      assert.equal(err.code, "secret_rejected", `issue key: ${name}`);
    }
    assert.equal(w.jira.jira.requests.length, 0, "nothing reached Jira");
  } finally {
    await mcp.close();
    await w.close();
  }
});
