/**
 * A world for change-approval tests: the fake Jira on HTTPS with a CR project, its Change
 * Manager role (carol directly, the change-board group through a group actor), and a sosvault
 * server with the approval gate on. Alice connects; her Jira account is alice.jira.
 */
import { startWorld, type World } from "../helpers/world.ts";
import { connectMcp, type McpTestClient } from "../helpers/mcp.ts";
import type { StartOptions } from "../helpers/server.ts";
import type { Env } from "../../src/config.ts";
import { runSosvault } from "../helpers/process.ts";

export const HOST = Deno.hostname();
export const START_FIELD = "customfield_10300";
export const END_FIELD = "customfield_10301";
export const SIGNATURE_FIELD = "customfield_10400";

/**
 * Whether the gated tests can run here: the gate refuses only after sosvault's own sos and sudo
 * checks, so they need sos installed and root. Elsewhere they skip; in CI they fail instead.
 */
export function canRunGated(what: string): boolean {
  const sos = ["/usr/sbin/sos", "/usr/bin/sos"].some((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  if (sos && Deno.uid() === 0) return true;
  if (Deno.env.get("CI")) throw new Error(`${what} need sos and root`);
  console.warn(`SKIPPED ${what}: they need sos and root (sudo)`);
  return false;
}

export interface ApprovalWorld {
  w: World;
  alice: McpTestClient;
  connectionId: string;
  /** A CR in project CR, moved to Approved by `approver` (default carol), naming this host. */
  approvedCr(key: string, init?: {
    approver?: string;
    labels?: string[];
    fields?: Record<string, unknown>;
  }): void;
  generate(args: Record<string, unknown>): Promise<unknown>;
  close(): Promise<void>;
}

export async function startApprovalWorld(
  env: Env = {},
  options: StartOptions = {},
): Promise<ApprovalWorld> {
  const w = await startWorld({
    ...options,
    env: {
      SOSVAULT_APPROVAL: "cr",
      SOSVAULT_APPROVAL_PROJECT: "CR",
      SOSVAULT_APPROVAL_WINDOW_FIELDS: `${START_FIELD},${END_FIELD}`,
      ...env,
    },
  });
  const j = w.jira.jira;
  for (
    const [name, displayName] of [["carol", "Carol Manager"], ["dave", "Dave Developer"], [
      "erin",
      "Erin Board",
    ]]
  ) j.addUser({ name, displayName });
  j.addProjectRole("CR", "Change Manager", { users: ["carol"], groups: ["change-board"] });
  j.addProjectRole("CR", "Developers", { users: ["dave"] });
  j.addToGroup("change-board", "erin");
  j.addToGroup("jira-software-users", "dave");
  const connectionId = await w.connect(w.alice);
  const alice = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  return {
    w,
    alice,
    connectionId,
    approvedCr(key, init = {}) {
      j.addChangeRequest({
        key,
        labels: init.labels ?? ["routine", HOST],
        fields: init.fields,
      });
      j.transition(key, "In Review", "dave");
      j.transition(key, "Approved", init.approver ?? "carol");
    },
    generate(args) {
      return alice.call("generate_sosreport", args);
    },
    async close() {
      await w.server.services.sos.settle();
      await alice.close();
      await w.close();
    },
  };
}

/** Runs `sosvault approval …` as the real CLI child process. */
export function approvalCli(dir: string, args: string[]) {
  return runSosvault(dir, ["approval", ...args], {});
}
