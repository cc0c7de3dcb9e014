/**
 * The connect page bound to a login, in real Chromium: in SOSVAULT_AUTH=oidc a connect link
 * first sends the browser through the IdP (oidc-provider on loopback; its login step signs in
 * whoever the test names). Bob, signed in, is refused alice's link without using it up; alice,
 * signed in, connects with it.
 */
import assert from "node:assert/strict";
import { startIdp } from "../helpers/oidc_provider.ts";
import { startServer } from "../helpers/server.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { connectMcp } from "../helpers/mcp.ts";
import { type Browser, launchChromium, requireChromium } from "./_chromium.ts";

const installed = requireChromium("the oidc connect page browser test");

Deno.test({
  name: "oidc connect page in Chromium: sign-in first, bob is refused alice's link, alice connects",
  ignore: !installed,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const idp = await startIdp();
    const jira = await startFakeJira();
    const secret = crypto.randomUUID();
    const secretFile = await Deno.makeTempFile({ prefix: "sosvault-oidc-secret-" });
    await Deno.writeTextFile(secretFile, secret + "\n");
    const server = await startServer({
      env: {
        SOSVAULT_AUTH: "oidc",
        SOSVAULT_OIDC_ISSUER: idp.issuer,
        SOSVAULT_OIDC_CLIENT_ID: "sosvault-connect",
        SOSVAULT_OIDC_CLIENT_SECRET_FILE: secretFile,
      },
    });
    idp.addClient({
      client_id: "sosvault-connect",
      client_secret: secret,
      token_endpoint_auth_method: "client_secret_basic",
      redirect_uris: [`${server.url}/oidc/callback`],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    });
    await server.services.oidc!.keys.start();
    const browsers: Browser[] = [];
    const browser = async () => {
      const b = await launchChromium();
      browsers.push(b);
      return b.context;
    };
    try {
      const pat = await newCanaryPat();
      jira.jira.addUser({ name: "alice.jira", displayName: "Alice Example" });
      jira.jira.addPat("alice.jira", pat);
      const aliceToken = await idp.sign({
        iss: idp.issuer,
        aud: `${server.url}/mcp`,
        sub: "alice",
        preferred_username: "alice",
        scope: "sosvault",
        exp: Math.floor(Date.now() / 1000) + 300,
      });
      const mcp = await connectMcp(server.url, aliceToken);
      const link = (await mcp.call("jira_connect", {})).structuredContent.connect_url as string;
      await mcp.close();
      const code = link.slice(link.lastIndexOf("/") + 1);

      // 1. Bob signs in and opens alice's link: refused, recorded, and the link is untouched.
      idp.nextLogin = "bob";
      const bobs = await browser();
      try {
        const page = bobs.pages()[0] ?? await bobs.newPage();
        const res = await page.goto(link);
        assert.equal(res?.status(), 403);
        assert.match(await page.textContent("[role=alert]") ?? "", /signed in as bob/);
        assert.ok(!(await page.content()).includes('name="pat"'), "no form for bob");
        const cookies = await bobs.cookies(server.url);
        const session = cookies.find((c) => c.name === "sosvault_session");
        assert.ok(session, "a session cookie after the login");
        assert.equal(session.httpOnly, true);
        assert.equal(session.sameSite, "Lax");
      } finally {
        await bobs.close();
      }
      const [denied] = await server.services.events.list({ type: "denied", user: "bob" });
      assert.equal(denied.error_code, "forbidden");
      const still = await server.services.connectLinks.open(code);
      assert.equal(still.attempts, 0, "bob's visit cost alice's link nothing");

      // 2. A form POST without a login is refused before anything is read.
      const blind = await fetch(link, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ base_url: jira.url, pat }),
      });
      assert.equal(blind.status, 401);
      await blind.body?.cancel();

      // 3. Alice signs in and connects with the same link.
      idp.nextLogin = "alice";
      const alices = await browser();
      try {
        const page = alices.pages()[0] ?? await alices.newPage();
        const res = await page.goto(link);
        assert.equal(res?.status(), 200);
        assert.equal(
          new URL(page.url()).pathname,
          `/connect/${code}`,
          "back on the link after the IdP",
        );
        assert.equal(await page.textContent("#owner"), "alice");
        await page.fill("#base_url", jira.url);
        await page.fill("#pat", pat);
        const [done] = await Promise.all([
          page.waitForNavigation(),
          page.click("button[type=submit]"),
        ]);
        assert.equal(done?.status(), 200);
        assert.match(await page.textContent("#connection-id") ?? "", /^jc_/);
        assert.ok(!(await page.content()).includes(pat));
      } finally {
        await alices.close();
      }
      assert.ok(!server.logs.join("\n").includes(secret), "the client secret is never logged");
    } finally {
      await server.close();
      await jira.close();
      await idp.close();
      await Deno.remove(secretFile);
      for (const b of browsers) await b.close();
    }
  },
});
