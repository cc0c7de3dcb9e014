/**
 * Per-user rate limits kept in KV: connection attempts (a brake on guessing PATs through
 * sosvault) and MCP tool calls. End to end against the real server and the fake Jira; the
 * window is moved with the test clock, never by sleeping.
 */
import assert from "node:assert/strict";
import { errorOf, startWorld } from "../helpers/world.ts";
import { startServer } from "../helpers/server.ts";
import { TestClock } from "../helpers/clock.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { freshDir } from "../helpers/paths.ts";
import { makeDcPat } from "../helpers/canary.ts";
import { RateLimiter } from "../../src/security/rate_limit.ts";
import { AppError } from "../../src/errors.ts";
import { ConfigError, parseConfig } from "../../src/config.ts";

const KEY = "11".repeat(32);
const UNKNOWN_ID = "jc_" + "A".repeat(32);

function connectBody(w: Awaited<ReturnType<typeof startWorld>>, pat: string) {
  return { base_url: w.jira.url, pat };
}

Deno.test("the 11th connection attempt within ten minutes is 429 rate_limited with Retry-After, and allowed again later", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock });
  try {
    // Failed attempts count too: this is the brake on guessing PATs.
    const wrong = await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: connectBody(w, makeDcPat()),
    });
    assert.equal(wrong.status, 422, wrong.text);
    for (let i = 0; i < 9; i++) await w.connect(w.alice);

    const jiraCalls = w.jira.jira.requests.length;
    const limited = await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: connectBody(w, w.alice.pat),
    });
    assert.equal(limited.status, 429, limited.text);
    const err = errorOf(limited);
    assert.equal(err.code, "rate_limited");
    assert.match(err.message, /at most 10 per 10 minutes/);
    assert.match(err.message, /Try again in a minute/);
    assert.equal(limited.headers.get("retry-after"), "60");
    assert.equal(w.jira.jira.requests.length, jiraCalls, "a refused attempt never reaches Jira");
    assert.ok(!limited.text.includes(w.alice.pat));
    const limitedEvents = (await w.server.services.events.list({ type: "connect" }))
      .filter((e) => e.error_code === "rate_limited");
    assert.equal(limitedEvents.length, 1);
    assert.equal(limitedEvents[0].outcome, "failure");
    assert.equal(limitedEvents[0].user, "alice");

    // Per user: bob's budget is his own.
    await w.connect(w.bob);

    // The budget refills one attempt every minute, and all of it after the window.
    clock.advance(30_000);
    const still = await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: connectBody(w, w.alice.pat),
    });
    assert.equal(still.status, 429);
    assert.equal(still.headers.get("retry-after"), "30");
    clock.advance(30_000);
    await w.connect(w.alice);
    assert.equal(
      (await w.server.call("POST", "/api/jira/connections", {
        token: w.alice.token,
        json: connectBody(w, w.alice.pat),
      })).status,
      429,
    );
    clock.advance(600_000);
    for (let i = 0; i < 10; i++) await w.connect(w.alice);
  } finally {
    await w.close();
  }
});

Deno.test("the connect page spends the same budget as the API", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock, env: { SOSVAULT_RATE_CONNECT: "3/600" } });
  try {
    for (let i = 0; i < 3; i++) await w.connect(w.alice);
    const { connect_url } = await w.server.services.connectLinks.create(
      { user: "alice", requestId: "req_test", source: "mcp" },
      w.jira.url,
    );
    const path = new URL(connect_url).pathname;
    const res = await fetch(w.server.url + path, {
      method: "POST",
      body: new URLSearchParams({ base_url: w.jira.url, pat: w.alice.pat }).toString(),
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        origin: w.server.url,
        "sec-fetch-site": "same-origin",
      },
    });
    const html = await res.text();
    assert.equal(res.status, 429, html);
    assert.equal(res.headers.get("retry-after"), "200");
    assert.match(html, /Too many connection attempts/);
    assert.ok(!html.includes(w.alice.pat));
  } finally {
    await w.close();
  }
});

Deno.test("two server instances over one KV file share one budget", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock });
  const second = await startServer({
    dir: w.server.dir,
    clock,
    env: { TOKEN_VAULT_MASTER_KEY: w.server.env.TOKEN_VAULT_MASTER_KEY! },
  });
  try {
    const post = (server: typeof second) =>
      server.call("POST", "/api/jira/connections", {
        token: w.alice.token,
        json: connectBody(w, w.alice.pat),
      });
    // Concurrently, half through each instance: exactly ten win.
    const results = await Promise.all(
      Array.from({ length: 14 }, (_, i) => post(i % 2 === 0 ? w.server : second)),
    );
    const statuses = results.map((r) => r.status).sort();
    assert.equal(statuses.filter((s) => s === 201).length, 10, `statuses: ${statuses}`);
    assert.equal(statuses.filter((s) => s === 429).length, 4, `statuses: ${statuses}`);
    for (const server of [w.server, second]) {
      const r = await post(server);
      assert.equal(r.status, 429);
      assert.equal(errorOf(r).code, "rate_limited");
    }
  } finally {
    await second.close();
    await w.close();
  }
});

Deno.test("MCP tool calls over the budget are isError results with rate_limited, before secret scanning", async () => {
  const clock = new TestClock();
  const w = await startWorld({ clock, env: { SOSVAULT_RATE_TOOLS: "3/60" } });
  const alice = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const bob = await connectMcp(w.server.url, w.bob.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  try {
    const id = await w.connect(w.alice);
    for (let i = 0; i < 3; i++) {
      const r = await alice.call("jira_connection_status", { connection_id: id });
      assert.ok(!r.isError, JSON.stringify(r));
    }
    const limited = toolError(await alice.call("jira_connection_status", { connection_id: id }));
    assert.equal(limited.code, "rate_limited");
    assert.match(limited.message, /Too many tool calls: at most 3 per minute/);
    assert.match(limited.message, /Try again in 20 seconds/);
    assert.match(limited.request_id, /^req_/);

    // Over the budget, even a call carrying a secret is refused before it is scanned.
    const pasted = await alice.call("jira_connection_status", {
      connection_id: id,
      note: w.alice.pat,
    });
    assert.equal(toolError(pasted).code, "rate_limited");
    assert.ok(!JSON.stringify(pasted).includes(w.alice.pat));
    assert.equal((await w.server.services.events.list({ type: "secret_rejected" })).length, 0);

    // Per user; and the budget refills with the clock.
    const bobs = await bob.call("jira_connection_status", { connection_id: UNKNOWN_ID });
    assert.equal(toolError(bobs).code, "not_found");
    clock.advance(20_000);
    const again = await alice.call("jira_connection_status", { connection_id: id });
    assert.ok(!again.isError, JSON.stringify(again));
  } finally {
    await alice.close();
    await bob.close();
    await w.close();
  }
});

Deno.test("a count of 0 turns a limit off", async () => {
  const w = await startWorld({
    env: { SOSVAULT_RATE_CONNECT: "0/60", SOSVAULT_RATE_TOOLS: "0/60" },
  });
  const alice = await connectMcp(w.server.url, w.alice.token);
  try {
    for (let i = 0; i < 15; i++) await w.connect(w.alice);
    for (let i = 0; i < 130; i++) {
      const r = await alice.call("jira_connection_status", { connection_id: UNKNOWN_ID });
      assert.equal(toolError(r).code, "not_found");
    }
    assert.equal(
      (await w.server.services.kv.get(["rate_limit", "connect", "alice"])).versionstamp,
      null,
      "a disabled limit stores nothing",
    );
  } finally {
    await alice.close();
    await w.close();
  }
});

Deno.test("RateLimiter.take() lets exactly the budget through under concurrency, over two KV handles on one file", async () => {
  const limits = { connect: { count: 25, seconds: 600 }, tool: { count: 0, seconds: 60 } };
  await twoInstances(limits, async (limiters) => {
    const outcomes = await Promise.all(
      Array.from(
        { length: 60 },
        (_, i) =>
          limiters[i % 2].take("connect", "alice").then(
            () => "ok",
            (err) => err instanceof AppError ? err.code : `unexpected: ${err}`,
          ),
      ),
    );
    assert.equal(outcomes.filter((o) => o === "ok").length, 25, outcomes.join());
    assert.deepEqual(new Set(outcomes), new Set(["ok", "rate_limited"]));
    // The tool bucket is off; another user is unaffected.
    await limiters[0].take("tool", "alice");
    await limiters[1].take("connect", "bob");
  });
});

Deno.test("SOSVAULT_RATE_CONNECT and SOSVAULT_RATE_TOOLS parse as <count>/<seconds>", () => {
  const d = parseConfig({ TOKEN_VAULT_MASTER_KEY: KEY });
  assert.deepEqual(d.rateLimits, {
    connect: { count: 10, seconds: 600 },
    tool: { count: 120, seconds: 60 },
  });
  const c = parseConfig({
    TOKEN_VAULT_MASTER_KEY: KEY,
    SOSVAULT_RATE_CONNECT: " 5/60 ",
    SOSVAULT_RATE_TOOLS: "0/60",
  });
  assert.deepEqual(c.rateLimits, {
    connect: { count: 5, seconds: 60 },
    tool: { count: 0, seconds: 60 },
  });
  for (const bad of ["10", "10/0", "-1/60", "1.5/60", "10/600/1", "ten/60", "10/86401"]) {
    try {
      parseConfig({ TOKEN_VAULT_MASTER_KEY: KEY, SOSVAULT_RATE_CONNECT: bad });
      assert.fail(`accepted ${bad}`);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.problems.length, 1);
      assert.match(err.problems[0], /^SOSVAULT_RATE_CONNECT must be <count>\/<seconds>/);
    }
  }
});

/** A KV handle that counts the commits made through it. */
/** Two limiters on two KV handles of one fresh file: two sosvault instances sharing a store. */
async function twoInstances(
  limits: ConstructorParameters<typeof RateLimiter>[2],
  fn: (limiters: [RateLimiter, RateLimiter], clock: TestClock) => Promise<void>,
) {
  const path = `${await freshDir("rate")}/rate.kv`;
  const a = await Deno.openKv(path);
  const b = await Deno.openKv(path);
  try {
    const clock = new TestClock();
    await fn([new RateLimiter(a, clock.now, limits), new RateLimiter(b, clock.now, limits)], clock);
  } finally {
    a.close();
    b.close();
  }
}

function countingCommits(kv: Deno.Kv): { kv: Deno.Kv; commits: () => number } {
  let n = 0;
  const wrapped = new Proxy(kv, {
    get(target, prop) {
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = () => {
            n++;
            return commit();
          };
          return op;
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { kv: wrapped, commits: () => n };
}

Deno.test("RateLimiter.take() spends a burst of one budget in few transactions, first come first served", async () => {
  const kv = await Deno.openKv(`${await freshDir("rate")}/rate.kv`);
  try {
    const clock = new TestClock();
    const counted = countingCommits(kv);
    const limiter = new RateLimiter(counted.kv, clock.now, {
      connect: { count: 0, seconds: 60 },
      tool: { count: 40, seconds: 60 },
    });
    const order: string[] = [];
    await Promise.all(Array.from({ length: 64 }, (_, i) =>
      limiter.take("tool", "alice").then(
        () => order.push(`ok${i}`),
        (err) => order.push(err instanceof AppError ? `${err.code}${i}` : `unexpected ${err}`),
      )));
    const granted = order.filter((o) => o.startsWith("ok")).map((o) => Number(o.slice(2)));
    assert.equal(granted.length, 40);
    assert.deepEqual(granted.sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => i));
    assert.ok(counted.commits() <= 3, `${counted.commits()} commits for one burst`);
    // The refusals say when the next call fits: one interval (1.5 s) from now → 2 s.
    await assert.rejects(limiter.take("tool", "alice"), (err: AppError) => {
      assert.equal(err.code, "rate_limited");
      assert.equal(err.retryAfter, 2);
      return true;
    });
    clock.advance(1_500);
    await limiter.take("tool", "alice");
  } finally {
    kv.close();
  }
});

Deno.test("RateLimiter.take() counts another instance's spending even between its own commits", async () => {
  const limits = { connect: { count: 0, seconds: 60 }, tool: { count: 6, seconds: 60 } };
  await twoInstances(limits, async ([one, other]) => {
    // Strictly alternating, so `one` always holds a copy of its own last write that `other`
    // has since made stale.
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) {
      outcomes.push(
        await (i % 2 ? other : one).take("tool", "alice").then(() => "ok", (e) => e.code),
      );
    }
    assert.deepEqual(outcomes, [...Array(6).fill("ok"), ...Array(4).fill("rate_limited")]);
  });
});

Deno.test("RateLimiter.take() leases a little of a budget with lots of slack: few commits, every grant committed", async () => {
  const kv = await Deno.openKv(`${await freshDir("rate")}/rate.kv`);
  try {
    const clock = new TestClock();
    const counted = countingCommits(kv);
    const limits = { connect: { count: 0, seconds: 60 }, tool: { count: 60_000, seconds: 60 } };
    const limiter = new RateLimiter(counted.kv, clock.now, limits);
    const start = clock.now().getTime();
    // A busy agent: bursts of 8 calls a millisecond apart, faster than the budget refills
    // (one a millisecond), so the stored arrival time runs ahead of the clock and counts all.
    for (let i = 0; i < 100; i++) {
      await Promise.all(Array.from({ length: 8 }, () => limiter.take("tool", "alice")));
      clock.advance(1);
    }
    assert.ok(counted.commits() <= 10, `${counted.commits()} commits for 800 calls`);
    // What was handed out, leases included, is spent in the store for every instance to see.
    const stored = await kv.get<{ tat: number }>(["rate_limit", "tool", "alice"]);
    const spent = Math.round(stored.value!.tat - start);
    assert.ok(spent >= 800, `${spent} spent for 800 calls`);
    assert.ok(spent <= 800 * 2, `${spent} spent for 800 calls: a lease is sized to the demand`);
  } finally {
    kv.close();
  }
});

Deno.test("RateLimiter.take() stays exact near the end of a budget shared by two instances", async () => {
  const limits = { connect: { count: 0, seconds: 60 }, tool: { count: 3000, seconds: 60 } };
  await twoInstances(limits, async (limiters) => {
    let ok = 0;
    let refused = 0;
    for (let round = 0; round < 250; round++) {
      await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          limiters[(round + i) % 2].take("tool", "alice").then(
            () => ok++,
            (err) => {
              assert.equal(err.code, "rate_limited");
              refused++;
            },
          )),
      );
    }
    assert.equal(ok + refused, 4000);
    assert.ok(ok <= 3000, `${ok} admitted on a budget of 3000`);
    // Leases shrink with what is left, so at most a sliver goes unused.
    assert.ok(ok >= 3000 - 3000 / 256, `only ${ok} of 3000 admitted`);
  });
});
