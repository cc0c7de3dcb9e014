/**
 * Cloud connections in the vault (issue 12): key rotation re-encrypts the e-mail and token
 * envelope and renews every fingerprint the secret guard uses; records written before Cloud
 * support (no `deployment`) read as Data Center; a scope removed after connect is named when the
 * upload is refused.
 */
import assert from "node:assert/strict";
import { startCloudWorld } from "../helpers/cloud_world.ts";
import { startWorld } from "../helpers/world.ts";
import { randomMasterKey, startServer } from "../helpers/server.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { rotationDeps } from "../../src/cli/rotate_key.ts";
import { rotateKey } from "../../src/vault/rotate.ts";
import { kvKeys } from "../../src/kv_keys.ts";
import type { ConnectionRecord } from "../../src/connections/store.ts";

Deno.test("rotate-key re-encrypts Cloud credentials; with only the new key they verify and the guard still knows them", async () => {
  const w = await startCloudWorld();
  try {
    const keyA = w.server.env.TOKEN_VAULT_MASTER_KEY!;
    const dir = w.server.dir;
    const classic = await w.connect(w.alice);
    const scoped = await w.connect(w.bob);
    const before = (await w.server.services.kv.get<ConnectionRecord>(kvKeys.connection(scoped)))
      .value!;
    assert.equal(before.secret_fps?.length, 2, "email:token and its base64");
    await w.server.close();

    const keyB = randomMasterKey();
    const env = { ...w.server.env, TOKEN_VAULT_MASTER_KEY: keyB };
    const rotating = await startServer({
      dir,
      env: { ...env, TOKEN_VAULT_MASTER_KEY_PREVIOUS: keyA },
      cloudGatewayUrl: w.site.origin,
    });
    const report = await rotateKey(rotationDeps(rotating.services));
    assert.equal(report.rotated, 2);
    assert.equal(report.complete, true);
    const after = (await rotating.services.kv.get<ConnectionRecord>(kvKeys.connection(scoped)))
      .value!;
    assert.notEqual(after.pat_fp, before.pat_fp);
    assert.equal(after.secret_fps?.length, 2);
    assert.notDeepEqual(after.secret_fps, before.secret_fps);
    await rotating.close();

    const server = await startServer({ dir, env, cloudGatewayUrl: w.site.origin });
    try {
      for (const [id, who] of [[classic, w.alice], [scoped, w.bob]] as const) {
        const res = await server.call("GET", `/api/jira/connections/${id}?verify=1`, {
          token: who.token,
        });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.email_hint, "c***@canary.example.org");
      }
      const mcp = await connectMcp(server.url, w.bob.token);
      try {
        const pair = btoa(`${w.bob.email}:${w.bob.api}`);
        const r = await mcp.call("jira_list_attachments", {
          connection_id: scoped,
          issue_key: pair,
        });
        assert.equal(toolError(r).code, "secret_rejected");
        assert.match(toolError(r).message, /matches the personal access token of one of your/);
      } finally {
        await mcp.close();
      }
    } finally {
      await server.close();
    }
  } finally {
    await w.site.close();
  }
});

Deno.test("a connection stored before Cloud support (no deployment field) reads and works as Data Center", async () => {
  const w = await startWorld();
  try {
    const id = await w.connect(w.alice);
    const kv = w.server.services.kv;
    const entry = await kv.get<ConnectionRecord>(kvKeys.connection(id));
    const { deployment: _dropped, ...old } = entry.value!;
    await kv.set(kvKeys.connection(id), old);
    const status = await w.server.call("GET", `/api/jira/connections/${id}?verify=1`, {
      token: w.alice.token,
    });
    assert.equal(status.status, 200, status.text);
    assert.equal(status.body.deployment, "data_center");
    assert.equal(status.body.email_hint, undefined);
    const myself = w.jira.jira.requests.filter((r) => r.path.endsWith("/rest/api/2/myself"));
    assert.equal(myself.at(-1)!.headers["authorization"], `Bearer ${w.alice.pat}`);
  } finally {
    await w.close();
  }
});

Deno.test("an upload refused by the gateway for a missing write scope names write:jira-work and is not retried", async () => {
  const w = await startCloudWorld();
  try {
    const id = await w.connect(w.bob, { token_kind: "scoped" });
    w.cloud.addToken(w.bob.email, w.bob.api, {
      scoped: true,
      scopes: ["read:jira-user", "read:jira-work"],
    });
    const artifacts = w.server.env.SOSVAULT_ARTIFACT_DIR!;
    await Deno.mkdir(`${artifacts}/bob`, { recursive: true, mode: 0o700 });
    const path = `${artifacts}/bob/report.txt`;
    await Deno.writeTextFile(path, "hello\n", { mode: 0o600 });
    const mcp = await connectMcp(w.server.url, w.bob.token);
    try {
      const err = toolError(
        await mcp.call("jira_attach_artifact", {
          connection_id: id,
          issue_key: "SUP-1",
          artifact_ref: path,
        }),
      );
      assert.equal(err.code, "forbidden");
      assert.match(err.message, /\(write:jira-work\)/);
      const posts = w.cloud.requests.filter((r) =>
        r.method === "POST" && !/\/issue\/0\//.test(r.path)
      );
      assert.equal(posts.length, 1);
    } finally {
      await mcp.close();
    }
  } finally {
    await w.close();
  }
});
