/**
 * Helpers shared by the hardening tests: leak checks in every form the canary sweep knows,
 * child-process worlds on one KV file, a KV invariant checker, an in-process world whose Jira
 * traffic is tapped, a raw Streamable HTTP client, and the RSS of a child process.
 */
import assert from "node:assert/strict";
import { type Env, parseConfig } from "../../src/config.ts";
import { openServices } from "../../src/runtime.ts";
import { serve } from "../../src/server.ts";
import type { Services } from "../../src/services.ts";
import { httpTransport } from "../../src/jira/transport.ts";
import { httpsUploader } from "../../src/jira/upload.ts";
import { UserStore } from "../../src/users/users.ts";
import { kvKeys } from "../../src/kv_keys.ts";
import type { ConnectionRecord } from "../../src/connections/store.ts";
import { createKeyring, type Envelope, open, patAad } from "../../src/vault/cipher.ts";
import { parseMasterKey } from "../../src/config.ts";
import { freshDir, TEST_CA_FILE } from "../helpers/paths.ts";
import { randomMasterKey } from "../helpers/server.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import type { FakeJira } from "../../src/jira/fake/mod.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import type { TestClock } from "../helpers/clock.ts";

// ---- leaks ----------------------------------------------------------------------------------

/** The forms of a secret the canary sweep looks for (tests/sweep/canary_sweep_test.ts). */
export function secretForms(secret: string): string[] {
  const bytes = new TextEncoder().encode(secret);
  const b64 = btoa(secret);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return [
    secret,
    secret.split("").reverse().join(""),
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1).replace(/\//g, "\\/"),
    b64,
    b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""),
    hex,
    hex.toUpperCase(),
  ];
}

/** Every 12-character piece of a secret, as the sweep checks them. */
export function secretPieces(secret: string, size = 12): string[] {
  const out: string[] = [];
  for (let i = 0; i + size <= secret.length; i++) out.push(secret.slice(i, i + size));
  return out;
}

/** Needles for `leaksIn`: every form and piece of every secret. */
export function needlesOf(secrets: string[]): string[] {
  return [...new Set(secrets.flatMap((s) => [...secretForms(s), ...secretPieces(s)]))];
}

/** The first needle found in `text`, or null. */
export function leaksIn(text: string, needles: string[]): string | null {
  for (const n of needles) if (text.includes(n)) return n;
  return null;
}

export function assertNoLeak(text: string, needles: string[], where: string): void {
  const hit = leaksIn(text, needles);
  // Security: the assertion message names where, never the needle itself.
  assert.equal(hit, null, `${where}: a form or piece of a secret appears in the answer`);
}

// ---- child-process worlds -------------------------------------------------------------------

/** Environment for `serveProcess`/`runSosvault` on `dir`: its own KV, the test CA, limits off. */
export function childEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TOKEN_VAULT_MASTER_KEY: randomMasterKey(),
    SOSVAULT_KV_PATH: `${dir}/sosvault.kv`,
    JIRA_CA_FILE: TEST_CA_FILE,
    JIRA_ALLOWED_HOSTS: "127.0.0.1",
    JIRA_TIMEOUT_SECONDS: "5",
    SOSVAULT_ARTIFACT_DIR: `${dir}/artifacts`,
    // The budgets are tested where they are defined; here they would only hide other answers.
    SOSVAULT_RATE_CONNECT: "0/60",
    SOSVAULT_RATE_TOOLS: "0/60",
    ...extra,
  };
}

/** Creates users straight in the KV file before any server opens it; returns their tokens. */
export async function addUsersDirect(
  kvPath: string,
  names: string[],
  admin = false,
): Promise<Record<string, string>> {
  const kv = await Deno.openKv(kvPath);
  try {
    const users = new UserStore(kv, () => new Date());
    const tokens: Record<string, string> = {};
    for (const name of names) tokens[name] = (await users.add(name, admin)).token;
    return tokens;
  } finally {
    kv.close();
  }
}

/** Resident set size of a process in KiB, read with `cat` (Deno reads /proc only with -A). */
export async function rssKiB(pid: number): Promise<number> {
  const out = await new Deno.Command("cat", {
    args: [`/proc/${pid}/status`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(new TextDecoder().decode(out.stdout));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]);
}

// ---- KV invariants --------------------------------------------------------------------------

export interface VaultSnapshot {
  records: Map<string, ConnectionRecord>;
  envelopes: Map<string, Envelope>;
  index: Array<{ user: string; id: string }>;
}

export async function readVault(kv: Deno.Kv): Promise<VaultSnapshot> {
  const records = new Map<string, ConnectionRecord>();
  for await (const e of kv.list<ConnectionRecord>({ prefix: kvKeys.allConnections() })) {
    records.set(String(e.key[1]), e.value);
  }
  const envelopes = new Map<string, Envelope>();
  for await (const e of kv.list<Envelope>({ prefix: kvKeys.allSecrets() })) {
    envelopes.set(String(e.key[1]), e.value);
  }
  const index: Array<{ user: string; id: string }> = [];
  for await (const e of kv.list({ prefix: ["user_connection"] })) {
    index.push({ user: String(e.key[1]), id: String(e.key[2]) });
  }
  return { records, envelopes, index };
}

/**
 * The vault's invariants, read straight from KV (SECURITY_TESTS T2, T8). Returns every
 * violation as a sentence; an empty list means the vault is consistent:
 *  - a connected record has its ciphertext, and it decrypts under the current key, bound to
 *    its own user and id, to a PAT that user really gave (`patsOf`);
 *  - a closed (revoked or expired) record has no ciphertext;
 *  - no ciphertext exists without a connected record (create and close are one atomic
 *    operation each, so an orphan is never left behind, not even by a crash: none is allowed);
 *  - every record has its owner-index entry and every index entry its record.
 */
export async function vaultViolations(
  kv: Deno.Kv,
  masterKeyHex: string,
  patsOf: (user: string) => Set<string>,
): Promise<string[]> {
  const keyring = await createKeyring(parseMasterKey(masterKeyHex)!);
  const { records, envelopes, index } = await readVault(kv);
  const out: string[] = [];
  for (const [id, r] of records) {
    const env = envelopes.get(id);
    if (r.status === "connected") {
      if (!env) {
        out.push(`${id}: connected without its ciphertext`);
        continue;
      }
      if (env.kid !== keyring.current.kid) out.push(`${id}: envelope under an unknown key`);
      try {
        const pat = await open(keyring, env, patAad(r.user, id));
        if (!patsOf(r.user).has(pat)) out.push(`${id}: decrypts to a PAT its user never gave`);
      } catch {
        out.push(`${id}: ciphertext does not decrypt under the current key`);
      }
    } else {
      if (env) out.push(`${id}: ${r.status} but its ciphertext is still stored`);
      if (r.status === "revoked" && !r.revoked_at) out.push(`${id}: revoked without revoked_at`);
    }
    if (!index.some((e) => e.id === id && e.user === r.user)) {
      out.push(`${id}: record without its owner-index entry`);
    }
  }
  for (const id of envelopes.keys()) {
    if (!records.has(id)) out.push(`${id}: ciphertext without a record`);
  }
  for (const e of index) {
    if (!records.has(e.id)) out.push(`${e.id}: owner-index entry without a record`);
  }
  return out;
}

// ---- an in-process world with tapped Jira traffic -------------------------------------------

export interface TappedRequest {
  method: string;
  path: string;
  pat: string | null;
  /** The tap's epoch when the request was started (see `Tap.mark`). */
  epoch: number;
}

export interface Tap {
  requests: TappedRequest[];
  /** Starts a new epoch: requests started from now on carry its number, which is returned. */
  mark(): number;
  /** Requests carrying `pat` started in `epoch` (or in any epoch from it on, with `andLater`). */
  started(pat: string, epoch: number, andLater?: boolean): TappedRequest[];
}

function newTap(): { tap: Tap; record(r: Omit<TappedRequest, "epoch">): void } {
  let epoch = 0;
  const requests: TappedRequest[] = [];
  return {
    tap: {
      requests,
      mark: () => ++epoch,
      started: (pat, e, andLater = false) =>
        requests.filter((r) => r.pat === pat && (andLater ? r.epoch >= e : r.epoch === e)),
    },
    record: (r) => void requests.push({ ...r, epoch }),
  };
}

export interface CallAnswer {
  status: number;
  headers: Headers;
  text: string;
  // deno-lint-ignore no-explicit-any
  body: any;
}

export interface TappedWorld {
  url: string;
  dir: string;
  services: Services;
  jira: Awaited<ReturnType<typeof startFakeJira>>;
  tap: Tap;
  alice: { token: string; pat: string };
  bob: { token: string; pat: string };
  logs: string[];
  env: Env;
  call(
    method: string,
    path: string,
    init?: { token?: string; json?: unknown },
  ): Promise<CallAnswer>;
  connect(who: { token: string; pat: string }): Promise<string>;
  close(): Promise<void>;
}

/**
 * The real server in this process (openServices + serve, real KV on disk) with the fake Jira on
 * loopback HTTPS, where every request sosvault starts towards Jira — GETs through the transport,
 * uploads through the uploader — is recorded with its PAT before it leaves.
 */
export async function startTappedWorld(
  options: { env?: Env; clock?: TestClock; dir?: string } = {},
): Promise<TappedWorld> {
  const jira = await startFakeJira();
  const dir = options.dir ?? await freshDir("hardening");
  const env: Env = {
    TOKEN_VAULT_MASTER_KEY: randomMasterKey(),
    SOSVAULT_KV_PATH: `${dir}/sosvault.kv`,
    SOSVAULT_LISTEN: "127.0.0.1:0",
    JIRA_ALLOWED_HOSTS: "127.0.0.1",
    JIRA_CA_FILE: TEST_CA_FILE,
    JIRA_TIMEOUT_SECONDS: "10",
    SOSVAULT_ARTIFACT_DIR: `${dir}/artifacts`,
    SOSVAULT_RATE_CONNECT: "0/60",
    SOSVAULT_RATE_TOOLS: "0/60",
    ...options.env,
  };
  const { tap, record: push } = newTap();
  const caPem = await Deno.readTextFile(TEST_CA_FILE);
  const transport = httpTransport(caPem);
  const uploader = httpsUploader({ caPem });
  const bearer = (h: string | null) => /^Bearer (.+)$/.exec(h ?? "")?.[1] ?? null;
  const logs: string[] = [];
  const enc = new TextEncoder();
  const logFile = await Deno.open(`${dir}/server.log`, { append: true, create: true });
  const respFile = await Deno.open(`${dir}/responses.log`, { append: true, create: true });
  const services = await openServices(parseConfig(env), {
    clock: options.clock?.now,
    transport: (req) => {
      push({
        method: req.method,
        path: new URL(req.url).pathname,
        pat: bearer(req.headers.get("authorization")),
      });
      return transport(req);
    },
    uploader: (req) => {
      push({ method: "POST", path: `/upload/${req.issueKey}`, pat: req.pat });
      return uploader(req);
    },
    logSink: (line) => {
      logs.push(line);
      logFile.writeSync(enc.encode(line + "\n"));
    },
  });
  const server = serve(services);
  const call: TappedWorld["call"] = async (method, path, init = {}) => {
    const headers = new Headers();
    if (init.token) headers.set("authorization", `Bearer ${init.token}`);
    let body: string | undefined;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers.set("content-type", "application/json");
    }
    const res = await fetch(server.url + path, { method, headers, body });
    const text = await res.text();
    respFile.writeSync(enc.encode(`${method} ${path} -> ${res.status}\n${text}\n\n`));
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch { /* left undefined */ }
    return { status: res.status, headers: res.headers, text, body: parsed };
  };
  const alice = {
    token: (await services.users.add("alice", true)).token,
    pat: await newCanaryPat(),
  };
  const bob = { token: (await services.users.add("bob", false)).token, pat: await newCanaryPat() };
  jira.jira.addUser({ name: "alice.jira", displayName: "Alice Example" });
  jira.jira.addUser({ name: "bob.jira", displayName: "Bob Example" });
  jira.jira.addPat("alice.jira", alice.pat);
  jira.jira.addPat("bob.jira", bob.pat);
  jira.jira.addIssue({ key: "SUP-1", browsers: ["alice.jira", "bob.jira"] });
  await Deno.mkdir(`${dir}/artifacts/alice`, { recursive: true, mode: 0o700 });
  await Deno.mkdir(`${dir}/artifacts/bob`, { recursive: true, mode: 0o700 });
  return {
    url: server.url,
    dir,
    services,
    jira,
    tap,
    alice,
    bob,
    logs,
    env,
    call,
    async connect(who) {
      const res = await call("POST", "/api/jira/connections", {
        token: who.token,
        json: { base_url: jira.url, pat: who.pat },
      });
      if (res.status !== 201) throw new Error(`connect failed: ${res.status} ${res.text}`);
      return res.body.connection_id;
    },
    async close() {
      await server.shutdown();
      services.kv.close();
      logFile.close();
      respFile.close();
      await jira.close();
    },
  };
}

// ---- raw Streamable HTTP --------------------------------------------------------------------

export interface RawAnswer {
  status: number;
  contentType: string;
  text: string;
  /** JSON-RPC messages, from a JSON body or from the `data:` lines of an SSE body. */
  messages: unknown[];
}

export async function readRawAnswer(res: Response): Promise<RawAnswer> {
  const text = await res.text();
  const contentType = res.headers.get("content-type") ?? "";
  const messages: unknown[] = [];
  const chunks = contentType.includes("text/event-stream")
    ? text.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim())
    : [text];
  for (const c of chunks) {
    try {
      if (c) messages.push(JSON.parse(c));
    } catch { /* not JSON: kept in text */ }
  }
  return { status: res.status, contentType, text, messages };
}

/** Opens an MCP session over plain fetch and returns a poster for raw bodies on it. */
export async function rawMcpSession(url: string, token: string) {
  const base = {
    authorization: `Bearer ${token}`,
    accept: "application/json, text/event-stream",
    "content-type": "application/json",
  };
  const init = await fetch(`${url}/mcp`, {
    method: "POST",
    headers: base,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "hardening", version: "1" },
      },
    }),
  });
  const sessionId = init.headers.get("mcp-session-id");
  await init.body?.cancel();
  if (init.status !== 200 || !sessionId) throw new Error(`initialize answered ${init.status}`);
  const headers = { ...base, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" };
  const initialized = await fetch(`${url}/mcp`, {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await initialized.body?.cancel();
  return {
    sessionId,
    async post(body: BodyInit, extra: Record<string, string> = {}): Promise<RawAnswer> {
      return await readRawAnswer(
        await fetch(`${url}/mcp`, { method: "POST", headers: { ...headers, ...extra }, body }),
      );
    },
    async close() {
      const res = await fetch(`${url}/mcp`, { method: "DELETE", headers });
      await res.body?.cancel();
    },
  };
}

// ---- a fake Jira with answers replaced ------------------------------------------------------

/**
 * The given fake Jira, except that `override` may answer a request first (return undefined to
 * let the fake answer). Everything else — users, issues, recorded requests — is the fake's.
 */
export function overrideFake(
  real: FakeJira,
  override: (req: Request) => Response | undefined | Promise<Response | undefined>,
): FakeJira {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "fetch") {
        return async (req: Request) => (await override(req)) ?? await target.fetch(req);
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
