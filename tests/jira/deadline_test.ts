/**
 * JIRA_TIMEOUT_SECONDS is the deadline of one whole Jira call (issue 14, item 3): every attempt
 * and every wait between them fits inside it, a timeout is never retried, and only a failure
 * before the request was sent (connection refused) is. Durations are asserted only loosely,
 * beside the counts of connections and requests; the deadline arithmetic runs on an injected
 * clock.
 */
import assert from "node:assert/strict";
import { AppError } from "../../src/errors.ts";
import { JiraClient } from "../../src/jira/client.ts";
import { httpTransport, type JiraTransport } from "../../src/jira/transport.ts";
import { startFakeJira, testCaPem } from "../helpers/fake_jira_server.ts";
import { makeDcPat } from "../helpers/canary.ts";
import { startWorld } from "../helpers/world.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { overrideFake } from "../hardening/_helpers.ts";

const transport = httpTransport(await testCaPem());
const TLS_DIR = new URL("../fixtures/tls/", import.meta.url);

/** Awaits a rejection and returns the AppError. */
async function appErrorOf(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(() => assert.fail("expected a failure, got success"), (e) => e);
  assert.ok(err instanceof AppError, `not an AppError: ${err}`);
  return err;
}

/** A loopback listener that accepts connections, counts them and never sends a byte. */
function silentServer(tls?: { cert: string; key: string }) {
  const listener = tls
    ? Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...tls })
    : Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const requests: string[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.push(conn);
        // Reads what arrives (a TLS handshake, or a request once TLS is up), answers nothing.
        void (async () => {
          const buf = new Uint8Array(65536);
          try {
            for (;;) {
              const n = await conn.read(buf);
              if (n === null) return;
              const text = new TextDecoder().decode(buf.subarray(0, n));
              if (/^GET /.test(text)) requests.push(text.split("\r\n")[0]);
            }
          } catch {
            // Closed by the client or by close().
          }
        })();
      }
    } catch {
      // The listener was closed.
    }
  })();
  return {
    url: `https://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    conns,
    requests,
    async close() {
      listener.close();
      await accepting;
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}

/** The error Deno's fetch really throws for a refused connection (a port nobody listens on). */
async function refusedError(): Promise<unknown> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return await fetch(`https://127.0.0.1:${port}/`).then(
    () => assert.fail("a closed port answered"),
    (e) => e,
  );
}

Deno.test("a Jira that accepts the TCP connection and never answers gets one connection and upstream_unavailable", async () => {
  const server = silentServer();
  const client = new JiraClient({ transport, timeoutMs: 1000 });
  const pat = makeDcPat();
  try {
    const err = await appErrorOf(client.getJson(server.url, "/rest/api/2/myself", pat));
    assert.equal(err.code, "upstream_unavailable");
    assert.match(err.message, /did not answer in time/);
    assert.match(err.message, /JIRA_TIMEOUT_SECONDS/);
    assert.equal(server.conns.length, 1, "a timeout is not retried");
    assert.ok(!JSON.stringify(err).includes(pat));
  } finally {
    await server.close();
  }
});

Deno.test("a Jira that completes TLS, takes the request and never answers sees exactly one request", async () => {
  const [cert, key] = await Promise.all([
    Deno.readTextFile(new URL("server.pem", TLS_DIR)),
    Deno.readTextFile(new URL("server-key.pem", TLS_DIR)),
  ]);
  const server = silentServer({ cert, key });
  const client = new JiraClient({ transport, timeoutMs: 1000 });
  const started = performance.now();
  try {
    const err = await appErrorOf(client.getJson(server.url, "/rest/api/2/myself", makeDcPat()));
    assert.equal(err.code, "upstream_unavailable");
    assert.match(err.message, /did not answer in time/);
    assert.equal(server.conns.length, 1);
    assert.deepEqual(server.requests, ["GET /rest/api/2/myself HTTP/1.1"]);
    // Loose, beside the counts: three attempts of a full second each would take more.
    assert.ok(performance.now() - started < 3000, "the whole call is bounded by the timeout");
  } finally {
    await server.close();
  }
});

Deno.test("a refused connection (nothing sent yet) is retried and the call then succeeds", async () => {
  const jira = await startFakeJira();
  const pat = makeDcPat();
  jira.jira.addUser({ name: "fred", displayName: "Fred" });
  jira.jira.addPat("fred", pat);
  const refused = await refusedError();
  let attempts = 0;
  const flaky: JiraTransport = (req) => {
    attempts++;
    return attempts <= 2 ? Promise.reject(refused) : transport(req);
  };
  const client = new JiraClient({
    transport: flaky,
    timeoutMs: 5000,
    sleep: () => Promise.resolve(),
  });
  try {
    const me = await client.myself(jira.url, pat);
    assert.equal(me.name, "fred");
    assert.equal(attempts, 3);
    assert.equal(jira.jira.requests.length, 1, "only the last attempt reached Jira");
  } finally {
    await jira.close();
  }
});

Deno.test("a connection refused every time is retried twice (it never reached Jira), then upstream_unavailable", async () => {
  const refused = await refusedError();
  let attempts = 0;
  const client = new JiraClient({
    transport: () => {
      attempts++;
      return Promise.reject(refused);
    },
    timeoutMs: 10_000,
    sleep: () => Promise.resolve(),
  });
  const err = await appErrorOf(client.getJson("https://j.example", "/x", makeDcPat()));
  assert.equal(err.code, "upstream_unavailable");
  assert.match(err.message, /could not be reached/);
  assert.equal(attempts, 3, "one attempt and the two bounded retries");
});

Deno.test("a transport failure that is not a refused connection is not retried", async () => {
  let attempts = 0;
  const broken: JiraTransport = () => {
    attempts++;
    return Promise.reject(
      new TypeError("fetch failed", {
        cause: new Error("client error (SendRequest): connection closed before message completed"),
      }),
    );
  };
  const client = new JiraClient({
    transport: broken,
    timeoutMs: 5000,
    sleep: () => Promise.resolve(),
  });
  const err = await appErrorOf(client.getJson("https://j.example", "/x", makeDcPat()));
  assert.equal(err.code, "upstream_unavailable");
  assert.equal(attempts, 1, "the request may have reached Jira: not sent twice");
});

/** A client on a hand-moved clock: sleeping and each attempt move it, nothing really waits. */
function clockedClient(timeoutMs: number, answer: (attempt: number) => Promise<Response>) {
  let now = 1_000_000;
  const attempts: number[] = [];
  const client = new JiraClient({
    timeoutMs,
    now: () => now,
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
    transport: (req) => {
      attempts.push(now);
      assert.ok(!req.signal.aborted, "no attempt starts after the deadline");
      return answer(attempts.length);
    },
  });
  return { client, attempts, now: () => now, advance: (ms: number) => (now += ms) };
}

Deno.test("retries of refused connections stop when the next wait would pass the deadline", async () => {
  const refused = await refusedError();
  // Each attempt costs 400 ms of the 1000 ms; backoff after the first is 200-299 ms.
  const c = clockedClient(1000, () => {
    c.advance(400);
    return Promise.reject(refused);
  });
  const err = await appErrorOf(c.client.getJson("https://j.example", "/x", makeDcPat()));
  assert.equal(err.code, "upstream_unavailable");
  assert.equal(c.attempts.length, 2, "a third attempt would start past the deadline");
});

Deno.test("a 503 retry whose wait would pass the deadline is not waited for", async () => {
  // 150 ms is shorter than the first backoff (200 ms or more).
  const c = clockedClient(
    150,
    () =>
      Promise.resolve(
        new Response("busy", { status: 503, headers: { "content-type": "text/plain" } }),
      ),
  );
  await appErrorOf(c.client.getJson("https://j.example", "/x", makeDcPat()));
  assert.equal(c.attempts.length, 1);
  assert.equal(c.now(), 1_000_000, "no wait was started");
});

Deno.test("a 429 whose Retry-After ends past the deadline answers rate_limited without waiting", async () => {
  const c = clockedClient(
    1000,
    () => Promise.resolve(new Response("{}", { status: 429, headers: { "retry-after": "2" } })),
  );
  const err = await appErrorOf(c.client.getJson("https://j.example", "/x", makeDcPat()));
  assert.equal(err.code, "rate_limited");
  assert.equal(c.attempts.length, 1, "no wait of 2 s inside a 1 s deadline");
});

Deno.test("a 429 whose Retry-After fits the deadline is retried within it", async () => {
  const c = clockedClient(
    5000,
    (n) =>
      Promise.resolve(
        n === 1
          ? new Response("{}", { status: 429, headers: { "retry-after": "1" } })
          : Response.json({ ok: true }),
      ),
  );
  assert.deepEqual(await c.client.getJson("https://j.example", "/x", makeDcPat()), { ok: true });
  assert.deepEqual(c.attempts, [1_000_000, 1_001_000]);
});

Deno.test("JIRA_TIMEOUT_SECONDS=1 over MCP: a Jira that stops answering gets one request, and the tool answers upstream_unavailable", async () => {
  const w = await startWorld({ env: { JIRA_TIMEOUT_SECONDS: "1" } });
  let hang = false;
  let hung = 0;
  const release: Array<() => void> = [];
  const jira = await startFakeJira({
    jira: overrideFake(w.jira.jira, (req) => {
      if (!hang || !new URL(req.url).pathname.includes("/issue/")) return undefined;
      hung++;
      return new Promise((resolve) =>
        release.push(() => resolve(new Response(null, { status: 503 })))
      );
    }),
  });
  const mcp = await connectMcp(w.server.url, w.alice.token);
  try {
    const id = (await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: { base_url: jira.url, pat: w.alice.pat },
    })).body.connection_id;
    hang = true;
    const result = await mcp.call("jira_list_attachments", {
      connection_id: id,
      issue_key: "SUP-1",
    });
    assert.equal(toolError(result).code, "upstream_unavailable");
    assert.equal(hung, 1, "the timed-out request was not sent again");
  } finally {
    for (const r of release) r();
    await mcp.close();
    await jira.close();
    await w.close();
  }
});
