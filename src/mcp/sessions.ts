/**
 * Streamable HTTP sessions. Each session has its own transport and MCP server and belongs to
 * the user who initialised it; another user presenting its id gets the same answer as for an
 * unknown session (and a `denied` event). Idle sessions are closed.
 */
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { randomId } from "../ids.ts";
import { AppError } from "../errors.ts";
import { readLimited } from "../http/json_body.ts";
import type { Services } from "../services.ts";
import { createMcpServer } from "./server.ts";

interface Session {
  user: string;
  transport: WebStandardStreamableHTTPServerTransport;
  server: Server;
  lastSeen: number;
}

export interface McpSessionOptions {
  idleMs: number;
  maxPerUser: number;
  maxBodyBytes: number;
}

const DEFAULTS: McpSessionOptions = {
  idleMs: 30 * 60_000,
  maxPerUser: 32,
  maxBodyBytes: 1024 * 1024,
};

export class McpSessions {
  readonly #sessions = new Map<string, Session>();
  readonly #o: McpSessionOptions;
  readonly #sweeper: ReturnType<typeof setInterval>;

  constructor(private s: Services, options: Partial<McpSessionOptions> = {}) {
    this.#o = { ...DEFAULTS, ...options };
    this.#sweeper = setInterval(() => this.sweep(), Math.min(60_000, this.#o.idleMs));
    Deno.unrefTimer(this.#sweeper);
  }

  get size(): number {
    return this.#sessions.size;
  }

  async handle(req: Request, user: string, requestId: string): Promise<Response> {
    const sid = req.headers.get("mcp-session-id");
    // The HTTP request's id is the tool call's too, so X-Request-Id, the logs and an error's
    // request_id name the same request.
    const authInfo = { token: "", clientId: user, scopes: [], extra: { user, requestId } };
    if (sid) {
      const session = this.#sessions.get(sid);
      if (!session || session.user !== user) {
        if (session) {
          await this.s.events.denied({ user, requestId, source: "mcp" });
        }
        // Security: another user's session looks exactly like an expired one.
        return rpcError(404, -32001, "Session not found: initialize a new MCP session");
      }
      session.lastSeen = this.s.clock().getTime();
      if (req.method !== "POST") return await session.transport.handleRequest(req, { authInfo });
      // Security: every message is read here, under the same size cap as the first one, so a
      // `__proto__` key is refused before the SDK's parsing silently turns it into a prototype.
      const parsedBody = await readBody(req, this.#o.maxBodyBytes);
      if (parsedBody === TOO_LARGE) return rpcError(413, -32600, "Request body too large");
      if (parsedBody === undefined) {
        return rpcError(400, -32700, "Parse error: the body must be JSON without __proto__ keys");
      }
      return await session.transport.handleRequest(req, { authInfo, parsedBody });
    }
    if (req.method !== "POST") {
      return rpcError(400, -32000, "Bad Request: Mcp-Session-Id header is required");
    }
    const body = await readBody(req, this.#o.maxBodyBytes);
    if (body === TOO_LARGE) return rpcError(413, -32600, "Request body too large");
    if (body === undefined) return rpcError(400, -32700, "Parse error: the body must be JSON");
    const isInit = Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body);
    if (!isInit) return rpcError(400, -32000, "Bad Request: Mcp-Session-Id header is required");
    return await this.open(req, user, body, authInfo);
  }

  private async open(
    req: Request,
    user: string,
    body: unknown,
    authInfo: { token: string; clientId: string; scopes: string[]; extra: Record<string, unknown> },
  ): Promise<Response> {
    this.evictOldestOf(user);
    const server = createMcpServer(this.s, user, this.s.version);
    const transport: WebStandardStreamableHTTPServerTransport =
      new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomId("mcp_", 24),
        onsessioninitialized: (id: string) => {
          this.#sessions.set(id, { user, transport, server, lastSeen: this.s.clock().getTime() });
        },
        onsessionclosed: (id: string) => {
          this.#sessions.delete(id);
        },
      });
    await server.connect(transport);
    const res = await transport.handleRequest(req, { parsedBody: body, authInfo });
    if (!transport.sessionId) await server.close();
    return res;
  }

  private evictOldestOf(user: string) {
    const mine = [...this.#sessions.entries()].filter(([, v]) => v.user === user);
    if (mine.length < this.#o.maxPerUser) return;
    mine.sort((a, b) => a[1].lastSeen - b[1].lastSeen);
    void this.close(mine[0][0]);
  }

  async close(id: string) {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    await session.server.close().catch(() => {});
  }

  /** Closes sessions idle for longer than the limit. */
  sweep() {
    const cutoff = this.s.clock().getTime() - this.#o.idleMs;
    for (const [id, session] of this.#sessions) {
      if (session.lastSeen < cutoff) void this.close(id);
    }
  }

  async closeAll() {
    clearInterval(this.#sweeper);
    await Promise.all([...this.#sessions.keys()].map((id) => this.close(id)));
  }
}

const TOO_LARGE = Symbol("too large");
/** Stateless when not streaming, so one decoder serves every body. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

async function readBody(req: Request, max: number): Promise<unknown | typeof TOO_LARGE> {
  let bytes: Uint8Array;
  try {
    bytes = await readLimited(req, max);
  } catch (err) {
    if (err instanceof AppError && err.code === "payload_too_large") return TOO_LARGE;
    return undefined;
  }
  try {
    const text = UTF8.decode(bytes);
    // A reviver slows every parse several times over, so it runs only on a body that could hold
    // a `__proto__` key: one that spells it out, or that has an escape which could spell it.
    return mayHideProto(text) ? JSON.parse(text, refuseProto) : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function mayHideProto(text: string): boolean {
  return text.includes("__proto__") || text.includes("\\u");
}

/** A JSON.parse reviver that fails on any `__proto__` key, at any depth. */
function refuseProto(key: string, value: unknown): unknown {
  if (key === "__proto__") throw new SyntaxError("__proto__ key");
  return value;
}

function rpcError(status: number, code: number, message: string): Response {
  return new Response(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }), {
    status,
    headers: { "content-type": "application/json" },
  });
}
