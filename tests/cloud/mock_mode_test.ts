/**
 * JIRA_MOCK_MODE=1 offers both kinds (issue 12): a `*.atlassian.net` base URL reaches the
 * embedded fake Jira Cloud (and api.atlassian.com its gateway), any other host the Data Center
 * fake. The kind is still found from serverInfo. Demo credentials are the README's.
 */
import assert from "node:assert/strict";
import { startServer } from "../helpers/server.ts";
import { makeCloudToken, makeDcPat } from "../helpers/canary.ts";

Deno.test("mock mode connects a DC PAT, a classic and a scoped Cloud API token", async () => {
  const server = await startServer({ env: { JIRA_MOCK_MODE: "1", JIRA_ALLOWED_HOSTS: "" } });
  try {
    const token = await server.addUser("alice");
    const connect = (json: Record<string, unknown>) =>
      server.call("POST", "/api/jira/connections", { token, json });

    const dc = await connect({ base_url: "https://jira.example.com", pat: makeDcPat() });
    assert.equal(dc.status, 201, dc.text);
    assert.equal(dc.body.deployment, "data_center");

    const classic = await connect({
      base_url: "https://demo.atlassian.net",
      email: "demo@example.com",
      pat: makeCloudToken(),
    });
    assert.equal(classic.status, 201, classic.text);
    assert.equal(classic.body.deployment, "cloud");
    assert.equal(classic.body.cloud_route, "site");
    assert.equal(classic.body.email_hint, "d***@example.com");

    const scoped = await connect({
      base_url: "https://demo.atlassian.net",
      email: "demo.scoped@example.com",
      pat: makeCloudToken().replace(/^ATATT3/, "ATATT3SCOPED"),
    });
    assert.equal(scoped.status, 201, scoped.text);
    assert.equal(scoped.body.cloud_route, "gateway");

    // The README's demo credentials.
    const demo = await connect({
      base_url: "https://acme.atlassian.net",
      email: "demo@example.com",
      pat: "ATATT3sosvault-demo-only-not-a-real-token",
    });
    assert.equal(demo.status, 201, demo.text);
    const demoScoped = await connect({
      base_url: "https://acme.atlassian.net",
      email: "demo@example.com",
      pat: "ATATT3SCOPED-sosvault-demo-only",
    });
    assert.equal(demoScoped.body.cloud_route, "gateway", demoScoped.text);

    const mixed = await connect({ base_url: "https://demo.atlassian.net", pat: makeDcPat() });
    assert.equal(mixed.status, 400, "a DC PAT alone on the Cloud fake");
  } finally {
    await server.close();
  }
});
