/**
 * The fake Jira Cloud behaves like a Cloud site as the README's Jira section records it. These
 * call the handler directly; the product's own Cloud tests drive it over HTTPS.
 */
import assert from "node:assert/strict";
import { createFakeJiraCloud } from "../../src/jira/fake/mod.ts";
import { makeCloudToken, makeDcPat } from "../helpers/canary.ts";

const SITE = "https://acme.atlassian.net";

function setup() {
  const cloud = createFakeJiraCloud({ cloudId: "0c3130ff-1111-2222-3333-444455556666" });
  const email = "a.person@example.com";
  const classic = makeCloudToken();
  const scoped = makeCloudToken();
  const accountId = cloud.addAccount({ email, displayName: "A Person" });
  cloud.addToken(email, classic);
  cloud.addToken(email, scoped, { scoped: true, scopes: ["read:jira-user"] });
  cloud.addIssue({ key: "SUP-1" });
  const get = (path: string, auth?: string, base = SITE) =>
    cloud.fetch(new Request(base + path, { headers: auth ? { Authorization: auth } : {} }));
  const basic = (token: string, who = email) => `Basic ${btoa(`${who}:${token}`)}`;
  return { cloud, email, classic, scoped, accountId, get, basic };
}

Deno.test("fake Cloud: serverInfo says Cloud without a credential, and tenant_info gives the cloudId", async () => {
  const { get, cloud } = setup();
  const info = await (await get("/rest/api/2/serverInfo")).json();
  assert.equal(info.deploymentType, "Cloud");
  assert.deepEqual(await (await get("/_edge/tenant_info")).json(), { cloudId: cloud.cloudId });
});

Deno.test("fake Cloud: Basic e-mail:token only; myself has an accountId and no name", async () => {
  const { get, basic, classic, accountId } = setup();
  const me = await get("/rest/api/3/myself", basic(classic));
  assert.equal(me.status, 200);
  const body = await me.json();
  assert.equal(body.accountId, accountId);
  assert.equal(body.name, undefined);
  assert.ok(me.headers.get("x-ratelimit-limit"));
  const bearer = await get("/rest/api/3/myself", `Bearer ${makeDcPat()}`);
  assert.equal(bearer.status, 401);
  await bearer.body?.cancel();
  const wrongEmail = await get("/rest/api/3/myself", basic(classic, "other@example.com"));
  assert.equal(wrongEmail.status, 401);
  await wrongEmail.body?.cancel();
});

Deno.test("fake Cloud: a scoped token is refused on the site URL and checked for scopes at the gateway", async () => {
  const { get, basic, scoped, cloud } = setup();
  const site = await get("/rest/api/3/myself", basic(scoped));
  assert.equal(site.status, 401);
  assert.equal(site.headers.get("x-seraph-loginreason"), "AUTHENTICATED_FAILED");
  await site.body?.cancel();
  const gw = `/ex/jira/${cloud.cloudId}/rest/api/3`;
  const me = await get(`${gw}/myself`, basic(scoped));
  assert.equal(me.status, 200);
  await me.body?.cancel();
  const meta = await get(`${gw}/attachment/meta`, basic(scoped));
  assert.equal(meta.status, 401);
  assert.match(await meta.text(), /scope does not match/);
  const other = await get(`/ex/jira/not-this-site/rest/api/3/myself`, basic(scoped));
  assert.equal(other.status, 404);
  await other.body?.cancel();
});

Deno.test("fake Cloud: three failed logins demand a CAPTCHA until a browser login", async () => {
  const { get, basic, classic, email, cloud } = setup();
  for (let i = 0; i < 3; i++) await (await get("/rest/api/3/myself", basic("ATATT3wrong"))).text();
  const denied = await get("/rest/api/3/myself", basic(classic));
  assert.equal(denied.status, 403);
  assert.equal(denied.headers.get("x-seraph-loginreason"), "AUTHENTICATION_DENIED");
  assert.match(denied.headers.get("x-authentication-denied-reason") ?? "", /^CAPTCHA_CHALLENGE/);
  await denied.body?.cancel();
  cloud.solveCaptcha(email);
  const ok = await get("/rest/api/3/myself", basic(classic));
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
});

Deno.test("fake Cloud: 429 carries Retry-After and X-RateLimit-* headers; invisible issues are 404", async () => {
  const { get, basic, classic, cloud } = setup();
  cloud.rateLimit(1, 3);
  const limited = await get("/rest/api/3/issue/SUP-1", basic(classic));
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("retry-after"), "3");
  assert.equal(limited.headers.get("x-ratelimit-remaining"), "0");
  assert.match(limited.headers.get("x-ratelimit-reset") ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\dZ$/);
  await limited.body?.cancel();
  const issue = await get("/rest/api/3/issue/SUP-1", basic(classic));
  assert.equal(issue.status, 200);
  await issue.body?.cancel();
  const missing = await get("/rest/api/3/issue/NOPE-9", basic(classic));
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /does not exist or you do not have permission/);
});
