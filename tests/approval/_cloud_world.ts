/**
 * A world for change-approval tests on Jira Cloud: the fake Jira Cloud site and gateway on
 * HTTPS with a CR project, its Change Manager role (carol directly, the change-board group
 * through a group actor), and a sosvault server with the gate on. Alice connects with a
 * classic API token (site URL), bob with a scoped one (the gateway with the site's cloudId).
 * Every Jira identity here is an accountId; nobody has a user name.
 */
import { type CloudUser, type CloudWorld, startCloudWorld } from "../helpers/cloud_world.ts";
import { connectMcp, type McpTestClient } from "../helpers/mcp.ts";
import type { Env } from "../../src/config.ts";
import { HOST } from "./_world.ts";

export { HOST };

export interface CloudApprovalWorld {
  w: CloudWorld;
  alice: McpTestClient;
  bob: McpTestClient;
  /** Alice's classic-token connection and bob's scoped-token connection. */
  classicId: string;
  scopedId: string;
  /** E-mails of the other accounts, and their accountIds. */
  people: Record<"carol" | "dave" | "erin", { email: string; accountId: string }>;
  /** A CR in project CR, moved to Approved by `approver` (an e-mail; default carol's). */
  approvedCr(key: string, init?: { approver?: string; labels?: string[] }): void;
  consent(who: CloudUser): Promise<string>;
  close(): Promise<void>;
}

export async function startCloudApprovalWorld(
  env: Env = {},
  options: { changelogEmbedLimit?: number; sosWaitMs?: number } = {},
): Promise<CloudApprovalWorld> {
  const w = await startCloudWorld({
    env: { SOSVAULT_APPROVAL: "cr", SOSVAULT_APPROVAL_PROJECT: "CR", ...env },
    changelogEmbedLimit: options.changelogEmbedLimit,
    sosWaitMs: options.sosWaitMs,
  });
  const c = w.cloud;
  const person = (name: string, displayName: string) => {
    const email = `${name}@cr.example.org`;
    return { email, accountId: c.addAccount({ email, displayName }) };
  };
  const people = {
    carol: person("carol", "Carol Manager"),
    dave: person("dave", "Dave Developer"),
    erin: person("erin", "Erin Board"),
  };
  c.addProjectRole("CR", "Change Manager", {
    users: [people.carol.email],
    groups: ["change-board"],
  });
  c.addProjectRole("CR", "Developers", { users: [people.dave.email] });
  c.addToGroup("change-board", people.erin.email);
  c.addToGroup("jira-software-users", people.dave.email);
  const classicId = await w.connect(w.alice);
  const scopedId = await w.connect(w.bob);
  const alice = await connectMcp(w.server.url, w.alice.token);
  const bob = await connectMcp(w.server.url, w.bob.token);
  return {
    w,
    alice,
    bob,
    classicId,
    scopedId,
    people,
    approvedCr(key, init = {}) {
      c.addChangeRequest({ key, labels: init.labels ?? ["routine", HOST] });
      c.transition(key, "In Review", people.dave.email);
      c.transition(key, "Approved", init.approver ?? people.carol.email);
    },
    async consent(who) {
      const res = await w.server.call("POST", "/api/sos/consents", { token: who.token });
      return res.body.consent_token;
    },
    async close() {
      await w.server.services.sos.settle();
      await alice.close();
      await bob.close();
      await w.close();
    },
  };
}
