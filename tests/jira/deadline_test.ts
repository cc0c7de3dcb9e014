// JIRA_TIMEOUT_SECONDS is one deadline for a whole Jira call (issue 14, item 3): a Jira that
// accepts and never answers gets one request, never a retry; a connection Jira never accepted
// is retried, but only while the retry and its wait still fit inside the same deadline.

import assert from "node:assert/strict";
import { AppError } from "../../src/errors.ts";
import { JiraClient } from "../../src/jira/client.ts";
import { httpTransport, type JiraTransport } from "../../src/jira/transport.ts";
import { makeDcPat } from "../helpers/canary.ts";

const PAT = makeDcPat();

/** A loopback TCP server that accepts every connection and never writes a byte back. */
function silentServer(): { url: string; accepted: () => number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open: Deno.Conn[] = [];
  let accepted = 0;
  (async () => {
    for await (const conn of listener) {
      accepted++;
      open.push(conn);
      // Drain what the client sends so the request fully arrives, answer nothing.
      conn.readable.pipeTo(new WritableStream()).catch(() => {});
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    accepted: () => accepted,
    close: () => {
      listener.close();
      for (const c of open) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    },
  };
}

/** A loopback port nothing listens on: every connect is refused before a byte is sent. */
function refusedUrl(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `http://127.0.0.1:${port}`;
}

function counting(inner: JiraTransport): { transport: JiraTransport; calls: () => number } {
  let calls = 0;
  return {
    transport: (req) => {
      calls++;
      return inner(req);
    },
    calls: () => calls,
  };
}

async function rejects(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${err}`);
    return err;
  }
  assert.fail("expected the call to fail");
}

Deno.test("a Jira that accepts and never answers gets exactly one request, then upstream_unavailable", async () => {
  const server = silentServer();
  try {
    const t = counting(httpTransport());
    const client = new JiraClient({ transport: t.transport, timeoutMs: 1000 });
    const started = performance.now();
    const err = await rejects(client.getJson(server.url, "/rest/api/2/myself", PAT));
    const elapsed = performance.now() - started;
    assert.equal(err.code, "upstream_unavailable");
    assert.match(err.message, /did not answer in time/);
    assert.match(err.message, /JIRA_TIMEOUT_SECONDS/);
    // The count is the specification: no retry after a timeout.
    assert.equal(t.calls(), 1);
    assert.equal(server.accepted(), 1);
    // Loose sanity only (noisy machine): three full attempts would take at least 3x.
    assert.ok(elapsed < 3000, `the call took ${elapsed} ms`);
    assert.ok(!JSON.stringify(err).includes(PAT));
  } finally {
    server.close();
  }
});

Deno.test("a refused connection is retried (it never reached Jira) and ends upstream_unavailable", async () => {
  const t = counting(httpTransport());
  const client = new JiraClient({
    transport: t.transport,
    timeoutMs: 10_000,
    sleep: async () => {},
  });
  const err = await rejects(client.getJson(refusedUrl(), "/rest/api/2/myself", PAT));
  assert.equal(err.code, "upstream_unavailable");
  assert.match(err.message, /could not be reached/);
  assert.equal(t.calls(), 3, "one attempt and the two bounded retries");
});

Deno.test("a refused connection that then accepts succeeds on the retry", async () => {
  const refused = refusedUrl();
  let calls = 0;
  const real = httpTransport();
  const transport: JiraTransport = (req) => {
    calls++;
    // The first attempt goes to a closed port; the retry finds a Jira that answers.
    if (calls === 1) return real(new Request(refused + new URL(req.url).pathname, req));
    return Promise.resolve(Response.json({ name: "alice" }));
  };
  const client = new JiraClient({ transport, timeoutMs: 10_000, sleep: async () => {} });
  const body = await client.getJson("http://jira.invalid", "/rest/api/2/myself", PAT);
  assert.deepEqual(body, { name: "alice" });
  assert.equal(calls, 2);
});

Deno.test("retries and their waits stay inside the one deadline (injected clock)", async () => {
  let now = 0;
  const waits: number[] = [];
  let calls = 0;
  const refusedError = new TypeError("fetch failed", {
    cause: new Error(
      "client error (Connect): tcp connect error: Connection refused (os error 111)",
    ),
  });
  const transport: JiraTransport = () => {
    calls++;
    now += 100; // each refused connect costs 100 ms of the budget
    return Promise.reject(refusedError);
  };
  const client = new JiraClient({
    transport,
    timeoutMs: 500,
    retries: 5,
    now: () => now,
    sleep: (ms) => {
      waits.push(ms);
      now += ms;
      return Promise.resolve();
    },
  });
  const err = await rejects(client.getJson("http://jira.invalid", "/x", PAT));
  assert.equal(err.code, "upstream_unavailable");
  // t=100 after attempt 1; backoff(0) is 200..299 -> t<=399 (fits in 500); attempt 2 -> t<=499;
  // backoff(1) is 400..499, which would end past 500: not started, so the call ends there.
  assert.equal(calls, 2);
  assert.equal(waits.length, 1);
  assert.ok(now <= 500, `the clock reached ${now}`);
});

Deno.test("a 503 retry whose wait would pass the deadline is not waited for", async () => {
  let now = 0;
  let calls = 0;
  const transport: JiraTransport = () => {
    calls++;
    return Promise.resolve(
      new Response("busy", { status: 503, headers: { "content-type": "text/plain" } }),
    );
  };
  const client = new JiraClient({
    transport,
    timeoutMs: 150, // shorter than the first backoff (200 ms or more)
    now: () => now,
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
  });
  await rejects(client.getJson("http://jira.invalid", "/x", PAT));
  assert.equal(calls, 1);
  assert.equal(now, 0, "no wait was started");
});
