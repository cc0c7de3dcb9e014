/**
 * Starts the real sosvault server in the test process: the same composition as main.ts
 * (openServices + serve), real Deno KV on disk, a real HTTP listener on 127.0.0.1, and the
 * Jira client talking HTTPS to the fake Jira server with the test CA. Log lines and every
 * response body are kept in memory and written under .test-out/ for the canary sweep.
 */
import { type Env, parseConfig } from "../../src/config.ts";
import { openServices } from "../../src/runtime.ts";
import { serve } from "../../src/server.ts";
import type { Services } from "../../src/services.ts";
import type { McpSessions } from "../../src/mcp/sessions.ts";
import type { JiraTransport } from "../../src/jira/transport.ts";
import { freshDir, TEST_CA_FILE } from "./paths.ts";
import type { TestClock } from "./clock.ts";

export function randomMasterKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export interface TestServer {
  url: string;
  dir: string;
  services: Services;
  sessions: McpSessions;
  logs: string[];
  env: Env;
  /** Calls the API and records the whole response (status, headers, body) for the sweep. */
  call(method: string, path: string, init?: CallInit): Promise<CallResult>;
  /** Creates a sosvault user and returns its token. */
  addUser(name: string, admin?: boolean): Promise<string>;
  close(): Promise<void>;
}

export interface CallInit {
  token?: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  text: string;
  // deno-lint-ignore no-explicit-any
  body: any;
}

export interface StartOptions {
  env?: Env;
  clock?: TestClock;
  transport?: JiraTransport;
  /** Reuse a directory (and so its KV file) from an earlier server. */
  dir?: string;
  sosWaitMs?: number;
  sosTimeoutMs?: number;
  sosCandidates?: string[];
  /** Where scoped Jira Cloud tokens go (the fake Cloud's origin in tests). */
  cloudGatewayUrl?: string;
  /** SOSVAULT_KEY_SOURCE=vault: how to reach the fake Vault (default: VAULT_CACERT). */
  vaultFetch?: (req: Request) => Promise<Response>;
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dir = options.dir ?? await freshDir("server");
  const env: Env = {
    TOKEN_VAULT_MASTER_KEY: randomMasterKey(),
    SOSVAULT_KV_PATH: `${dir}/sosvault.kv`,
    SOSVAULT_LISTEN: "127.0.0.1:0",
    JIRA_ALLOWED_HOSTS: "127.0.0.1,localhost",
    JIRA_CA_FILE: TEST_CA_FILE,
    JIRA_TIMEOUT_SECONDS: "5",
    SOSVAULT_ARTIFACT_DIR: `${dir}/artifacts`,
    ...options.env,
  };
  const logs: string[] = [];
  const logFile = await Deno.open(`${dir}/server.log`, { append: true, create: true });
  const respFile = await Deno.open(`${dir}/responses.log`, { append: true, create: true });
  const enc = new TextEncoder();
  const services = await openServices(parseConfig(env), {
    clock: options.clock?.now,
    transport: options.transport,
    sosWaitMs: options.sosWaitMs,
    sosTimeoutMs: options.sosTimeoutMs,
    sosCandidates: options.sosCandidates,
    cloudGatewayUrl: options.cloudGatewayUrl,
    vaultFetch: options.vaultFetch,
    // Tests move their clock and call services.vault.step() themselves: no real-time timers.
    vaultAutoRenew: false,
    logSink: (line) => {
      logs.push(line);
      logFile.writeSync(enc.encode(line + "\n"));
    },
  });
  const server = serve(services);
  return {
    url: server.url,
    dir,
    services,
    sessions: server.sessions,
    logs,
    env,
    async call(method, path, init = {}) {
      const headers = new Headers(init.headers);
      if (init.token) headers.set("Authorization", `Bearer ${init.token}`);
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        if (!headers.has("content-type")) headers.set("content-type", "application/json");
      }
      const res = await fetch(server.url + path, { method, headers, body });
      const text = await res.text();
      respFile.writeSync(enc.encode(
        `${method} ${path} -> ${res.status}\n${JSON.stringify([...res.headers])}\n${text}\n\n`,
      ));
      let parsed: unknown = undefined;
      try {
        parsed = JSON.parse(text);
      } catch { /* not JSON: left undefined for the test to assert on */ }
      return { status: res.status, headers: res.headers, text, body: parsed };
    },
    async addUser(name, admin = false) {
      return (await services.users.add(name, admin)).token;
    },
    async close() {
      await server.shutdown();
      services.vault?.close();
      services.kv.close();
      logFile.close();
      respFile.close();
    },
  };
}
