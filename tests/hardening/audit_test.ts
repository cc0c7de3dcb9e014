/**
 * Audit completeness (SECURITY_TESTS T19): every action — connect, verify, list, attach, revoke,
 * expire, a refused ownership check, a decryption failure, a refused secret, a consent —
 * leaves exactly one event of its own type, with the required fields, the request id the
 * client was given, and never a secret. A refusal for ownership adds exactly one `denied`.
 * Every decryption of a PAT adds one `credential_use` event naming its purpose (issue 15).
 * (Fail-closed when the event store is down is not implemented: see SECURITY.md.)
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { TestClock } from "../helpers/clock.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { makeDcPat } from "../helpers/canary.ts";
import { kvKeys } from "../../src/kv_keys.ts";
import type { SecurityEvent } from "../../src/security/events.ts";
import { assertNoLeak, needlesOf } from "./_helpers.ts";

const FIELDS = [
  "connection_id",
  "error_code",
  "id",
  "issue_key",
  "outcome",
  "request_id",
  "source",
  "time",
  "type",
  "user",
];

Deno.test("every action leaves exactly one event of its type, with the required fields and the client's request id, and no secret", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock, env: { JIRA_CONNECTION_TTL_SECONDS: "3600" } });
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const bobMcp = await connectMcp(w.server.url, w.bob.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const events = w.server.services.events;
  const seen = new Set<string>();
  /** The events recorded by `action`, oldest first. */
  const during = async (action: () => Promise<unknown>): Promise<SecurityEvent[]> => {
    for (const e of await events.list({ limit: 1000 })) seen.add(e.id);
    await action();
    const fresh = (await events.list({ limit: 1000 })).filter((e) => !seen.has(e.id));
    for (const e of fresh) seen.add(e.id);
    return fresh.reverse();
  };
  const shape = (e: SecurityEvent) => {
    assert.deepEqual(
      Object.keys(e).sort(),
      e.type === "credential_use" ? [...FIELDS, "purpose"].sort() : FIELDS,
    );
    assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.match(e.request_id ?? "", /^req_/);
    assert.ok(["success", "failure"].includes(e.outcome));
    assert.equal(e.outcome === "failure", e.error_code !== null, `${e.type}: error_code`);
  };
  const types = (es: SecurityEvent[]) => es.map((e) => `${e.type}:${e.outcome}`).sort();
  try {
    const dir = `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(`${dir}/a.txt`, "audit\n", { mode: 0o600 });
    let id = "";

    // connect, success and failure, each carrying the request id the client got
    let res = await w.server.call("GET", "/health");
    let got = await during(async () => {
      res = await w.server.call("POST", "/api/jira/connections", {
        token: w.alice.token,
        json: { base_url: w.jira.url, pat: w.alice.pat },
      });
    });
    id = res.body.connection_id;
    assert.deepEqual(types(got), ["connect:success"]);
    assert.equal(got[0].connection_id, id);
    assert.equal(got[0].request_id, res.headers.get("x-request-id"));
    assert.equal(got[0].source, "http");
    got = await during(async () => {
      res = await w.server.call("POST", "/api/jira/connections", {
        token: w.alice.token,
        json: { base_url: w.jira.url, pat: makeDcPat() },
      });
    });
    assert.deepEqual(types(got), ["connect:failure"]);
    assert.equal(got[0].error_code, "invalid_credentials");
    assert.equal(got[0].request_id, res.body.error.request_id);

    // verify
    got = await during(() =>
      w.server.call("GET", `/api/jira/connections/${id}?verify=1`, { token: w.alice.token })
    );
    assert.deepEqual(types(got), ["credential_use:success", "verify:success"]);
    assert.ok(got.every((e) => e.connection_id === id));
    assert.equal(got.find((e) => e.type === "credential_use")!.purpose, "verify");

    // list and attach, over MCP, with the issue key
    got = await during(() =>
      mcp.call("jira_list_attachments", { connection_id: id, issue_key: "sup-1" })
    );
    assert.deepEqual(types(got), ["credential_use:success", "list:success"]);
    assert.deepEqual([got[1].issue_key, got[1].source], ["SUP-1", "mcp"]);
    assert.deepEqual([got[0].purpose, got[0].user, got[0].source], ["list", "alice", "mcp"]);
    got = await during(() =>
      mcp.call("jira_attach_artifact", {
        connection_id: id,
        issue_key: "SUP-1",
        artifact_ref: `${dir}/a.txt`,
      })
    );
    assert.deepEqual(types(got), ["attach:success", "credential_use:success"]);
    assert.equal(got.find((e) => e.type === "credential_use")!.purpose, "attach");
    got = await during(() =>
      mcp.call("jira_attach_artifact", {
        connection_id: id,
        issue_key: "SUP-1",
        artifact_ref: "/etc/passwd",
      })
    );
    assert.deepEqual(types(got), ["attach:failure"]);
    assert.equal(got[0].error_code, "artifact_invalid");

    // ownership: bob's attempts on alice's connection
    got = await during(() =>
      bobMcp.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-1" })
    );
    assert.deepEqual(types(got), ["denied:failure", "list:failure"]);
    assert.ok(got.every((e) => e.user === "bob" && e.connection_id === id));
    got = await during(() =>
      w.server.call("DELETE", `/api/jira/connections/${id}`, { token: w.bob.token })
    );
    assert.deepEqual(types(got), ["denied:failure"]);

    // a refused secret: the tool never runs, so only secret_rejected
    let rejected: unknown;
    got = await during(async () => {
      rejected = await mcp.call("jira_list_attachments", {
        connection_id: id,
        issue_key: w.alice.pat,
      });
    });
    assert.deepEqual(types(got), ["secret_rejected:failure"]);
    assert.equal(got[0].request_id, toolError(rejected).request_id);

    // consent
    got = await during(() => w.server.call("POST", "/api/sos/consents", { token: w.alice.token }));
    assert.deepEqual(types(got), ["consent:success"]);

    // decrypt_failed: a ciphertext that is not this connection's
    const second = await w.connect(w.alice);
    const kv = w.server.services.kv;
    const envelope = (await kv.get(kvKeys.secret(id))).value;
    await kv.set(kvKeys.secret(second), envelope);
    got = await during(() =>
      w.server.call("GET", `/api/jira/connections/${second}?verify=1`, { token: w.alice.token })
    );
    assert.deepEqual(types(got), ["decrypt_failed:failure", "verify:failure"]);

    // revoke, twice: each request is one action and leaves one event
    got = await during(() =>
      w.server.call("DELETE", `/api/jira/connections/${second}`, { token: w.alice.token })
    );
    assert.deepEqual(types(got), ["revoke:success"]);
    got = await during(() => mcp.call("jira_revoke_connection", { connection_id: second }));
    assert.deepEqual(types(got), ["revoke:success"]);

    // expire: the first use past expires_at closes it; later uses add no expire event
    clock.advance(3600 * 1000);
    got = await during(() =>
      w.server.call("GET", `/api/jira/connections/${id}?verify=1`, { token: w.alice.token })
    );
    assert.deepEqual(types(got), ["expire:success", "verify:failure"]);
    got = await during(() =>
      mcp.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-1" })
    );
    assert.deepEqual(types(got), ["list:failure"]);
    assert.equal(got[0].error_code, "connection_expired");

    const all = await events.list({ limit: 1000 });
    for (const e of all) shape(e);
    const chain = await events.verify();
    assert.deepEqual([chain.ok, chain.verified], [true, all.length], "the chain holds every event");
    const needles = needlesOf([w.alice.pat, w.bob.pat]);
    assertNoLeak(JSON.stringify(all), needles, "the events");
    const logged = w.server.logs.filter((l) => l.includes('"msg":"security_event"'));
    assert.equal(logged.length, all.length, "every event also reaches the log, once");
    assertNoLeak(w.server.logs.join("\n"), needles, "the log");
  } finally {
    await mcp.close();
    await bobMcp.close();
    await w.close();
  }
});
