/**
 * Jira Cloud connections (issue 12) against the fake Jira Cloud over loopback HTTPS: the kind is
 * found from serverInfo, classic tokens use the site URL, scoped tokens the gateway with the
 * site's cloudId, Cloud's refusals map to the contract's codes, and bad input is refused with a
 * clear message and nothing stored. Canary e-mails and tokens (tests/helpers/canary.ts) are
 * checked here directly and again by the sweep.
 */
import assert from "node:assert/strict";
import { type CloudWorld, startCloudWorld } from "../helpers/cloud_world.ts";
import { errorOf, startWorld } from "../helpers/world.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { makeDcPat } from "../helpers/canary.ts";

const NO_RATE = { SOSVAULT_RATE_CONNECT: "0/60" };

function basic(email: string, token: string): string {
  return `Basic ${btoa(`${email}:${token}`)}`;
}

/** Neither the e-mail, nor the token, nor their pair (or its base64) is in this text. */
function assertNoSecret(text: string, who: { email: string; api: string }) {
  for (
    const s of [who.email, who.api, `${who.email}:${who.api}`, btoa(`${who.email}:${who.api}`)]
  ) {
    assert.ok(!text.includes(s), "a Cloud secret leaked");
  }
  assert.ok(!text.includes(who.email.split("@")[0].slice(1)), "the e-mail's local part leaked");
}

async function connections(w: { server: CloudWorld["server"] }, token: string) {
  const res = await w.server.call("GET", "/api/jira/connections", { token });
  return res.body.connections;
}

async function kvBytes(dir: string): Promise<string> {
  let text = "";
  for await (const e of Deno.readDir(dir)) {
    if (/\.kv(-wal|-shm)?$/.test(e.name)) {
      text += new TextDecoder("latin1").decode(await Deno.readFile(`${dir}/${e.name}`));
    }
  }
  return text;
}

Deno.test("a classic Cloud API token connects through the site URL with Basic e-mail:token on REST v3", async () => {
  const w = await startCloudWorld();
  try {
    const res = await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: { base_url: w.site.url, pat: w.alice.api, email: w.alice.email },
    });
    assert.equal(res.status, 201, res.text);
    const c = res.body;
    assert.equal(c.deployment, "cloud");
    assert.equal(c.cloud_route, "site");
    assert.equal(c.email_hint, `c***@canary.example.org`);
    // Cloud has no user names: name carries the accountId.
    assert.deepEqual(c.jira_user, { name: w.alice.accountId, display_name: "alice Cloud" });
    assertNoSecret(res.text, w.alice);

    const info = w.cloud.requests.find((r) => r.path === "/rest/api/2/serverInfo")!;
    assert.equal(
      info.headers["authorization"],
      undefined,
      "serverInfo is asked without a credential",
    );
    const myself = w.cloud.requests.filter((r) => r.path === "/rest/api/3/myself");
    assert.equal(myself.length, 1);
    assert.equal(myself[0].headers["authorization"], basic(w.alice.email, w.alice.api));
    assert.ok(!w.cloud.requests.some((r) => r.path.startsWith("/ex/jira/")), "no gateway call");

    const kv = await kvBytes(w.server.dir);
    assert.ok(kv.length > 0);
    assertNoSecret(kv, w.alice);
  } finally {
    await w.close();
  }
});

Deno.test("a scoped token refused by the site URL is routed through the gateway with the site's cloudId", async () => {
  const w = await startCloudWorld();
  try {
    const res = await w.server.call("POST", "/api/jira/connections", {
      token: w.bob.token,
      json: { base_url: w.site.url, pat: w.bob.api, email: w.bob.email },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.cloud_route, "gateway");
    assert.equal(res.body.jira_user.name, w.bob.accountId);
    const paths = w.cloud.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
    assert.ok(paths.includes("GET /rest/api/3/myself 401"), paths.join("\n"));
    assert.ok(paths.includes("GET /_edge/tenant_info 200"));
    const gw = `/ex/jira/${w.cloud.cloudId}/rest/api/3`;
    assert.ok(paths.includes(`GET ${gw}/myself 200`));
    assert.ok(paths.includes(`GET ${gw}/attachment/meta 200`), "read:jira-work checked");
    assert.ok(paths.includes(`POST ${gw}/issue/0/attachments 404`), "write:jira-work probed");
    assert.equal(w.cloud.issue("SUP-1")!.attachments.length, 0, "the probe stores nothing");

    // The stored route is used afterwards: listing goes through the gateway too.
    const mcp = await connectMcp(w.server.url, w.bob.token);
    try {
      const list = await mcp.call("jira_list_attachments", {
        connection_id: res.body.connection_id,
        issue_key: "SUP-1",
      });
      assert.ok(!list.isError, JSON.stringify(list));
      assert.equal(w.cloud.requests.at(-1)!.path, `${gw}/issue/SUP-1`);
    } finally {
      await mcp.close();
    }
  } finally {
    await w.close();
  }
});

Deno.test("token_kind scoped goes to the gateway at once; status, verify and revoke work on Cloud", async () => {
  const w = await startCloudWorld();
  try {
    const id = await w.connect(w.bob, { token_kind: "scoped" });
    assert.ok(!w.cloud.requests.some((r) => r.path === "/rest/api/3/myself"), "site not tried");
    const status = await w.server.call("GET", `/api/jira/connections/${id}`, {
      token: w.bob.token,
    });
    assert.equal(status.body.deployment, "cloud");
    assert.equal(status.body.email_hint, "c***@canary.example.org");
    const verified = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: w.bob.token,
    });
    assert.equal(verified.status, 200, verified.text);
    const revoked = await w.server.call("DELETE", `/api/jira/connections/${id}`, {
      token: w.bob.token,
    });
    assert.equal(revoked.body.status, "revoked");
    const again = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: w.bob.token,
    });
    assert.equal(again.status, 409);
    assert.equal(errorOf(again).code, "connection_revoked");
    for (const r of [status, verified, revoked, again]) assertNoSecret(r.text, w.bob);
  } finally {
    await w.close();
  }
});

Deno.test("a scoped token without a needed scope is refused at connect, naming the scope", async () => {
  const w = await startCloudWorld();
  try {
    const cases: Array<[string[], string]> = [
      [["read:jira-user", "read:jira-work"], "write:jira-work"],
      [["read:jira-user", "write:jira-work"], "read:jira-work"],
      [["read:jira-work", "write:jira-work"], "read:jira-user"],
    ];
    for (const [scopes, missing] of cases) {
      w.cloud.addToken(w.bob.email, w.bob.api, { scoped: true, scopes });
      const res = await w.server.call("POST", "/api/jira/connections", {
        token: w.bob.token,
        json: { base_url: w.site.url, pat: w.bob.api, email: w.bob.email, token_kind: "scoped" },
      });
      assert.equal(res.status, 403, res.text);
      const err = errorOf(res);
      assert.equal(err.code, "forbidden");
      assert.ok(err.message.includes(`(${missing})`), err.message);
      assertNoSecret(res.text, w.bob);
    }
    assert.deepEqual(await connections(w, w.bob.token), []);
  } finally {
    await w.close();
  }
});

Deno.test("bad Cloud input is refused with a clear, non-sensitive error and nothing stored", async () => {
  const w = await startCloudWorld({
    env: {
      ...NO_RATE,
      JIRA_ALLOWED_HOSTS:
        "127.0.0.1,localhost,acme.atlassian.net.evil.example,acme-atlassian.net,xn--tlassian-9gg.net",
    },
  });
  const dc = await startWorld({ env: NO_RATE });
  try {
    const base = w.site.url;
    const dcPat = makeDcPat();
    const cases: Array<
      [string, CloudWorld["server"], string, Record<string, unknown>, number, RegExp]
    > = [
      [
        "a DC PAT offered as a Cloud token",
        w.server,
        w.alice.token,
        {
          base_url: base,
          pat: dcPat,
          email: w.alice.email,
        },
        400,
        /Data Center personal access token, but this Jira is Jira Cloud/,
      ],
      [
        "a Cloud token offered to Data Center with an e-mail",
        dc.server,
        dc.alice.token,
        {
          base_url: dc.jira.url,
          pat: w.alice.api,
          email: w.alice.email,
        },
        400,
        /Server\/Data Center, which takes a personal access token alone/,
      ],
      [
        "a Cloud token offered to Data Center as a PAT",
        dc.server,
        dc.alice.token,
        {
          base_url: dc.jira.url,
          pat: w.alice.api,
        },
        400,
        /looks like an Atlassian Cloud API token: Jira Cloud takes it together with the e-mail/,
      ],
      [
        "an e-mail with no token",
        w.server,
        w.alice.token,
        {
          base_url: base,
          pat: "",
          email: w.alice.email,
        },
        400,
        /pat is empty/,
      ],
      [
        "a Cloud token with no e-mail on Cloud",
        w.server,
        w.alice.token,
        {
          base_url: base,
          pat: w.alice.api,
        },
        400,
        /Atlassian Cloud API token: .* enter your e-mail too/,
      ],
      [
        "a DC PAT with no e-mail on Cloud",
        w.server,
        w.alice.token,
        { base_url: base, pat: dcPat },
        400,
        /this Jira is Jira Cloud: it takes the e-mail address of your Atlassian account/,
      ],
      [
        "a wrong e-mail",
        w.server,
        w.alice.token,
        {
          base_url: base,
          pat: w.alice.api,
          email: "someone.else@canary.example.org",
        },
        422,
        /wrong e-mail/,
      ],
      [
        "a malformed e-mail",
        w.server,
        w.alice.token,
        {
          base_url: base,
          pat: w.alice.api,
          email: "not an e-mail",
        },
        400,
        /e-mail address of your Atlassian account/,
      ],
      [
        "a scoped token on the site URL, said to be classic",
        w.server,
        w.bob.token,
        {
          base_url: base,
          pat: w.bob.api,
          email: w.bob.email,
          token_kind: "classic",
        },
        422,
        /rejected the e-mail and API token/,
      ],
      [
        "token_kind without an e-mail",
        w.server,
        w.alice.token,
        {
          base_url: base,
          pat: w.alice.api,
          token_kind: "scoped",
        },
        400,
        /token_kind applies to Jira Cloud/,
      ],
      ...["acme.atlassian.net.evil.example", "acme-atlassian.net", "xn--tlassian-9gg.net"].map((
        host,
      ) =>
        [
          `the look-alike host ${host}`,
          w.server,
          w.alice.token,
          {
            base_url: `https://${host}`,
            pat: w.alice.api,
            email: w.alice.email,
          },
          400,
          /names Atlassian but is not a Jira Cloud site/,
        ] as [
          string,
          CloudWorld["server"],
          string,
          Record<string, unknown>,
          number,
          RegExp,
        ]
      ),
    ];
    for (const [name, server, token, json, status, message] of cases) {
      const before = w.cloud.requests.length;
      const res = await server.call("POST", "/api/jira/connections", { token, json });
      assert.equal(res.status, status, `${name}: ${res.text}`);
      const err = errorOf(res);
      assert.match(err.message, message, name);
      assertNoSecret(res.text, w.alice);
      assertNoSecret(res.text, w.bob);
      assert.ok(!res.text.includes(dcPat), name);
      if (/look-alike/.test(name)) assert.equal(w.cloud.requests.length, before, "no call made");
    }
    assert.deepEqual(await connections(w, w.alice.token), []);
    assert.deepEqual(await connections(w, w.bob.token), []);
    assert.deepEqual(await connections(dc, dc.alice.token), []);
  } finally {
    await dc.close();
    await w.close();
  }
});

Deno.test("after repeated failed logins Cloud asks for a CAPTCHA: the user is told to log in once in a browser", async () => {
  const w = await startCloudWorld({ env: NO_RATE });
  try {
    const wrong = { ...w.alice, api: w.alice.api.slice(0, -8) + "00000000" };
    for (let i = 0; i < 2; i++) {
      const res = await w.server.call("POST", "/api/jira/connections", {
        token: w.alice.token,
        json: { base_url: w.site.url, pat: wrong.api, email: w.alice.email },
      });
      assert.equal(errorOf(res).code, "invalid_credentials");
    }
    assert.ok(w.cloud.captchaRequired(w.alice.email));
    const res = await w.server.call("POST", "/api/jira/connections", {
      token: w.alice.token,
      json: { base_url: w.site.url, pat: w.alice.api, email: w.alice.email },
    });
    assert.equal(res.status, 422, res.text);
    assert.match(errorOf(res).message, /CAPTCHA.*log in to Jira once in a browser/);
    w.cloud.solveCaptcha(w.alice.email);
    await w.connect(w.alice);
  } finally {
    await w.close();
  }
});

Deno.test("Cloud's 429 is honoured for reads (Retry-After) and never retried for uploads", async () => {
  const w = await startCloudWorld();
  const dir = await Deno.makeTempDir({ prefix: "sosvault-cloud-429-" });
  try {
    const id = await w.connect(w.alice);
    const mcp = await connectMcp(w.server.url, w.alice.token);
    try {
      w.cloud.rateLimit(1, 1);
      const list = await mcp.call("jira_list_attachments", {
        connection_id: id,
        issue_key: "SUP-1",
      });
      assert.ok(!list.isError, JSON.stringify(list));
      const gets = w.cloud.requests.filter((r) => r.path === "/rest/api/3/issue/SUP-1");
      assert.deepEqual(gets.map((r) => r.status), [429, 200], "one wait, then the answer");

      w.cloud.rateLimit(10, 7);
      const limited = toolError(
        await mcp.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-1" }),
      );
      assert.equal(limited.code, "rate_limited");
      assert.match(limited.message, /try again in 7 seconds/);

      w.cloud.rateLimit(0, 0);
      const artifacts = w.server.env.SOSVAULT_ARTIFACT_DIR!;
      await Deno.mkdir(`${artifacts}/alice`, { recursive: true, mode: 0o700 });
      const path = `${artifacts}/alice/small.bin`;
      await Deno.writeFile(path, new Uint8Array(4096).fill(7), { mode: 0o600 });
      w.cloud.rateLimit(5, 1, "POST");
      const upload = toolError(
        await mcp.call("jira_attach_artifact", {
          connection_id: id,
          issue_key: "SUP-1",
          artifact_ref: path,
        }),
      );
      assert.equal(upload.code, "rate_limited");
      const posts = w.cloud.requests.filter((r) => r.method === "POST");
      assert.equal(posts.length, 1, "the upload was sent once");
      assert.equal(w.cloud.issue("SUP-1")!.attachments.length, 0);
    } finally {
      await mcp.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await w.close();
  }
});

Deno.test("an issue the Cloud account may not see is not_found, and the guard knows every form of the credential", async () => {
  const w = await startCloudWorld();
  try {
    const id = await w.connect(w.bob, { token_kind: "scoped" });
    const mcp = await connectMcp(w.server.url, w.bob.token);
    try {
      const hidden = toolError(
        await mcp.call("jira_list_attachments", { connection_id: id, issue_key: "SUP-2" }),
      );
      assert.equal(hidden.code, "not_found");
      assert.match(hidden.message, /SUP-2 does not exist, or your Jira account may not see it/);

      const pair = `${w.bob.email}:${w.bob.api}`;
      for (const secret of [w.bob.api, pair, btoa(pair)]) {
        const r = await mcp.call("jira_attach_artifact", {
          connection_id: id,
          issue_key: "SUP-1",
          artifact_ref: "/tmp/x",
          filename: secret,
        });
        const err = toolError(r);
        assert.equal(err.code, "secret_rejected");
        assert.ok(!JSON.stringify(r).includes(secret), "the value is not echoed");
      }
      // The base64 pair has no token shape: only the caller's known-secret fingerprints catch it.
      const detectors = w.server.logs.filter((l) => l.includes('"secret_rejected"'))
        .map((l) => JSON.parse(l).detector).filter(Boolean);
      assert.equal(detectors.at(-1), "known_secret", detectors.join());
    } finally {
      await mcp.close();
    }
  } finally {
    await w.close();
  }
});
