/**
 * The cross-tenant matrix (SECURITY_TESTS T3): every route and tool that takes a connection id,
 * with the caller's own connected, revoked and expired connections, another user's, an unknown
 * one and a malformed one. Another user's id answers exactly like an unknown one (status, code
 * and message), gives away none of its data, changes nothing, and is recorded as one `denied`
 * event per attempt.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { TestClock } from "../helpers/clock.ts";
import { connectMcp, type McpTestClient } from "../helpers/mcp.ts";

type Kind = "own" | "revoked" | "expired" | "others" | "unknown" | "malformed";
interface Outcome {
  ok: boolean;
  status?: string;
  code?: string;
  message?: string;
  text: string;
}

Deno.test("each route and tool × {own, revoked, expired, another user's, unknown, malformed} connection: another user's is indistinguishable from unknown and denied", async () => {
  const clock = new TestClock();
  const w = await startWorld({
    clock,
    env: { JIRA_CONNECTION_TTL_SECONDS: "3600", SOSVAULT_RATE_TOOLS: "0/60" },
  });
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  try {
    const dir = `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(`${dir}/m.txt`, "matrix\n", { mode: 0o600 });
    const expired = await w.connect(w.alice);
    clock.advance(3600 * 1000);
    const ids: Record<Kind, string> = {
      own: await w.connect(w.alice),
      revoked: await w.connect(w.alice),
      expired,
      others: await w.connect(w.bob),
      unknown: "jc_" + "U".repeat(32),
      malformed: "jc_../../x",
    };
    await w.server.call("DELETE", `/api/jira/connections/${ids.revoked}`, {
      token: w.alice.token,
    });

    const http = (method: string, suffix = "") => async (id: string): Promise<Outcome> => {
      const r = await w.server.call(
        method,
        `/api/jira/connections/${encodeURIComponent(id)}${suffix}`,
        {
          token: w.alice.token,
        },
      );
      return r.status < 300
        ? { ok: true, status: r.body.status, text: r.text }
        : { ok: false, code: r.body.error.code, message: r.body.error.message, text: r.text };
    };
    const tool =
      (client: McpTestClient, name: string, extra: Record<string, unknown> = {}) =>
      async (id: string): Promise<Outcome> => {
        const r = await client.call(name, { connection_id: id, ...extra });
        const text = JSON.stringify(r);
        if (!r.isError) return { ok: true, status: r.structuredContent?.status, text };
        const e = JSON.parse(r.content[0].text).error;
        return { ok: false, code: e.code, message: e.message, text };
      };
    const probes: Array<[string, (id: string) => Promise<Outcome>]> = [
      ["GET /api/jira/connections/{id}", http("GET")],
      ["GET …?verify=1", http("GET", "?verify=1")],
      ["jira_connection_status", tool(mcp, "jira_connection_status")],
      ["jira_list_attachments", tool(mcp, "jira_list_attachments", { issue_key: "SUP-1" })],
      [
        "jira_attach_artifact",
        tool(mcp, "jira_attach_artifact", {
          issue_key: "SUP-1",
          artifact_ref: `${dir}/m.txt`,
        }),
      ],
      // Destructive probes last: they would change the own/revoked rows of later probes.
      ["DELETE /api/jira/connections/{id}", http("DELETE")],
      ["jira_revoke_connection", tool(mcp, "jira_revoke_connection")],
    ];
    const reads = new Set(["GET /api/jira/connections/{id}", "jira_connection_status"]);
    const revokes = new Set(["DELETE /api/jira/connections/{id}", "jira_revoke_connection"]);
    const bobsBefore = await w.server.call("GET", `/api/jira/connections/${ids.others}`, {
      token: w.bob.token,
    });
    let attempts = 0;

    for (const [name, probe] of probes) {
      const o: Record<Kind, Outcome> = {} as Record<Kind, Outcome>;
      const order: Kind[] = ["others", "unknown", "malformed", "revoked", "expired", "own"];
      for (const kind of order) o[kind] = await probe(ids[kind]);
      attempts++;

      assert.deepEqual(
        { ...o.others, text: "" },
        { ...o.unknown, text: "" },
        `${name}: another user's id must answer like an unknown one`,
      );
      assert.equal(o.others.code, "not_found", name);
      for (const leak of ["bob.jira", "Bob Example", ids.others.slice(3)]) {
        assert.ok(!o.others.text.includes(leak), `${name}: another user's data in the answer`);
      }
      assert.equal(o.malformed.code, "invalid_input", name);
      if (reads.has(name)) {
        assert.deepEqual([o.own.status, o.revoked.status, o.expired.status], [
          "connected",
          "revoked",
          "expired",
        ], name);
      } else if (revokes.has(name)) {
        assert.ok(o.own.ok && o.revoked.ok && o.expired.ok, `${name}: revoke is idempotent`);
      } else {
        assert.ok(o.own.ok, `${name}: ${o.own.text}`);
        assert.equal(o.revoked.code, "connection_revoked", name);
        assert.equal(o.expired.code, "connection_expired", name);
      }
    }

    const denied = (await w.server.services.events.list({ type: "denied", user: "alice" }))
      .filter((e) => e.connection_id === ids.others);
    assert.equal(denied.length, attempts, "one denied event per attempt on bob's connection");
    const bobsAfter = await w.server.call("GET", `/api/jira/connections/${ids.others}`, {
      token: w.bob.token,
    });
    assert.deepEqual(bobsAfter.body, bobsBefore.body, "bob's connection did not change");
    assert.equal(bobsAfter.body.status, "connected");
  } finally {
    await mcp.close();
    await w.close();
  }
});
