/**
 * The whole MCP authorization flow with real parts: the MCP SDK's own OAuth client
 * (client/auth.js via the Streamable HTTP transport) meets a 401, discovers the authorization
 * server from sosvault's RFC 9728 metadata, runs authorization code + PKCE with a resource
 * indicator against oidc-provider, and with the JWT it gets lists tools and asks
 * jira_connection_status. The access token never reaches Jira.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  type OAuthClientProvider,
  UnauthorizedError,
} from "@modelcontextprotocol/sdk/client/auth.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import {
  followAuthorization,
  PUBLIC_CLIENT_ID,
  PUBLIC_REDIRECT,
} from "../helpers/oidc_provider.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { startOidcWorld } from "./_oidc_world.ts";
import { OUT_DIR } from "../helpers/paths.ts";

/** What a desktop MCP client keeps: its registration, the PKCE verifier, the tokens. */
class RecordingOAuthClient implements OAuthClientProvider {
  authorizationUrl: URL | null = null;
  #verifier = "";
  #tokens: OAuthTokens | undefined;
  get redirectUrl() {
    return PUBLIC_REDIRECT;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "sosvault test client",
      redirect_uris: [PUBLIC_REDIRECT],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation(): OAuthClientInformationMixed {
    return { client_id: PUBLIC_CLIENT_ID };
  }
  tokens() {
    return this.#tokens;
  }
  saveTokens(tokens: OAuthTokens) {
    this.#tokens = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string) {
    this.#verifier = v;
  }
  codeVerifier() {
    return this.#verifier;
  }
}

Deno.test("an MCP SDK client signs in through the IdP from a 401 and calls jira_connection_status", async () => {
  const w = await startOidcWorld({ systemClock: true });
  const jira = await startFakeJira();
  try {
    const pat = await newCanaryPat();
    jira.jira.addUser({ name: "alice.jira", displayName: "Alice Example" });
    jira.jira.addPat("alice.jira", pat);
    const mcpUrl = new URL(`${w.server.url}/mcp`);
    const oauth = new RecordingOAuthClient();

    // 1. No token: the transport gets the 401, discovers, and hands the browser URL over.
    const first = new Client({ name: "oauth-test", version: "1.0.0" });
    await assert.rejects(
      first.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: oauth })),
      UnauthorizedError,
    );
    const authUrl = oauth.authorizationUrl;
    assert.ok(authUrl, "the SDK asked to open the authorization page");
    assert.equal(authUrl.origin, w.idp.issuer, "found from sosvault's resource metadata");
    assert.equal(authUrl.searchParams.get("resource"), w.audience, "RFC 8707 resource indicator");
    assert.equal(authUrl.searchParams.get("code_challenge_method"), "S256");
    assert.match(authUrl.searchParams.get("scope") ?? "", /\bsosvault\b/);

    // 2. The user signs in at the IdP; the redirect carries the code back to the client.
    w.idp.nextLogin = "alice";
    const back = await followAuthorization(authUrl.href, PUBLIC_REDIRECT);
    const code = back.searchParams.get("code");
    assert.ok(code);
    const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: oauth });
    await transport.finishAuth(code);
    const accessToken = oauth.tokens()?.access_token;
    assert.ok(accessToken, "the SDK exchanged the code for an access token");
    // The signature part is unique to this token: the canary sweep proves it was left nowhere.
    await Deno.writeTextFile(`${OUT_DIR}/canaries.txt`, accessToken.split(".")[2] + "\n", {
      append: true,
    });

    // 3. Now the same client works: tools/list, then a tool on a connection made with the JWT.
    const client = new Client({ name: "oauth-test", version: "1.0.0" });
    await client.connect(transport);
    const tools = await client.listTools();
    assert.ok(tools.tools.some((t: { name: string }) => t.name === "jira_connection_status"));
    const made = await w.server.call("POST", "/api/jira/connections", {
      token: accessToken,
      json: { base_url: jira.url, pat },
    });
    assert.equal(made.status, 201, made.text);
    const status = await client.callTool({
      name: "jira_connection_status",
      arguments: { connection_id: made.body.connection_id },
    });
    // deno-lint-ignore no-explicit-any
    const sc = status.structuredContent as any;
    assert.equal(sc.status, "connected");
    assert.equal(sc.jira_user.name, "alice.jira");
    await client.close();

    // The user came from the token, and the token went nowhere else.
    assert.deepEqual((await w.server.services.oidc!.users.list()).map((u) => [u.name, u.admin]), [[
      "alice",
      true,
    ]]);
    assert.ok(jira.jira.requests.length > 0);
    for (const r of jira.jira.requests) {
      assert.ok(
        !JSON.stringify(r.headers).includes(accessToken),
        "the access token never reaches Jira",
      );
      assert.equal(r.headers["authorization"], `Bearer ${pat}`);
    }
    assert.ok(!w.server.logs.join("\n").includes(accessToken), "nor the log");
  } finally {
    await jira.close();
    await w.close();
  }
});
