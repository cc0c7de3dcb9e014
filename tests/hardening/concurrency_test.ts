/**
 * Revoke against use, concurrently (SECURITY_TESTS T9): once a revoke has answered, no request
 * with that PAT starts towards Jira — on this instance or another process sharing the KV file —
 * and every upload in flight ends with connection_revoked. No timed assertions: each test waits
 * for the state it needs (progress seen, calls settled) and then checks what happened.
 */
import assert from "node:assert/strict";
import { connectMcp, type McpTestClient, toolError } from "../helpers/mcp.ts";
import { freshDir } from "../helpers/paths.ts";
import { serveProcess } from "../helpers/process.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { addUsersDirect, childEnv, startTappedWorld, type TappedWorld } from "./_helpers.ts";

const MiB = 1024 * 1024;
/** Slow enough that no upload of BIG bytes can finish during a test: 8 MiB at 64 KiB/s is 128 s. */
const THROTTLE = 64 * 1024;
const BIG = 8 * MiB;

async function bigArtifact(path: string): Promise<string> {
  await Deno.writeFile(path, new Uint8Array(BIG), { mode: 0o600 });
  return path;
}

/** What sosvault started with alice's PAT from `epoch` on, without the PAT (failures print it). */
function sentAfter(w: TappedWorld, epoch: number): string[] {
  return w.tap.started(w.alice.pat, epoch, true).map((r) => `${r.method} ${r.path}`);
}

function metaRequests(w: { jira: { jira: { requests: Array<{ path: string }> } } }): number {
  return w.jira.jira.requests.filter((r) => r.path.endsWith("/attachment/meta")).length;
}

/** Waits (bounded) for a state the test needs; the wait is not what the test asserts. */
async function until(done: () => boolean, what: string, limitMs = 30_000): Promise<void> {
  for (let waited = 0; !done(); waited += 5) {
    if (waited > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Starts `n` attach calls; `begun(k)` resolves once k of them have sent upload bytes. */
function attachMany(mcp: McpTestClient, n: number, args: Record<string, unknown>) {
  let uploading = 0;
  const waiters: Array<[number, () => void]> = [];
  const calls = Array.from({ length: n }, () => {
    let counted = false;
    return mcp.call("jira_attach_artifact", args, (p) => {
      if (p.progress > 0 && !counted) {
        counted = true;
        uploading++;
        for (const [k, resolve] of waiters) if (uploading >= k) resolve();
      }
    });
  });
  return {
    calls,
    begun: (k: number) =>
      new Promise<void>((resolve) => {
        if (uploading >= k) resolve();
        else waiters.push([k, resolve]);
      }),
  };
}

Deno.test("a revoke answered while 50 attach calls are in flight ends all 50 with connection_revoked, and no request with that PAT starts after it", async () => {
  const w = await startTappedWorld();
  const mcp = await connectMcp(w.url, w.alice.token, { recordFile: `${w.dir}/mcp.log` });
  try {
    const id = await w.connect(w.alice);
    const ref = await bigArtifact(`${w.dir}/artifacts/alice/big.bin`);
    // Every Jira answer takes a while, so calls wait in their pre-flight GETs (attachment/meta,
    // then the issue) holding the decrypted PAT, and uploads cannot finish.
    w.jira.jira.setOptions({ uploadBytesPerSecond: THROTTLE, latencyMs: 300 });
    const args = { connection_id: id, issue_key: "SUP-1", artifact_ref: ref };
    const uploading = attachMany(mcp, 25, args);
    await uploading.begun(25);
    const preflight = attachMany(mcp, 25, args);
    await until(() => metaRequests(w) >= 50, "the second 25 calls to reach attachment/meta");
    const revoked = await w.call("DELETE", `/api/jira/connections/${id}`, {
      token: w.alice.token,
    });
    const after = w.tap.mark();
    assert.equal(revoked.status, 200, revoked.text);

    const results = await Promise.all([...uploading.calls, ...preflight.calls]);
    const codes = results.map((r) => toolError(r).code);
    assert.deepEqual([...new Set(codes)], ["connection_revoked"], `codes: ${codes}`);
    assert.deepEqual(sentAfter(w, after), [], "no request started after the revoke");
    const sent = w.tap.started(w.alice.pat, 0, true).length;
    const received = w.jira.jira.requests.filter((r) =>
      r.headers.authorization === `Bearer ${w.alice.pat}`
    ).length;
    assert.ok(received <= sent, `Jira received ${received} requests, sosvault started ${sent}`);
    assert.equal(w.jira.jira.issue("SUP-1")!.attachments.length, 0, "no upload completed");

    const events = await w.services.events.list({ limit: 1000 });
    assert.equal(events.filter((e) => e.type === "revoke" && e.connection_id === id).length, 1);
    const attaches = events.filter((e) => e.type === "attach");
    assert.equal(attaches.length, 50, "one attach event per call");
    assert.ok(attaches.every((e) => e.error_code === "connection_revoked"));
  } finally {
    await mcp.close();
    await w.close();
    // Eight MiB of zeros would only slow the canary sweep down.
    await Deno.remove(`${w.dir}/artifacts/alice/big.bin`).catch(() => {});
  }
});

Deno.test("20 rounds of uses racing one revoke: whatever started after the revoke answered is refused and sends nothing", async () => {
  const w = await startTappedWorld();
  const mcp = await connectMcp(w.url, w.alice.token, { recordFile: `${w.dir}/mcp.log` });
  try {
    const small = `${w.dir}/artifacts/alice/small.txt`;
    await Deno.writeTextFile(small, "hello\n", { mode: 0o600 });
    // Slow answers keep the racing uses in flight while the revoke runs.
    w.jira.jira.setOptions({ latencyMs: 40 });
    for (let round = 0; round < 20; round++) {
      w.tap.mark();
      const id = await w.connect(w.alice);
      const verify = () =>
        w.call("GET", `/api/jira/connections/${id}?verify=1`, { token: w.alice.token });
      const list = () =>
        mcp.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-1" });
      const attach = () =>
        mcp.call("jira_attach_artifact", {
          connection_id: id,
          issue_key: "SUP-1",
          artifact_ref: small,
        });
      const racing = [verify(), list(), attach(), verify(), list(), attach()];
      const revoke = await w.call("DELETE", `/api/jira/connections/${id}`, {
        token: w.alice.token,
      });
      const after = w.tap.mark();
      assert.equal(revoke.status, 200);
      const late = [verify(), list(), attach()];

      for (const r of await Promise.all(racing)) {
        // In flight at the revoke: done before it (a verify may report the revoked state), or
        // refused; never anything else.
        const code = "status" in r
          ? (r.status === 200 ? null : r.body?.error?.code)
          : (r.isError ? toolError(r).code : null);
        assert.ok(code === null || code === "connection_revoked", `round ${round}: ${code}`);
      }
      const [lateVerify, lateList, lateAttach] = await Promise.all(late);
      assert.equal(lateVerify.status, 409);
      assert.equal(lateVerify.body.error.code, "connection_revoked");
      assert.equal(toolError(lateList).code, "connection_revoked");
      assert.equal(toolError(lateAttach).code, "connection_revoked");
      assert.deepEqual(sentAfter(w, after), [], `round ${round}: sent after the revoke`);
      const revokes = await w.services.events.list({ type: "revoke", limit: 1000 });
      assert.equal(revokes.filter((e) => e.connection_id === id).length, 1, "one revoke event");
    }
  } finally {
    await mcp.close();
    await w.close();
  }
});

Deno.test("a revoke on one server process is enforced on another sharing its KV: the upload in flight there is cancelled and the next use refused", async () => {
  const dir = await freshDir("two-processes");
  // A long idle timeout: without the cancellation the upload would simply go on.
  const env = childEnv(dir, { JIRA_TIMEOUT_SECONDS: "120" });
  const { alice: token } = await addUsersDirect(env.SOSVAULT_KV_PATH, ["alice"]);
  const pat = await newCanaryPat();
  const jira = await startFakeJira();
  jira.jira.addUser({ name: "alice.jira", displayName: "Alice Example" });
  jira.jira.addPat("alice.jira", pat);
  jira.jira.addIssue({ key: "SUP-1" });
  await Deno.mkdir(`${dir}/artifacts/alice`, { recursive: true, mode: 0o700 });
  const ref = await bigArtifact(`${dir}/artifacts/alice/big.bin`);
  const a = await serveProcess(dir, env);
  const b = await serveProcess(dir, env);
  const onB = await connectMcp(b.url, token, { recordFile: `${dir}/mcp.log` });
  try {
    const created = await fetch(`${a.url}/api/jira/connections`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ base_url: jira.url, pat }),
    });
    const id = (await created.json()).connection_id;
    assert.equal(created.status, 201);

    jira.jira.setOptions({ uploadBytesPerSecond: THROTTLE });
    const run = attachMany(onB, 1, { connection_id: id, issue_key: "SUP-1", artifact_ref: ref });
    await run.begun(1);
    const revoke = await fetch(`${a.url}/api/jira/connections/${id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(revoke.status, 200);
    assert.equal((await revoke.json()).status, "revoked");

    const err = toolError(await run.calls[0]);
    assert.equal(err.code, "connection_revoked", "B's upload was cancelled");
    assert.match(err.message, /cancelled/);
    const seen = jira.jira.requests.length;
    const next = toolError(
      await onB.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-1" }),
    );
    assert.equal(next.code, "connection_revoked", "B refuses the next use at once");
    const status = await onB.call("jira_connection_status", { connection_id: id });
    assert.equal(status.structuredContent.status, "revoked");
    assert.equal(jira.jira.requests.length, seen, "B sent nothing more to Jira");
    assert.equal(jira.jira.issue("SUP-1")!.attachments.length, 0);
  } finally {
    await onB.close();
    await a.stop();
    await b.stop();
    await jira.close();
    await Deno.remove(ref).catch(() => {});
  }
});
