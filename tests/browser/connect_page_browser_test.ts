/**
 * The connect page in a real browser: headless Debian Chromium (/usr/bin/chromium) driven by
 * playwright-core, against the real services over real HTTP and the fake Jira on HTTPS. It
 * proves what a raw HTTP test cannot: that a real browser renders the page under its CSP, that
 * the Origin / Sec-Fetch-Site a browser sends for our own form pass the CSRF check while a
 * form on another site is refused, and that a framing page gets nothing.
 *
 * Skips itself only when /usr/bin/chromium is absent and CI is unset (in CI it fails instead).
 * Screenshots go to /tmp/sosvault-connect-*.png for a human to look at.
 *
 * Run alone (see the README / .ci/run for the exact line): playwright-core needs more than the
 * rest of the suite — the whole environment readable (its `debug` dependency lists every
 * variable at import) and /usr/bin/chromium runnable.
 */
import assert from "node:assert/strict";
import { startWorld, type World } from "../helpers/world.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { connectMcp } from "../helpers/mcp.ts";
import { launchChromium, requireChromium } from "./_chromium.ts";

const SHOTS = "/tmp/sosvault-connect";
const installed = requireChromium("the real-browser connect page test");

// ---- helper: the real server (the app mounts /connect), with alice's link from jira_connect ----

interface BrowserWorld extends World {
  pageUrl: string;
  /** Asks for a link the way an assistant does: alice's MCP client calls jira_connect. */
  linkFromJiraConnect(): Promise<string>;
  record(line: string): void;
}

async function startBrowserWorld(): Promise<BrowserWorld> {
  const w = await startWorld();
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const respFile = await Deno.open(`${w.server.dir}/responses.log`, { append: true, create: true });
  const enc = new TextEncoder();
  return {
    ...w,
    pageUrl: w.server.url,
    async linkFromJiraConnect() {
      const result = await mcp.call("jira_connect", {});
      return result.structuredContent.connect_url as string;
    },
    record: (line) => respFile.writeSync(enc.encode(line + "\n\n")),
    async close() {
      await mcp.close();
      respFile.close();
      await w.close();
    },
  };
}

/** Serves a page on another origin (localhost vs 127.0.0.1): the attacker's site. */
function startEvilSite(html: string) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } }),
  );
  return {
    url: `http://localhost:${(server.addr as Deno.NetAddr).port}/`,
    close: () => server.shutdown(),
  };
}

Deno.test({
  name: "connect page in a real browser: names alice, connects, shows the id, refuses reuse",
  ignore: !installed,
  // Chromium's pipes are closed by context.close(); the driver's own timers settle after it.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startBrowserWorld();
    const browser = await launchChromium({ viewport: { width: 720, height: 860 } });
    const { context, profile } = browser;
    try {
      const page = context.pages()[0] ?? await context.newPage();
      const consoleErrors: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") consoleErrors.push(m.text());
      });
      // allHeaders(): what actually went on the wire, including Origin and Sec-Fetch-*.
      const posts: Promise<Record<string, string>>[] = [];
      page.on("request", (r) => {
        if (r.method() === "POST") posts.push(r.allHeaders());
      });
      page.on("response", async (r) => {
        const body = await r.text().catch(() => "");
        w.record(
          `BROWSER ${r.request().method()} ${new URL(r.url()).pathname} -> ${r.status()}\n${body}`,
        );
      });

      const link = await w.linkFromJiraConnect();

      // 1. The page names the owner, under its CSP (the nonce'd stylesheet applies).
      const first = await page.goto(link);
      assert.equal(first?.status(), 200);
      const csp = first!.headers()["content-security-policy"];
      assert.match(
        csp,
        /^default-src 'none'; style-src 'nonce-[^']+'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$/,
      );
      assert.equal(await page.textContent("#owner"), "alice");
      assert.match(await page.textContent("body") ?? "", /will belong to sosvault user alice/);
      const button = await page.evaluate(
        "getComputedStyle(document.querySelector('button')).backgroundColor",
      );
      assert.equal(button, "rgb(0, 82, 204)", "the inline style loaded under the CSP");
      assert.equal(await page.getAttribute("#pat", "type"), "password");
      assert.equal(await page.getAttribute("#pat", "autocomplete"), "off");

      // 2. A wrong token first: a clear message, the base URL kept, the token field empty.
      const wrong = await newCanaryPat();
      await page.fill("#base_url", w.jira.url);
      await page.fill("#pat", wrong);
      const [rejected] = await Promise.all([
        page.waitForNavigation(),
        page.click("button[type=submit]"),
      ]);
      assert.equal(rejected?.status(), 422);
      assert.match(
        await page.textContent("[role=alert]") ?? "",
        /Jira rejected the personal access token/,
      );
      assert.match(await page.textContent(".meta") ?? "", /4 attempts left/);
      assert.equal(await page.inputValue("#base_url"), w.jira.url);
      assert.equal(await page.inputValue("#pat"), "", "the token is never filled back in");
      assert.ok(!(await page.content()).includes(wrong));
      await page.screenshot({ path: `${SHOTS}-wrong-pat.png`, fullPage: true });

      // 3. The right token, typed like a person.
      await page.fill("#pat", w.alice.pat);
      await page.screenshot({ path: `${SHOTS}-form.png`, fullPage: true });
      const [submitted] = await Promise.all([
        page.waitForNavigation(),
        page.click("button[type=submit]"),
      ]);
      assert.equal(submitted?.status(), 200, await page.content());
      const id = (await page.textContent("#connection-id"))?.trim() ?? "";
      assert.match(id, /^jc_[A-Za-z0-9_-]{32}$/);
      await page.screenshot({ path: `${SHOTS}-success.png`, fullPage: true });
      assert.ok(!(await page.content()).includes(w.alice.pat), "the PAT is not in the page");

      // What Chromium sends for our own form: the CSRF check must accept exactly this.
      // Chromium 156 sends `Origin: null` (the page's Referrer-Policy is no-referrer, and the
      // Fetch spec then nulls the Origin of a form POST) with `Sec-Fetch-Site: same-origin`.
      const sent = await Promise.all(posts);
      assert.equal(sent.length, 2);
      for (const headers of sent) {
        assert.equal(headers["sec-fetch-site"], "same-origin");
        assert.ok([w.pageUrl, "null"].includes(headers["origin"]), `Origin: ${headers["origin"]}`);
      }

      const res = await w.server.call("GET", `/api/jira/connections/${id}`, {
        token: w.alice.token,
      });
      assert.equal(res.status, 200, "alice owns the connection");
      assert.equal(res.body.jira_user.name, "alice.jira");

      // 4. The link is spent: opening it again fails clearly.
      const again = await page.goto(link);
      assert.equal(again?.status(), 404);
      assert.match(await page.textContent("h1") ?? "", /Link already used/);
      assert.match(await page.textContent("body") ?? "", /already been used/);
      assert.equal(await page.$("form"), null);
      await page.screenshot({ path: `${SHOTS}-used.png`, fullPage: true });

      assert.deepEqual(
        consoleErrors.filter((e) => /Content Security Policy/i.test(e)),
        [],
        "no CSP violation",
      );
    } finally {
      await context.close();
      await w.close();
    }
    // Security: nothing the browser keeps on disk (saved passwords, form state, cache,
    // session restore) holds the token.
    const leaks: string[] = [];
    for await (const file of walk(profile)) {
      const bytes = new TextDecoder("latin1").decode(await Deno.readFile(file));
      if (bytes.includes(w.alice.pat)) leaks.push(file.slice(profile.length));
    }
    await browser.close();
    assert.deepEqual(leaks, [], "the browser profile keeps no copy of the PAT");
  },
});

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile) yield p;
  }
}

Deno.test({
  name: "connect page in a real browser: a form on another site is refused and a frame stays empty",
  ignore: !installed,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await startBrowserWorld();
    const link = await w.linkFromJiraConnect();
    // The attacker knows the code (say, from a shared screen) and a Jira URL; the token they
    // post is their own, to plant their account in alice's assistant.
    const evil = startEvilSite(`<!doctype html><title>win a prize</title>
<iframe id="f" src="${link}" width="600" height="400"></iframe>
<form method="post" action="${link}">
<input type="hidden" name="base_url" value="${w.jira.url}"><input type="hidden" name="pat" value="${w.bob.pat}">
<button id="go" type="submit">Claim</button>
</form>`);
    const browser = await launchChromium();
    const { context } = browser;
    try {
      const page = context.pages()[0] ?? await context.newPage();
      await page.goto(evil.url);
      // Security: frame-ancestors 'none' / X-Frame-Options: DENY — the frame gets no page.
      await page.waitForTimeout(500);
      await page.screenshot({ path: `${SHOTS}-framed.png` });
      const framed = page.frames().find((f) => f !== page.mainFrame());
      const framedText = framed
        ? await framed.textContent("body", { timeout: 1000 }).catch(() => "") ?? ""
        : "";
      assert.doesNotMatch(
        framedText,
        /alice|Connect to Jira/,
        "the connect page rendered inside a frame",
      );

      const [refused] = await Promise.all([page.waitForNavigation(), page.click("#go")]);
      assert.equal(refused?.status(), 403);
      assert.match(
        await page.textContent("body") ?? "",
        /sent from another web site, so sosvault refused it/,
      );
      assert.ok(!(await page.content()).includes(w.bob.pat));
      await page.screenshot({ path: `${SHOTS}-cross-site.png`, fullPage: true });

      const alices = await w.server.call("GET", "/api/jira/connections", { token: w.alice.token });
      assert.deepEqual(alices.body.connections, [], "nothing was connected");
      const still = await page.goto(link);
      assert.equal(still?.status(), 200, "the refused post neither used nor burned the link");
    } finally {
      await browser.close();
      await evil.close();
      await w.close();
    }
  },
});
