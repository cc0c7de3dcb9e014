/**
 * What every benchmark section shares: a work directory under .bench-out/, "Jira" — the HTTPS
 * sink (scripts/bench/https_sink.ts: the fake Jira of src/jira/fake/ for every call but the
 * upload, which it discards) with one Jira user, PAT and issue — and a sosvault user with its
 * API token in that directory's KV store.
 */
import { makeDcPat } from "../../tests/helpers/canary.ts";
import { runSosvault } from "../../tests/helpers/process.ts";
import { type Sink, sosvaultEnv, startSink, TEST_CA_FILE } from "./procs.ts";

export const ISSUE = "BENCH-1";
export const JIRA_USER = "bench";

export interface World {
  dir: string;
  pat: string;
  token: string;
  env: Record<string, string>;
  /** Jira's base URL: the sink. */
  jiraUrl: string;
  sink: Sink;
  /** Trusts the test CA (for direct calls to the fake Jira). */
  client: Deno.HttpClient;
  /** Another sosvault user (its own connections) in `env`'s KV store; returns its API token. */
  addUser(name: string, env?: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

export async function makeWorld(dir: string): Promise<World> {
  await Deno.mkdir(`${dir}/kv`, { recursive: true, mode: 0o700 });
  await Deno.mkdir(`${dir}/artifacts/${JIRA_USER}`, { recursive: true, mode: 0o700 });
  await Deno.chmod(`${dir}/artifacts`, 0o700);
  const pat = makeDcPat();
  const sink = await startSink(dir, { pat, user: JIRA_USER, issue: ISSUE });
  const env = sosvaultEnv(dir);
  const addUser = async (name: string, userEnv: Record<string, string> = env) => {
    const added = await runSosvault(dir, ["users", "add", name, "--json"], userEnv);
    if (added.code !== 0) throw new Error(`users add failed: ${added.stderr}`);
    return JSON.parse(added.stdout).token as string;
  };
  const token = await addUser(JIRA_USER);
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(TEST_CA_FILE)] });
  return {
    dir,
    pat,
    token,
    env,
    jiraUrl: sink.url,
    sink,
    client,
    addUser,
    async close() {
      client.close();
      await sink.stop();
    },
  };
}

/** POST /api/jira/connections; returns the connection id and the time it took. */
export async function connect(
  serverUrl: string,
  token: string,
  baseUrl: string,
  pat: string,
): Promise<{ id: string; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${serverUrl}/api/jira/connections`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ base_url: baseUrl, pat }),
  });
  const body = await res.json();
  const ms = performance.now() - started;
  if (res.status !== 201 || body.status !== "connected") {
    throw new Error(`connect failed: ${res.status} ${JSON.stringify(body)}`);
  }
  return { id: body.connection_id, ms };
}
