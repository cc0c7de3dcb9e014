/**
 * Time (SECURITY_TESTS T10, T11, T12) with an injected TestClock: expiry is exact at
 * expires_at on every path and does not wait for KV's garbage collection; instances whose
 * clocks disagree never serve a connection another instance has seen expire; and a connection
 * keeps the lifetime it was created with, whatever TTL a later restart configures.
 */
import assert from "node:assert/strict";
import { errorOf, startWorld, type World } from "../helpers/world.ts";
import { startServer } from "../helpers/server.ts";
import { TestClock } from "../helpers/clock.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { kvKeys } from "../../src/kv_keys.ts";
import { ConfigError, parseConfig } from "../../src/config.ts";
import { randomMasterKey } from "../helpers/server.ts";

const HOUR = 3600;

async function expiresAt(w: World, id: string): Promise<number> {
  const res = await w.server.call("GET", `/api/jira/connections/${id}`, { token: w.alice.token });
  return Date.parse(res.body.expires_at);
}

function patRequests(w: World): number {
  return w.jira.jira.requests.filter((r) => r.headers.authorization === `Bearer ${w.alice.pat}`)
    .length;
}

Deno.test("expiry is exact on every path: usable at expires_at − 1 ms, refused at expires_at and + 1 ms, with one expire event, before KV collects anything", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock, env: { JIRA_CONNECTION_TTL_SECONDS: String(HOUR) } });
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  try {
    const artifacts = w.server.env.SOSVAULT_ARTIFACT_DIR!;
    await Deno.mkdir(`${artifacts}/alice`, { recursive: true, mode: 0o700 });
    const file = `${artifacts}/alice/notes.txt`;
    await Deno.writeTextFile(file, "notes\n", { mode: 0o600 });
    const id = await w.connect(w.alice);
    const t = await expiresAt(w, id);
    assert.equal(t - clock.now().getTime(), HOUR * 1000);

    // An upload is cut when expires_at passes during it, so it runs with a minute to spare.
    clock.set(t - 60_000);
    const attached = await mcp.call("jira_attach_artifact", {
      connection_id: id,
      issue_key: "SUP-1",
      artifact_ref: file,
    });
    assert.ok(!attached.isError, JSON.stringify(attached));
    clock.set(t - 1);
    const verify = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: w.alice.token,
    });
    assert.equal(verify.status, 200, verify.text);
    assert.ok(
      !(await mcp.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-1" }))
        .isError,
    );

    clock.set(t);
    // Security: KV still holds the ciphertext (its expireIn runs on real time, a minute past
    // the lifetime): the refusal comes from comparing expires_at with the clock.
    assert.ok((await w.server.services.kv.get(kvKeys.secret(id))).value, "not collected yet");
    const before = patRequests(w);
    assert.equal(
      toolError(await mcp.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-1" }))
        .code,
      "connection_expired",
    );
    const atT = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: w.alice.token,
    });
    assert.equal(atT.status, 409);
    assert.equal(errorOf(atT).code, "connection_expired");

    clock.set(t + 1);
    assert.equal(
      toolError(
        await mcp.call("jira_attach_artifact", {
          connection_id: id,
          issue_key: "SUP-1",
          artifact_ref: file,
        }),
      ).code,
      "connection_expired",
    );
    const status = await mcp.call("jira_connection_status", { connection_id: id });
    assert.equal(status.structuredContent.status, "expired");
    const listed = await w.server.call("GET", "/api/jira/connections", { token: w.alice.token });
    assert.equal(listed.body.connections[0].status, "expired");
    assert.equal(patRequests(w), before, "no Jira request with the PAT at or after expires_at");
    assert.equal((await w.server.services.kv.get(kvKeys.secret(id))).value, null);
    const expired = await w.server.services.events.list({ type: "expire" });
    assert.equal(expired.filter((e) => e.connection_id === id).length, 1, "one expire event");
  } finally {
    await mcp.close();
    await w.close();
  }
});

Deno.test("an upload in flight when expires_at passes is cancelled with connection_expired", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock, env: { JIRA_CONNECTION_TTL_SECONDS: String(HOUR) } });
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const big = `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice/big.bin`;
  try {
    await Deno.mkdir(`${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`, { recursive: true });
    await Deno.writeFile(big, new Uint8Array(8 * 1024 * 1024), { mode: 0o600 });
    const id = await w.connect(w.alice);
    // 300 ms of lifetime left on the injected clock; the upload would take two minutes.
    clock.set((await expiresAt(w, id)) - 300);
    w.jira.jira.setOptions({ uploadBytesPerSecond: 64 * 1024 });
    const err = toolError(
      await mcp.call("jira_attach_artifact", {
        connection_id: id,
        issue_key: "SUP-1",
        artifact_ref: big,
      }),
    );
    assert.equal(err.code, "connection_expired");
    assert.match(err.message, /expired while this request was in flight/);
    assert.equal(w.jira.jira.issue("SUP-1")!.attachments.length, 0);
  } finally {
    await mcp.close();
    await w.close();
    await Deno.remove(big).catch(() => {});
  }
});

Deno.test("instances whose clocks differ by 5 minutes: once the fastest clock sees a connection expire, no instance serves it", async () => {
  const slow = new TestClock();
  const fast = new TestClock(slow.now().getTime() + 5 * 60_000);
  const w = await startWorld({ clock: slow, env: { JIRA_CONNECTION_TTL_SECONDS: String(HOUR) } });
  const other = await startServer({
    dir: w.server.dir,
    clock: fast,
    env: {
      TOKEN_VAULT_MASTER_KEY: w.server.env.TOKEN_VAULT_MASTER_KEY,
      JIRA_CONNECTION_TTL_SECONDS: String(HOUR),
    },
  });
  try {
    const id = await w.connect(w.alice);
    const t = await expiresAt(w, id);
    // One minute before expires_at on the slow instance, four minutes after on the fast one.
    slow.set(t - 60_000);
    fast.set(t + 4 * 60_000);
    const path = `/api/jira/connections/${id}?verify=1`;
    const onSlow = await w.server.call("GET", path, { token: w.alice.token });
    assert.equal(onSlow.status, 200, "the slow clock alone still allows it: skew is the budget");
    const onFast = await other.call("GET", path, { token: w.alice.token });
    assert.equal(onFast.status, 409);
    assert.equal(errorOf(onFast).code, "connection_expired");
    const afterFast = await w.server.call("GET", path, { token: w.alice.token });
    assert.equal(afterFast.status, 409, "the slow instance now refuses it too");
    assert.equal(errorOf(afterFast).code, "connection_expired");
    const expired = await w.server.services.events.list({ type: "expire" });
    assert.equal(expired.filter((e) => e.connection_id === id).length, 1);
  } finally {
    await other.close();
    await w.close();
  }
});

Deno.test("a connection keeps the lifetime it was created with: restarts with a shorter or longer TTL, and verifies, never move expires_at", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock, env: { JIRA_CONNECTION_TTL_SECONDS: String(HOUR) } });
  const key = w.server.env.TOKEN_VAULT_MASTER_KEY!;
  const path = (id: string) => `/api/jira/connections/${id}`;
  let id = "";
  let t = 0;
  try {
    id = await w.connect(w.alice);
    t = await expiresAt(w, id);
    for (const minutes of [5, 10, 15]) {
      clock.advance(minutes * 60_000);
      const v = await w.server.call("GET", `${path(id)}?verify=1`, { token: w.alice.token });
      assert.equal(v.status, 200, v.text);
      assert.equal(Date.parse(v.body.expires_at), t, "a verify does not extend the lifetime");
    }
    const extend = await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: { base_url: w.jira.url, pat: w.alice.pat, ttl: 2_592_000 },
    });
    assert.equal(extend.status, 400, "no request can choose its own lifetime");
  } finally {
    await w.server.close();
  }
  for (const ttl of ["60", "2592000"]) {
    const s = await startServer({
      dir: w.server.dir,
      clock,
      env: { TOKEN_VAULT_MASTER_KEY: key, JIRA_CONNECTION_TTL_SECONDS: ttl },
    });
    try {
      const got = await s.call("GET", path(id), { token: w.alice.token });
      assert.equal(Date.parse(got.body.expires_at), t, `TTL ${ttl} after a restart`);
      const fresh = await s.call("POST", "/api/jira/connections", {
        token: w.alice.token,
        json: { base_url: w.jira.url, pat: w.alice.pat },
      });
      assert.equal(fresh.status, 201, fresh.text);
      assert.equal(
        Date.parse(fresh.body.expires_at) - clock.now().getTime(),
        Number(ttl) * 1000,
        "a new connection gets the TTL in force",
      );
      if (ttl === "2592000") {
        clock.set(t - 1);
        const ok = await s.call("GET", `${path(id)}?verify=1`, { token: w.alice.token });
        assert.equal(ok.status, 200);
        clock.set(t);
        const late = await s.call("GET", `${path(id)}?verify=1`, { token: w.alice.token });
        assert.equal(late.status, 409, "a longer TTL later does not lengthen an old connection");
        assert.equal(errorOf(late).code, "connection_expired");
      }
    } finally {
      await s.close();
    }
  }
  await w.jira.close();
});

Deno.test("JIRA_CONNECTION_TTL_SECONDS outside 60 … 2592000 is refused at start, by name", () => {
  for (const ttl of ["0", "-1", "59", "2592001", "1e9", "forever"]) {
    assert.throws(
      () =>
        parseConfig({
          TOKEN_VAULT_MASTER_KEY: randomMasterKey(),
          JIRA_CONNECTION_TTL_SECONDS: ttl,
        }),
      (err) => err instanceof ConfigError && /JIRA_CONNECTION_TTL_SECONDS/.test(err.message),
      ttl,
    );
  }
});
