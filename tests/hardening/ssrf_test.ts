/**
 * SSRF through base URLs (SECURITY_TESTS T22). With JIRA_ALLOWED_HOSTS empty, a base URL naming
 * the host itself, a link-local or metadata address, or the unspecified address — in any
 * spelling the URL parser accepts — is refused on every intake before any network call (the
 * Jira transport is replaced by one that counts). Redirects from Jira are never followed: a
 * 3xx is an SSO answer, and the server it points to receives nothing.
 */
import assert from "node:assert/strict";
import { startServer } from "../helpers/server.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { errorOf, startWorld } from "../helpers/world.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { overrideFake } from "./_helpers.ts";

const INTERNAL = [
  // cloud metadata
  "https://169.254.169.254/latest/meta-data/",
  "https://169.254.169.254./",
  "https://2852039166/",
  "https://0xa9fea9fe/",
  "https://0251.0376.0251.0376/",
  "https://169.254.170.2/",
  "https://[fd00:ec2::254]/",
  "https://[::ffff:169.254.169.254]/",
  "https://[64:ff9b::169.254.169.254]/",
  "https://metadata.google.internal/",
  "https://metadata.google.internal./",
  "https://metadata/",
  "https://100.100.100.200/",
  // this host
  "https://localhost/",
  "https://LOCALHOST:8443/jira",
  "https://localhost./",
  "https://jira.localhost/",
  "https://localhost.localdomain/",
  "https://ip6-localhost/",
  "https://127.0.0.1/",
  "https://127.1/",
  "https://127.0.1.3:9000/",
  "https://2130706433/",
  "https://017700000001/",
  "https://0x7f000001/",
  "https://0x7f.1/",
  "https://0177.0.0.1/",
  "https://[::1]/",
  "https://[0:0:0:0:0:0:0:1]/",
  "https://[::ffff:127.0.0.1]/",
  "https://[::ffff:7f00:1]/",
  "https://[::127.0.0.1]/",
  "https://[fe80::1]/",
  // unspecified
  "https://0.0.0.0/",
  "https://0/",
  "https://0x0/",
  "https://[::]/",
];

Deno.test(`with JIRA_ALLOWED_HOSTS empty, ${INTERNAL.length} spellings of loopback, link-local, metadata and unspecified addresses are refused on every intake without a network call`, async () => {
  const sent: string[] = [];
  const server = await startServer({
    env: { JIRA_ALLOWED_HOSTS: "", SOSVAULT_RATE_CONNECT: "0/60", SOSVAULT_RATE_TOOLS: "0/60" },
    transport: (req) => {
      sent.push(new URL(req.url).host);
      return Promise.reject(new TypeError("no network in this test"));
    },
  });
  const token = await server.addUser("alice");
  const mcp = await connectMcp(server.url, token, { recordFile: `${server.dir}/mcp.log` });
  const pat = await newCanaryPat();
  try {
    for (const base of INTERNAL) {
      const api = await server.call("POST", "/api/jira/connections", {
        token,
        json: { base_url: base, pat },
      });
      assert.equal(api.status, 403, `${base}: ${api.text}`);
      assert.match(errorOf(api).message, /loopback, link-local, metadata or unspecified/);

      assert.equal(toolError(await mcp.call("jira_connect", { base_url: base })).code, "forbidden");

      const link = (await mcp.call("jira_connect", {})).structuredContent.connect_url;
      const page = await fetch(link, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ base_url: base, pat }).toString(),
      });
      assert.equal(page.status, 403, base);
      await page.body?.cancel();
    }
    assert.deepEqual(sent, [], "no request left sosvault");

    // The rule is not "refuse everything": an ordinary host is tried (and fails here).
    const ordinary = await server.call("POST", "/api/jira/connections", {
      token,
      json: { base_url: "https://jira.example.com/jira", pat },
    });
    assert.equal(ordinary.status, 502);
    assert.equal(sent[0], "jira.example.com");
  } finally {
    await mcp.close();
    await server.close();
  }
});

Deno.test("with JIRA_ALLOWED_HOSTS set, any other host — public or internal — is refused without a network call", async () => {
  const sent: string[] = [];
  const server = await startServer({
    env: { JIRA_ALLOWED_HOSTS: "jira.example.com" },
    transport: (req) => {
      sent.push(new URL(req.url).host);
      return Promise.reject(new TypeError("no network in this test"));
    },
  });
  const token = await server.addUser("alice");
  try {
    for (
      const base of [
        "https://jira.example.com.evil.example/",
        "https://evil.example/jira.example.com",
        "https://jira.example.co/",
        "https://169.254.169.254/",
        "https://127.0.0.1/",
      ]
    ) {
      const res = await server.call("POST", "/api/jira/connections", {
        token,
        json: { base_url: base, pat: "MTExMTExMTExMTExOn9/f39/f39/f39/f39/f39/f38A" },
      });
      assert.equal(res.status, 403, base);
      assert.match(errorOf(res).message, /JIRA_ALLOWED_HOSTS/);
    }
    assert.deepEqual(sent, []);
  } finally {
    await server.close();
  }
});

Deno.test("redirects from Jira are never followed, on any call: the server a 3xx points to receives nothing", async () => {
  const w = await startWorld({ env: { SOSVAULT_RATE_CONNECT: "0/60" } });
  const capture = await startFakeJira();
  let redirects = 0;
  let status = 302;
  let redirecting = false;
  let uploadsOnly = false;
  const redirector = await startFakeJira({
    jira: overrideFake(w.jira.jira, (req) => {
      if (!redirecting || (uploadsOnly && req.method !== "POST")) return undefined;
      redirects++;
      const url = new URL(req.url);
      // Same allowed host (127.0.0.1), another port: only redirect-following could reach it.
      return new Response(null, {
        status,
        headers: { location: `${capture.url}${url.pathname}${url.search}` },
      });
    }),
  });
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  try {
    const connected = await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: { base_url: redirector.url, pat: w.alice.pat },
    });
    assert.equal(connected.status, 201, connected.text);
    const id = connected.body.connection_id;
    const dir = `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(`${dir}/r.txt`, "redirect me\n", { mode: 0o600 });

    redirecting = true;
    for (status of [301, 302, 303, 307, 308]) {
      const connect = await w.server.call("POST", "/api/jira/connections", {
        token: w.alice.token,
        json: { base_url: redirector.url, pat: w.alice.pat },
      });
      assert.equal(connect.status, 422, `${status}: ${connect.text}`);
      assert.match(errorOf(connect).message, /single sign-on/);
      const verify = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
        token: w.alice.token,
      });
      assert.equal(errorOf(verify).code, "invalid_credentials");
      const list = await mcp.call("jira_list_attachments", {
        connection_id: id,
        issue_key: "SUP-1",
      });
      assert.equal(toolError(list).code, "invalid_credentials");
      const attach = await mcp.call("jira_attach_artifact", {
        connection_id: id,
        issue_key: "SUP-1",
        artifact_ref: `${dir}/r.txt`,
      });
      assert.equal(toolError(attach).code, "invalid_credentials");
      uploadsOnly = true;
      const upload = await mcp.call("jira_attach_artifact", {
        connection_id: id,
        issue_key: "SUP-1",
        artifact_ref: `${dir}/r.txt`,
      });
      uploadsOnly = false;
      assert.equal(toolError(upload).code, "invalid_credentials", "a redirected upload");
    }
    assert.ok(redirects >= 25, `${redirects} redirects answered`);
    assert.equal(capture.jira.requests.length, 0, "the redirect target received nothing");
  } finally {
    await mcp.close();
    await redirector.close();
    await capture.close();
    await w.close();
  }
});
