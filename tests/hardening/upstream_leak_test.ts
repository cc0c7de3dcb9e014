/**
 * Upstream error leakage (SECURITY_TESTS T25, and T21's "upstream bodies echoing headers"): a
 * Jira — or whatever stands in front of it — that puts the very PAT it received into its error
 * bodies, headers, login pages and redirect URLs. Whatever it answers, on every call that
 * carries the PAT, no answer of sosvault (JSON, tool result or connect page) and no log line
 * holds any form or piece of it, and no upstream body is copied.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";
import { connectMcp } from "../helpers/mcp.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { assertNoLeak, needlesOf, overrideFake } from "./_helpers.ts";

interface Echo {
  name: string;
  answer(pat: string, req: Request): Response;
}

const html = (status: number, body: string, headers: Record<string, string> = {}) =>
  new Response(`<!DOCTYPE html><html><body>${body}</body></html>`, {
    status,
    headers: { "content-type": "text/html;charset=UTF-8", ...headers },
  });
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json;charset=UTF-8", ...headers },
  });

const ECHOES: Echo[] = [
  {
    name: "401 Seraph page quoting the token and its header",
    answer: (pat) =>
      html(401, `<p>Token ${pat} is not valid</p><pre>Authorization: Bearer ${pat}</pre>`, {
        "x-seraph-loginreason": "AUTHENTICATED_FAILED",
        "www-authenticate": `Bearer realm="${pat}"`,
      }),
  },
  { name: "401 JSON", answer: (pat) => json(401, { message: `Bearer ${pat} was rejected` }) },
  { name: "403 JSON", answer: (pat) => json(403, { errorMessages: [`${pat} may not do this`] }) },
  {
    name: "403 CAPTCHA",
    answer: (pat) => html(403, pat, { "x-seraph-loginreason": "AUTHENTICATION_DENIED" }),
  },
  { name: "404 JSON", answer: (pat) => json(404, { errorMessages: [`No issue for ${pat}`] }) },
  {
    name: "404 size-limit text",
    answer: (pat) =>
      new Response(`The field file exceeds its maximum permitted size of 1 bytes. ${pat}`, {
        status: 404,
        headers: { "content-type": "text/plain" },
      }),
  },
  { name: "400 JSON", answer: (pat) => json(400, { errors: { file: pat } }) },
  { name: "413 nginx", answer: (pat) => html(413, `<h1>413</h1>${pat}`) },
  { name: "429 throttle", answer: (pat) => html(429, `slow down ${pat}`, { "retry-after": "0" }) },
  {
    name: "500 Oops with a header dump",
    answer: (pat, req) =>
      html(
        500,
        `<pre>${[...req.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}\n${btoa(pat)}</pre>`,
      ),
  },
  { name: "502 proxy", answer: (pat) => html(502, `<center>${encodeURIComponent(pat)}</center>`) },
  {
    name: "503 text",
    answer: (pat) =>
      new Response(`down; your token ${pat}`, {
        status: 503,
        headers: { "content-type": "text/plain" },
      }),
  },
  {
    name: "200 SSO page with the token in a form",
    answer: (pat) => html(200, `<form><input type="hidden" name="token" value="${pat}"></form>`),
  },
  {
    name: "302 to an IdP with the token in the URL",
    answer: (pat) =>
      new Response(`moved: ${pat}`, {
        status: 302,
        headers: { location: `https://idp.example/sso?token=${encodeURIComponent(pat)}` },
      }),
  },
  {
    name: "200 JSON as anonymous",
    answer: (pat) => json(200, { name: pat }, { "x-ausername": "anonymous" }),
  },
  {
    name: "200 malformed JSON",
    answer: (pat) =>
      new Response(`{"name":"${pat}", "key": `, {
        status: 200,
        headers: { "content-type": "application/json" },
      }),
  },
  {
    // Not an error at all: a display name, an issue's file names and the stored upload, each
    // carrying the token. Such data goes to the model, so it must not pass.
    name: "200 beans that name things after the PAT",
    answer: (pat, req) =>
      req.method === "POST"
        ? json(200, [{ id: "10001", filename: `${pat}.txt`, size: 5, mimeType: "text/plain" }])
        : json(200, {
          name: "alice.jira",
          displayName: `Alice ${pat}`,
          key: "SUP-1",
          fields: { attachment: [{ id: "10000", filename: pat, size: 1 }] },
          enabled: true,
          uploadLimit: 1_000_000,
        }),
  },
  {
    name: "200 JSON of the wrong shape",
    answer: (pat) => json(200, { token: pat, fields: { attachment: pat }, enabled: pat }),
  },
];

Deno.test(`${ECHOES.length} kinds of Jira answers quoting the PAT never bring it into an answer or a log line, on any call`, async () => {
  const w = await startWorld({
    env: { SOSVAULT_RATE_CONNECT: "0/60", SOSVAULT_RATE_TOOLS: "0/60" },
  });
  let echo: Echo | null = null;
  let onlyPost = false;
  let echoed = 0;
  const bearer = (req: Request) =>
    /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1];
  const jira = await startFakeJira({
    jira: overrideFake(w.jira.jira, (req) => {
      const pat = bearer(req);
      if (!echo || !pat || (onlyPost && req.method !== "POST")) return undefined;
      echoed++;
      return echo.answer(pat, req);
    }),
  });
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const needles = needlesOf([w.alice.pat]);
  try {
    const id = (await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: { base_url: jira.url, pat: w.alice.pat },
    })).body.connection_id;
    const dir = `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(`${dir}/e.txt`, "echo\n", { mode: 0o600 });

    for (const e of ECHOES) {
      echo = e;
      const answers: Array<[string, string]> = [];
      const connect = await w.server.call("POST", "/api/jira/connections", {
        token: w.alice.token,
        json: { base_url: jira.url, pat: w.alice.pat },
      });
      answers.push(["POST /api/jira/connections", connect.text]);
      const verify = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
        token: w.alice.token,
      });
      answers.push(["GET ?verify=1", verify.text]);
      for (const r of [connect, verify]) {
        assert.ok(r.status >= 400, `${e.name}: ${r.status}`);
        assert.doesNotMatch(r.text, /<html|<form|<pre|idp\.example/i, `${e.name}: body copied`);
      }
      const list = await mcp.call("jira_list_attachments", {
        connection_id: id,
        issue_key: "SUP-1",
      });
      answers.push(["jira_list_attachments", JSON.stringify(list)]);
      const args = { connection_id: id, issue_key: "SUP-1", artifact_ref: `${dir}/e.txt` };
      answers.push([
        "jira_attach_artifact",
        JSON.stringify(await mcp.call("jira_attach_artifact", args)),
      ]);
      onlyPost = true;
      answers.push([
        "jira_attach_artifact (upload)",
        JSON.stringify(await mcp.call("jira_attach_artifact", args)),
      ]);
      onlyPost = false;
      const link = (await mcp.call("jira_connect", {})).structuredContent.connect_url;
      const page = await fetch(link, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ base_url: jira.url, pat: w.alice.pat }).toString(),
      });
      answers.push(["connect page", await page.text()]);
      for (const [where, text] of answers) assertNoLeak(text, needles, `${e.name} → ${where}`);
    }
    assert.ok(echoed >= ECHOES.length * 5, `only ${echoed} echoing answers were served`);
    assertNoLeak(w.server.logs.join("\n"), needles, "the server log");
  } finally {
    echo = null;
    await mcp.close();
    await jira.close();
    await w.close();
  }
});
