/**
 * The connect page for Jira Cloud (issue 12): one form with a clearly labelled, optional Cloud
 * e-mail field (no script: the page's CSP stays script-free), a second step that asks for the
 * e-mail when the site turns out to be Cloud, and a success page that shows only the masked
 * hint. Pages are recorded in responses.log for the canary sweep.
 */
import assert from "node:assert/strict";
import { type CloudWorld, startCloudWorld } from "../helpers/cloud_world.ts";

async function page(w: CloudWorld, method: string, path: string, form?: Record<string, string>) {
  const res = await fetch(w.server.url + path, {
    method,
    headers: form
      ? {
        "content-type": "application/x-www-form-urlencoded",
        origin: w.server.url,
        "sec-fetch-site": "same-origin",
      }
      : {},
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  const text = await res.text();
  await Deno.writeTextFile(
    `${w.server.dir}/responses.log`,
    `${method} /connect -> ${res.status}\n${text}\n\n`,
    { append: true },
  );
  return { status: res.status, headers: res.headers, text };
}

Deno.test("connect page: the Cloud e-mail is optional, asked for when the site is Cloud, and shown only masked", async () => {
  const w = await startCloudWorld();
  try {
    const { connect_url } = await w.server.services.connectLinks.create(
      { user: "alice", requestId: "req_test", source: "mcp" },
      w.site.url,
    );
    const path = new URL(connect_url).pathname;
    const form = await page(w, "GET", path);
    assert.equal(form.status, 200);
    assert.match(form.text, /<input id="email" name="email" type="email"/);
    assert.match(form.text, /Leave empty for Jira Server\/Data Center/);
    assert.ok(!/<script/i.test(form.text));
    assert.ok(!/script-src/.test(form.headers.get("content-security-policy") ?? ""));

    // Step two: the site said Cloud, so the page asks for the e-mail (required now).
    const ask = await page(w, "POST", path, { base_url: w.site.url, pat: w.alice.api });
    assert.equal(ask.status, 400);
    assert.match(ask.text, /Atlassian Cloud API token: .* enter your e-mail too/);
    assert.match(ask.text, /<input id="email" name="email" type="email"[^>]* required value="">/);
    assert.ok(!ask.text.includes(w.alice.api));

    const done = await page(w, "POST", path, {
      base_url: w.site.url,
      pat: w.alice.api,
      email: w.alice.email,
    });
    assert.equal(done.status, 200, done.text);
    assert.match(done.text, /<code id="connection-id">jc_/);
    assert.ok(!done.text.includes(w.alice.api));
    assert.ok(!done.text.includes(w.alice.email), "only the masked hint, if anything");
    const [c] = (await w.server.call("GET", "/api/jira/connections", { token: w.alice.token }))
      .body.connections;
    assert.equal(c.deployment, "cloud");
  } finally {
    await w.close();
  }
});

Deno.test("connect page: the scoped-token checkbox sends the token through the gateway", async () => {
  const w = await startCloudWorld();
  try {
    const { connect_url } = await w.server.services.connectLinks.create(
      { user: "bob", requestId: "req_test", source: "mcp" },
      w.site.url,
    );
    const path = new URL(connect_url).pathname;
    const done = await page(w, "POST", path, {
      base_url: w.site.url,
      pat: w.bob.api,
      email: w.bob.email,
      token_kind: "scoped",
    });
    assert.equal(done.status, 200, done.text);
    assert.ok(!w.cloud.requests.some((r) => r.path === "/rest/api/3/myself"), "site not tried");
    const bad = await page(w, "POST", path, {
      base_url: w.site.url,
      pat: "x",
      token_kind: "other",
    });
    assert.ok(bad.status >= 400);
  } finally {
    await w.close();
  }
});
