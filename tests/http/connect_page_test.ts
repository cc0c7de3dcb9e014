/**
 * The one-time connect page end to end (DESIGN.md 5, 7.7; SECURITY_TESTS T18): the real
 * services over real HTTP, real KV on disk, the fake Jira on HTTPS. Every page is recorded in
 * the server's responses.log so the canary sweep proves no PAT ever comes back in HTML.
 */
import assert from "node:assert/strict";
import { startWorld, type World } from "../helpers/world.ts";
import { type StartOptions, startServer } from "../helpers/server.ts";
import { TestClock } from "../helpers/clock.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import type { ConnectLinks } from "../../src/connect/links.ts";
import type { Services } from "../../src/services.ts";

// ---- helper: until app.ts mounts the page, serve it beside the world's server --------------

interface Page {
  status: number;
  headers: Headers;
  text: string;
}

interface Mounted {
  url: string;
  links: ConnectLinks;
  close(): Promise<void>;
}

/** Serves `/connect` exactly as app.ts will (same middleware), over the given services. */
/** The real app serves /connect; this names its URL and link factory for the tests. */
function mountConnectPage(server: { url: string; services: Services }): Mounted {
  return { url: server.url, links: server.services.connectLinks, close: async () => {} };
}

interface ConnectWorld extends World {
  page: Mounted;
  /** A link as the MCP tool will make it, for `who`; returns the path `/connect/<code>`. */
  link(who: "alice" | "bob", baseUrl?: string): Promise<string>;
  /** Requests a page and records the whole answer for the canary sweep. */
  fetchPage(method: string, path: string, init?: PageInit, base?: string): Promise<Page>;
  /** POSTs the form the way a browser on the page's own origin does. */
  submit(
    path: string,
    form: Record<string, string>,
    headers?: Record<string, string>,
  ): Promise<Page>;
  connectionsOf(
    who: { token: string },
  ): Promise<{ connection_id: string; jira_user: { name: string } }[]>;
}

interface PageInit {
  body?: BodyInit;
  headers?: Record<string, string>;
}

async function startConnectWorld(options: StartOptions = {}): Promise<ConnectWorld> {
  const w = await startWorld(options);
  const page = mountConnectPage(w.server);
  const respFile = await Deno.open(`${w.server.dir}/responses.log`, { append: true, create: true });
  const enc = new TextEncoder();
  const fetchPage = async (method: string, path: string, init: PageInit = {}, base = page.url) => {
    const res = await fetch(base + path, { method, headers: init.headers, body: init.body });
    const text = await res.text();
    respFile.writeSync(enc.encode(
      `${method} ${path} -> ${res.status}\n${JSON.stringify([...res.headers])}\n${text}\n\n`,
    ));
    return { status: res.status, headers: res.headers, text };
  };
  return {
    ...w,
    page,
    async link(who, baseUrl) {
      const { connect_url } = await page.links.create(
        { user: who, requestId: "req_test", source: "mcp" },
        baseUrl,
      );
      return new URL(connect_url).pathname;
    },
    fetchPage,
    submit(path, form, headers = {}) {
      return fetchPage("POST", path, {
        body: new URLSearchParams(form).toString(),
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          origin: page.url,
          "sec-fetch-site": "same-origin",
          ...headers,
        },
      });
    },
    async connectionsOf(who) {
      const res = await w.server.call("GET", "/api/jira/connections", { token: who.token });
      assert.equal(res.status, 200, res.text);
      return res.body.connections;
    },
    async close() {
      await page.close();
      respFile.close();
      await w.close();
    },
  };
}

function connectionIdIn(html: string): string {
  const m = /<code id="connection-id">(jc_[A-Za-z0-9_-]+)<\/code>/.exec(html);
  assert.ok(m, `no #connection-id in the page:\n${html}`);
  return m[1];
}

function assertHtmlPage(p: Page) {
  assert.match(p.headers.get("content-type") ?? "", /^text\/html; charset=utf-8$/);
  assert.match(p.text, /^<!doctype html>/);
  assert.doesNotMatch(p.text, /"error":|\bat [\w.]+ \(|Error: /, "no JSON, no stack");
  assertHardened(p);
}

function assertHardened(p: Page) {
  const csp = p.headers.get("content-security-policy") ?? "";
  const nonce = /style-src 'nonce-([A-Za-z0-9+/=]{16,})'/.exec(csp)?.[1];
  assert.ok(nonce, `CSP without a style nonce: ${csp}`);
  assert.equal(
    csp,
    `default-src 'none'; style-src 'nonce-${nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  );
  assert.ok(p.text.includes(`<style nonce="${nonce}">`), "the inline style carries the nonce");
  assert.equal(p.headers.get("x-frame-options"), "DENY");
  assert.equal(p.headers.get("referrer-policy"), "no-referrer");
  assert.equal(p.headers.get("cache-control"), "no-store");
  assert.equal(p.headers.get("x-content-type-options"), "nosniff");
  // No script and nothing loaded from anywhere: no src/href, no CSS url() or @import.
  assert.doesNotMatch(
    p.text,
    /<script|<link|<img|<iframe|<object|\b(src|href|srcset)=|url\(|@import/i,
  );
}

// ---- GET ------------------------------------------------------------------------------------

Deno.test("GET /connect/{code} names the user the connection will belong to, under a strict CSP", async () => {
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice", w.jira.url);
    const p = await w.fetchPage("GET", path);
    assert.equal(p.status, 200, p.text);
    assertHtmlPage(p);
    assert.match(p.text, /will belong to sosvault user <strong id="owner">alice<\/strong>/);
    assert.match(p.text, /Continue only if you are <strong>alice<\/strong>/);
    assert.ok(p.text.includes(`name="base_url" type="url"`));
    assert.ok(p.text.includes(`value="${w.jira.url}"`), "base URL pre-filled from the link");
    assert.match(p.text, /<input id="pat" name="pat" type="password" required autocomplete="off"/);
    assert.match(p.text, /<form method="post" autocomplete="off">/);
    assert.match(p.text, /Allowed Jira hosts: <code>127\.0\.0\.1<\/code>, <code>localhost<\/code>/);
    assert.match(
      p.text,
      /expires at <time datetime="[^"]+Z">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/time>/,
    );
    assert.match(p.text, /<button type="submit">Connect<\/button>/);
    assert.doesNotMatch(p.text, /bob/);
    assert.match(p.headers.get("x-request-id") ?? "", /^req_/);
  } finally {
    await w.close();
  }
});

Deno.test("a link without a base URL shows an empty base URL field", async () => {
  const w = await startConnectWorld();
  try {
    const p = await w.fetchPage("GET", await w.link("bob"));
    assert.equal(p.status, 200);
    assert.match(p.text, /will belong to sosvault user <strong id="owner">bob<\/strong>/);
    assert.match(p.text, /name="base_url"[^>]* value="">/);
  } finally {
    await w.close();
  }
});

Deno.test("connect page escapes everything it shows (markup in a pre-filled base URL stays text)", async () => {
  const w = await startConnectWorld();
  try {
    const evil = `https://jira.example.com/"><script>alert(1)</script><x y='`;
    const p = await w.fetchPage("GET", await w.link("alice", evil));
    assert.equal(p.status, 200);
    assert.ok(!p.text.includes("<script>"));
    assert.ok(!p.text.includes(`"><`));
    assert.ok(p.text.includes("&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;&#60;x y=&#39;"));
  } finally {
    await w.close();
  }
});

Deno.test("an unknown or malformed code is a 404 HTML page that reveals nothing", async () => {
  const w = await startConnectWorld();
  try {
    await w.link("alice", w.jira.url);
    for (
      const path of [
        "/connect/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/connect/short",
        "/connect/%2e%2e%2fapi",
        "/connect/",
        "/connect/a/b",
      ]
    ) {
      const p = await w.fetchPage("GET", path);
      assert.equal(p.status, 404, path);
      assertHtmlPage(p);
      assert.match(p.text, /This connect link is not valid/, path);
      assert.doesNotMatch(p.text, /alice|<form/, path);
    }
    const post = await w.submit("/connect/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", {
      base_url: w.jira.url,
      pat: w.alice.pat,
    });
    assert.equal(post.status, 404);
    assertHtmlPage(post);
    assert.equal(w.jira.jira.requests.length, 0, "Jira is not contacted for an unknown code");
  } finally {
    await w.close();
  }
});

Deno.test("other methods on a connect link are 405 HTML with Allow", async () => {
  const w = await startConnectWorld();
  try {
    const p = await w.fetchPage("PUT", await w.link("alice"));
    assert.equal(p.status, 405);
    assert.equal(p.headers.get("allow"), "GET, POST");
    assertHtmlPage(p);
  } finally {
    await w.close();
  }
});

// ---- POST: success, reuse -------------------------------------------------------------------

Deno.test("POST with alice's PAT creates alice's connection and shows its id; reuse says already used", async () => {
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice", w.jira.url);
    const p = await w.submit(path, { base_url: w.jira.url, pat: w.alice.pat });
    assert.equal(p.status, 200, p.text);
    assertHtmlPage(p);
    const id = connectionIdIn(p.text);
    assert.match(p.text, /Return to your assistant and give it this connection id/);
    assert.match(p.text, /Alice Example/);
    assert.ok(!p.text.includes(w.alice.pat));

    const mine = await w.connectionsOf(w.alice);
    assert.deepEqual(mine.map((c) => c.connection_id), [id]);
    assert.deepEqual(await w.connectionsOf(w.bob), []);
    const api = await w.server.call("GET", `/api/jira/connections/${id}`, { token: w.alice.token });
    assert.equal(api.status, 200);
    assert.equal(api.body.status, "connected");

    const [event] = await w.server.services.events.list({ type: "connect" });
    assert.equal(event.user, "alice");
    assert.equal(event.source, "http");
    assert.equal(event.outcome, "success");

    const again = await w.submit(path, { base_url: w.jira.url, pat: w.alice.pat });
    assert.equal(again.status, 404);
    assertHtmlPage(again);
    assert.match(again.text, /already been used/);
    assert.doesNotMatch(again.text, /<form/);
    const reopen = await w.fetchPage("GET", path);
    assert.equal(reopen.status, 404);
    assert.match(reopen.text, /already been used/);
    assert.equal((await w.connectionsOf(w.alice)).length, 1, "a replay creates nothing");
    for (const page of [p, again, reopen]) assert.ok(!page.text.includes(w.alice.pat));
  } finally {
    await w.close();
  }
});

Deno.test("the code is the capability: whoever submits alice's link, the connection is alice's", async () => {
  // Security: the page cannot know who is at the keyboard; it names the owner (alice) before
  // anything is submitted, so bob (or a phished victim) can see whose account would get the token.
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice", w.jira.url);
    const shown = await w.fetchPage("GET", path, {
      headers: { authorization: `Bearer ${w.bob.token}` },
    });
    assert.match(shown.text, /will belong to sosvault user <strong id="owner">alice<\/strong>/);
    const p = await w.submit(path, { base_url: w.jira.url, pat: w.bob.pat }, {
      authorization: `Bearer ${w.bob.token}`,
    });
    assert.equal(p.status, 200, p.text);
    const id = connectionIdIn(p.text);
    assert.match(p.text, /connected for sosvault user <strong>alice<\/strong>/);
    const alices = await w.connectionsOf(w.alice);
    assert.deepEqual(alices.map((c) => [c.connection_id, c.jira_user.name]), [[id, "bob.jira"]]);
    assert.deepEqual(await w.connectionsOf(w.bob), []);
    const asBob = await w.server.call("GET", `/api/jira/connections/${id}`, { token: w.bob.token });
    assert.equal(asBob.status, 404);
  } finally {
    await w.close();
  }
});

Deno.test("a replay fails on every instance sharing the KV, and concurrent submissions connect once", async () => {
  const w = await startConnectWorld();
  const second = await startServer({
    dir: w.server.dir,
    env: { TOKEN_VAULT_MASTER_KEY: w.server.env.TOKEN_VAULT_MASTER_KEY! },
  });
  const otherPage = mountConnectPage(second);
  try {
    const used = await w.link("alice", w.jira.url);
    assert.equal((await w.submit(used, { base_url: w.jira.url, pat: w.alice.pat })).status, 200);
    const replay = await w.fetchPage("POST", used, {
      body: new URLSearchParams({ base_url: w.jira.url, pat: w.alice.pat }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    }, otherPage.url);
    assert.equal(replay.status, 404);
    assert.match(replay.text, /already been used/);

    // Security: while one submission of a code runs, the others are refused on every instance.
    const rounds = 5;
    for (let round = 0; round < rounds; round++) {
      const raced = await w.link("alice", w.jira.url);
      const body = new URLSearchParams({ base_url: w.jira.url, pat: w.alice.pat }).toString();
      const headers = { "content-type": "application/x-www-form-urlencoded" };
      const results = await Promise.all(
        [w.page.url, otherPage.url, w.page.url, otherPage.url].map((base) =>
          w.fetchPage("POST", raced, { body, headers }, base)
        ),
      );
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses}`);
      for (const r of results.filter((r) => r.status !== 200)) {
        assert.ok([404, 409].includes(r.status), `a loser answered ${r.status}: ${r.text}`);
        assert.match(r.text, /already been used|being submitted right now/);
      }
    }
    assert.equal((await w.connectionsOf(w.alice)).length, 1 + rounds, "one connection per link");
  } finally {
    await otherPage.close();
    await second.close();
    await w.close();
  }
});

// ---- expiry ---------------------------------------------------------------------------------

Deno.test("a link expires 10 minutes after it was made (injected clock), with a clear 410 page", async () => {
  const clock = new TestClock();
  const w = await startConnectWorld({ clock });
  try {
    const path = await w.link("alice", w.jira.url);
    clock.advance(10 * 60_000 - 1);
    assert.equal((await w.fetchPage("GET", path)).status, 200, "still valid 1 ms before expiry");
    clock.advance(1);
    const p = await w.fetchPage("GET", path);
    assert.equal(p.status, 410);
    assertHtmlPage(p);
    assert.match(p.text, /This connect link has expired \(links are valid for 10 minutes\)/);
    assert.doesNotMatch(p.text, /alice|<form/);
    const post = await w.submit(path, { base_url: w.jira.url, pat: w.alice.pat });
    assert.equal(post.status, 410);
    assert.match(post.text, /has expired/);
    assert.deepEqual(await w.connectionsOf(w.alice), []);
    assert.equal(w.jira.jira.requests.length, 0, "an expired link never reaches Jira");
  } finally {
    await w.close();
  }
});

// ---- CSRF and framing -----------------------------------------------------------------------

Deno.test("cross-site POST (Origin: https://evil.example) is refused and costs no attempt", async () => {
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice", w.jira.url);
    const form = { base_url: w.jira.url, pat: w.alice.pat };
    const refused: Record<string, string>[] = [
      { origin: "https://evil.example" },
      { origin: "https://evil.example", "sec-fetch-site": "same-origin" },
      { origin: "http://localhost:1" },
      { origin: "null", "sec-fetch-site": "cross-site" },
    ];
    for (const headers of refused) {
      const p = await w.submit(path, form, headers);
      assert.equal(p.status, 403, JSON.stringify(headers));
      assertHtmlPage(p);
      assert.match(p.text, /sent from another web site, so sosvault refused it/);
      assert.doesNotMatch(p.text, /<form/);
      assert.ok(!p.text.includes(w.alice.pat));
    }
    assert.deepEqual(await w.connectionsOf(w.alice), []);
    assert.equal(w.jira.jira.requests.length, 0);
    const ok = await w.submit(path, form);
    assert.equal(ok.status, 200, "the link was neither used nor burned by the refusals");
  } finally {
    await w.close();
  }
});

Deno.test("Sec-Fetch-Site: cross-site (or same-site) POST is refused even without Origin", async () => {
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice", w.jira.url);
    for (const site of ["cross-site", "same-site", "none"]) {
      const p = await w.fetchPage("POST", path, {
        body: new URLSearchParams({ base_url: w.jira.url, pat: w.alice.pat }).toString(),
        headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": site },
      });
      assert.equal(p.status, 403, site);
      assert.match(p.text, /another web site/);
    }
    assert.deepEqual(await w.connectionsOf(w.alice), []);
  } finally {
    await w.close();
  }
});

Deno.test("Origin: null passes only when Sec-Fetch-Site vouches for same-origin (our no-referrer page)", async () => {
  const w = await startConnectWorld();
  try {
    const bare = await w.fetchPage("POST", await w.link("alice", w.jira.url), {
      body: new URLSearchParams({ base_url: w.jira.url, pat: w.alice.pat }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "null" },
    });
    assert.equal(bare.status, 403, "an opaque origin with nothing vouching for it");
    const p = await w.submit(await w.link("alice", w.jira.url), {
      base_url: w.jira.url,
      pat: w.alice.pat,
    }, { origin: "null", "sec-fetch-site": "same-origin" });
    assert.equal(p.status, 200, p.text);
  } finally {
    await w.close();
  }
});

Deno.test("every connect page forbids framing (frame-ancestors 'none', X-Frame-Options DENY)", async () => {
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice", w.jira.url);
    const pages = [
      await w.fetchPage("GET", path),
      await w.fetchPage("GET", "/connect/nope"),
      await w.submit(path, { base_url: w.jira.url, pat: await newCanaryPat() }),
      await w.submit(path, { base_url: w.jira.url, pat: w.alice.pat }),
      await w.submit(path, { base_url: w.jira.url, pat: w.alice.pat }),
    ];
    assert.deepEqual(pages.map((p) => p.status), [200, 404, 422, 200, 404]);
    for (const p of pages) {
      assertHardened(p);
      assert.match(p.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
    }
    const nonces = pages.map((p) =>
      /nonce-([^']+)/.exec(p.headers.get("content-security-policy")!)![1]
    );
    assert.equal(new Set(nonces).size, nonces.length, "a fresh nonce per response");
  } finally {
    await w.close();
  }
});

// ---- failures and attempts ------------------------------------------------------------------

Deno.test("a wrong PAT gives a clear message and a retry form without the PAT; the 5th failure burns the link", async () => {
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice", w.jira.url);
    const wrong = await newCanaryPat();
    for (let attempt = 1; attempt <= 4; attempt++) {
      const p = await w.submit(path, { base_url: w.jira.url, pat: wrong });
      assert.equal(p.status, 422, p.text);
      assertHtmlPage(p);
      assert.match(p.text, /<p class="error" role="alert">Jira rejected the personal access token/);
      assert.match(p.text, new RegExp(`${5 - attempt} attempts? left`));
      assert.match(p.text, /<form method="post"/, "a retry form while attempts remain");
      assert.ok(p.text.includes(`value="${w.jira.url}"`), "base URL kept");
      assert.match(p.text, /<input id="pat" name="pat" type="password"[^>]*maxlength="1024">/);
      assert.ok(!p.text.includes(wrong), "the PAT is never echoed");
      const shown = await w.fetchPage("GET", path);
      assert.match(shown.text, new RegExp(`${5 - attempt} attempts? left`));
    }
    const fifth = await w.submit(path, { base_url: w.jira.url, pat: wrong });
    assert.equal(fifth.status, 422);
    assert.match(fifth.text, /Jira rejected the personal access token/);
    assert.match(fifth.text, /locked after 5 failed attempts/);
    assert.doesNotMatch(fifth.text, /<form/);
    assert.ok(!fifth.text.includes(wrong));

    const after = await w.fetchPage("GET", path);
    assert.equal(after.status, 404);
    assert.match(after.text, /locked after 5 failed attempts: ask your assistant for a new one/);
    const right = await w.submit(path, { base_url: w.jira.url, pat: w.alice.pat });
    assert.equal(right.status, 404, "even the right PAT cannot use a burned link");
    assert.deepEqual(await w.connectionsOf(w.alice), []);
    const myself = w.jira.jira.requests.filter((r) => r.path.endsWith("/rest/api/2/myself"));
    assert.equal(myself.length, 5, "exactly five tries reached Jira");
    const events = await w.server.services.events.list({ type: "connect" });
    assert.deepEqual(events.map((e) => [e.user, e.outcome, e.error_code]), [
      ...Array(5).fill(["alice", "failure", "invalid_credentials"]),
    ]);
  } finally {
    await w.close();
  }
});

Deno.test("a base URL outside JIRA_ALLOWED_HOSTS is refused clearly, never reaches Jira, costs no attempt", async () => {
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice");
    const p = await w.submit(path, { base_url: "https://jira.evil.example", pat: w.alice.pat });
    assert.equal(p.status, 403);
    assertHtmlPage(p);
    assert.match(
      p.text,
      /sosvault may not connect to this Jira host\. Allowed Jira hosts: 127\.0\.0\.1, localhost\./,
    );
    assert.ok(p.text.includes(`value="https://jira.evil.example"`));
    assert.doesNotMatch(p.text, /attempts? left/);
    const plain = await w.submit(path, { base_url: "http://127.0.0.1:1", pat: w.alice.pat });
    assert.equal(plain.status, 400);
    assert.match(plain.text, /The Jira base URL must use https/);
    assert.equal(w.jira.jira.requests.length, 0);
    assert.equal((await w.submit(path, { base_url: w.jira.url, pat: w.alice.pat })).status, 200);
  } finally {
    await w.close();
  }
});

Deno.test("a PAT pasted into the base URL field is not echoed back", async () => {
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice");
    for (
      const base_url of [w.alice.pat, `https://${w.alice.pat}.example`, `https://x/${w.alice.pat}`]
    ) {
      const p = await w.submit(path, { base_url, pat: w.alice.pat });
      assert.ok([400, 403].includes(p.status), `${p.status}`);
      assert.ok(!p.text.includes(w.alice.pat), "the PAT is never in a page");
      assert.ok(!p.text.includes(encodeURIComponent(w.alice.pat)));
    }
  } finally {
    await w.close();
  }
});

Deno.test("malformed forms are refused as HTML and cost no attempt", async () => {
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice", w.jira.url);
    const origin = { origin: w.page.url };
    const cases: [BodyInit, Record<string, string>, number, RegExp][] = [
      [
        JSON.stringify({ base_url: w.jira.url, pat: w.alice.pat }),
        { "content-type": "application/json" },
        400,
        /application\/x-www-form-urlencoded/,
      ],
      [
        new URLSearchParams({ base_url: w.jira.url, pat: w.alice.pat, user: "bob" }).toString(),
        { "content-type": "application/x-www-form-urlencoded" },
        400,
        /unknown fields/,
      ],
      [
        `base_url=${encodeURIComponent(w.jira.url)}&pat=a&pat=b`,
        { "content-type": "application/x-www-form-urlencoded" },
        400,
        /pat twice/,
      ],
      [
        `pat=${encodeURIComponent(w.alice.pat)}`,
        { "content-type": "application/x-www-form-urlencoded" },
        400,
        /Give the Jira base URL/,
      ],
      [
        `base_url=${encodeURIComponent(w.jira.url)}&pat=${"A".repeat(17 * 1024)}`,
        { "content-type": "application/x-www-form-urlencoded" },
        413,
        /larger than 16 KiB/,
      ],
      [
        new Uint8Array([0x62, 0x61, 0x73, 0x65, 0x5f, 0x75, 0x72, 0x6c, 0x3d, 0xff]),
        { "content-type": "application/x-www-form-urlencoded" },
        400,
        /not valid UTF-8/,
      ],
    ];
    for (const [body, headers, status, message] of cases) {
      const p = await w.fetchPage("POST", path, { body, headers: { ...headers, ...origin } });
      assert.equal(p.status, status, p.text);
      assertHtmlPage(p);
      assert.match(p.text, message);
      assert.ok(!p.text.includes(w.alice.pat));
      assert.doesNotMatch(p.text, /attempts? left/);
    }
    assert.equal(w.jira.jira.requests.length, 0);
    assert.equal((await w.submit(path, { base_url: w.jira.url, pat: w.alice.pat })).status, 200);
  } finally {
    await w.close();
  }
});

Deno.test("no connect page, log line or KV value holds the PAT (only sha256 of the code is stored)", async () => {
  const w = await startConnectWorld();
  try {
    const path = await w.link("alice", w.jira.url);
    const code = path.split("/").pop()!;
    const pages = [
      await w.fetchPage("GET", path),
      await w.submit(path, { base_url: w.jira.url, pat: await newCanaryPat() }),
      await w.submit(path, { base_url: w.jira.url, pat: w.alice.pat }),
    ];
    for (const p of pages) assert.ok(!p.text.includes(w.alice.pat));
    const logs = w.server.logs.join("\n");
    assert.ok(!logs.includes(w.alice.pat));
    assert.ok(!logs.includes(code), "the code (a live capability) is not logged");
    const kv = w.server.services.kv;
    const entries = [];
    for await (const e of kv.list({ prefix: ["connect_code"] })) entries.push(e);
    assert.equal(entries.length, 1);
    const dump = JSON.stringify(entries.map((e) => [e.key, e.value]));
    assert.ok(!dump.includes(code), "only the hash of the code is stored");
    assert.ok(!dump.includes(w.alice.pat));
    assert.match(String(entries[0].key[1]), /^[0-9a-f]{64}$/);
  } finally {
    await w.close();
  }
});
