/**
 * A Jira Cloud test world: the fake Jira Cloud site (and its API gateway, on the same loopback
 * origin) over HTTPS, a sosvault server whose gateway URL points there, and users alice (admin,
 * a classic API token) and bob (a scoped API token), each with a canary e-mail and token.
 */
import { startFakeJira } from "./fake_jira_server.ts";
import { newCloudCanary } from "./canary.ts";
import { type StartOptions, startServer, type TestServer } from "./server.ts";
import { createFakeJiraCloud, type FakeJiraCloud } from "../../src/jira/fake/mod.ts";

export interface CloudUser {
  token: string;
  email: string;
  api: string;
  accountId: string;
}

export interface CloudWorld {
  site: Awaited<ReturnType<typeof startFakeJira>>;
  cloud: FakeJiraCloud;
  server: TestServer;
  alice: CloudUser;
  bob: CloudUser;
  /** Connects a user through the HTTP API and returns the connection id. */
  connect(who: CloudUser, extra?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startCloudWorld(
  options: StartOptions & { uploadLimit?: number; changelogEmbedLimit?: number } = {},
): Promise<CloudWorld> {
  const cloud = createFakeJiraCloud({
    uploadLimit: options.uploadLimit,
    changelogEmbedLimit: options.changelogEmbedLimit,
  });
  const site = await startFakeJira({ handler: (req) => cloud.fetch(req) });
  const server = await startServer({ ...options, cloudGatewayUrl: site.origin });
  const user = async (name: string, admin: boolean, scoped: boolean): Promise<CloudUser> => {
    const { email, token: api } = await newCloudCanary();
    const accountId = cloud.addAccount({ email, displayName: `${name} Cloud` });
    cloud.addToken(email, api, { scoped });
    return { token: await server.addUser(name, admin), email, api, accountId };
  };
  const alice = await user("alice", true, false);
  const bob = await user("bob", false, true);
  cloud.addIssue({ key: "SUP-1", browsers: [alice.email, bob.email] });
  cloud.addIssue({ key: "SUP-2", browsers: [alice.email] });
  return {
    site,
    cloud,
    server,
    alice,
    bob,
    async connect(who, extra = {}) {
      const res = await server.call("POST", "/api/jira/connections", {
        token: who.token,
        json: { base_url: site.url, pat: who.api, email: who.email, ...extra },
      });
      if (res.status !== 201) throw new Error(`connect failed: ${res.status} ${res.text}`);
      return res.body.connection_id;
    },
    async close() {
      await server.close();
      await site.close();
    },
  };
}
