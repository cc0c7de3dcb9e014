import assert from "node:assert/strict";
import { errorOf, startWorld } from "../helpers/world.ts";
import { TestClock } from "../helpers/clock.ts";
import { EventLog } from "../../src/security/events.ts";

Deno.test("GET /api/security-events is for admins: bob gets forbidden, alice sees the events", async () => {
  const w = await startWorld();
  try {
    const id = await w.connect(w.bob);
    await w.server.call("DELETE", `/api/jira/connections/${id}`, { token: w.bob.token });
    const denied = await w.server.call("GET", "/api/security-events", { token: w.bob.token });
    assert.equal(denied.status, 403);
    assert.equal(errorOf(denied).code, "forbidden");

    const res = await w.server.call("GET", "/api/security-events?user=bob", {
      token: w.alice.token,
    });
    assert.equal(res.status, 200);
    const types = res.body.events.map((e: { type: string }) => e.type);
    assert.deepEqual(types, ["revoke", "connect"], "newest first");
    for (const e of res.body.events) {
      assert.deepEqual(Object.keys(e).sort(), [
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
      ]);
      assert.equal(e.user, "bob");
      assert.equal(e.connection_id, id);
      assert.match(e.request_id, /^req_/);
    }
    const onlyRevoke = await w.server.call("GET", "/api/security-events?type=revoke&limit=1", {
      token: w.alice.token,
    });
    assert.equal(onlyRevoke.body.events.length, 1);
  } finally {
    await w.close();
  }
});

Deno.test("events older than the retention period are not listed even before KV collects them", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock, env: { SOSVAULT_EVENT_RETENTION_DAYS: "1" } });
  try {
    await w.connect(w.alice);
    clock.advance(86_400_000 + 1);
    const events = new EventLog(w.server.services.kv, w.server.services.log, clock.now, 1);
    assert.deepEqual(await events.list(), []);
    const res = await w.server.call("GET", "/api/security-events", { token: w.alice.token });
    assert.deepEqual(res.body.events, []);
  } finally {
    await w.close();
  }
});

Deno.test("every event also reaches the log as a JSON line, with no secret", async () => {
  const w = await startWorld();
  try {
    await w.connect(w.alice);
    const lines = w.server.logs.map((l) => JSON.parse(l));
    const ev = lines.find((l) => l.msg === "security_event");
    assert.equal(ev.event.type, "connect");
    assert.ok(!w.server.logs.join("\n").includes(w.alice.pat));
  } finally {
    await w.close();
  }
});
