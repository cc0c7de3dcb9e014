/**
 * A test world: the fake Jira on loopback HTTPS, a sosvault server pointed at it, and users
 * alice (admin) and bob, each with a canary PAT that Jira knows.
 */
import { startFakeJira } from "./fake_jira_server.ts";
import { newCanaryPat } from "./canary.ts";
import { type StartOptions, startServer, type TestServer } from "./server.ts";

export interface World {
  jira: Awaited<ReturnType<typeof startFakeJira>>;
  server: TestServer;
  alice: { token: string; pat: string };
  bob: { token: string; pat: string };
  /** Connects a user to the fake Jira through the HTTP API and returns the connection id. */
  connect(who: { token: string; pat: string }): Promise<string>;
  close(): Promise<void>;
}

export async function startWorld(options: StartOptions = {}): Promise<World> {
  const jira = await startFakeJira();
  const server = await startServer(options);
  const alice = { token: await server.addUser("alice", true), pat: await newCanaryPat() };
  const bob = { token: await server.addUser("bob"), pat: await newCanaryPat() };
  jira.jira.addUser({ name: "alice.jira", displayName: "Alice Example" });
  jira.jira.addUser({ name: "bob.jira", displayName: "Bob Example" });
  jira.jira.addPat("alice.jira", alice.pat);
  jira.jira.addPat("bob.jira", bob.pat);
  jira.jira.addIssue({ key: "SUP-1", browsers: ["alice.jira", "bob.jira"] });
  jira.jira.addIssue({ key: "SUP-2", browsers: ["alice.jira"] });
  return {
    jira,
    server,
    alice,
    bob,
    async connect(who) {
      const res = await server.call("POST", "/api/jira/connections", {
        token: who.token,
        json: { base_url: jira.url, pat: who.pat },
      });
      if (res.status !== 201) throw new Error(`connect failed: ${res.status} ${res.text}`);
      return res.body.connection_id;
    },
    async close() {
      await server.close();
      await jira.close();
    },
  };
}

/** Asserts the contract's error shape and returns the body's error. */
export function errorOf(res: { status: number; body: unknown; text: string }) {
  const b = res.body as { error?: { code: string; message: string; request_id: string } };
  if (
    !b?.error || typeof b.error.code !== "string" || typeof b.error.message !== "string" ||
    !/^req_/.test(b.error.request_id)
  ) {
    throw new Error(`not the contract's error shape: ${res.status} ${res.text}`);
  }
  if (
    Object.keys(b).length !== 1 || Object.keys(b.error).sort().join() !== "code,message,request_id"
  ) {
    throw new Error(`extra fields in error: ${res.text}`);
  }
  return b.error;
}
