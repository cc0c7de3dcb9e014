/**
 * The baseline for the MCP benchmarks: the MCP SDK's low-level Server on the same web-standard
 * Streamable HTTP transport and the same Deno.serve as sosvault, with one session map and one
 * trivial tool, and nothing else (no Hono, no auth, no KV, no validation). Its tool returns a
 * constant result the size and shape of a jira_connection_status answer, so both servers send
 * the same bytes. GET /health answers 200 for the cold-start figure.
 *
 *   deno run --allow-net=127.0.0.1 --allow-env=BARE_MCP_PORT scripts/bench/bare_mcp_server.ts
 * Logs one JSON line {"msg":"listening","url":…} like sosvault does.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const CONNECTION = {
  connection_id: "jc_0123456789abcdefghijklmnop",
  status: "connected",
  base_url: "https://127.0.0.1:12345",
  jira_user: { name: "bench", display_name: "Bench" },
  created_at: "2026-01-01T00:00:00.000Z",
  expires_at: "2026-01-01T08:00:00.000Z",
  last_verified_at: "2026-01-01T00:00:00.000Z",
  revoked_at: null,
  key_version: "k1",
};
const RESULT = {
  structuredContent: CONNECTION,
  content: [{
    type: "text" as const,
    text: Object.entries(CONNECTION).map(([k, v]) =>
      typeof v === "object" && v !== null
        ? Object.entries(v).map(([k2, v2]) => `${k}.${k2}: ${v2}`).join("\n")
        : `${k}: ${v}`
    ).join("\n"),
  }],
};

function newServer(): Server {
  const server = new Server({ name: "bare", version: "1.0.0" }, {
    capabilities: { tools: {} },
  });
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: [{
      name: "jira_connection_status",
      description: "A constant answer.",
      inputSchema: { type: "object", properties: { connection_id: { type: "string" } } },
    }],
  }));
  server.setRequestHandler(CallToolRequestSchema, () => RESULT);
  return server;
}

const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();

function jsonError(status: number, message: string): Response {
  return new Response(
    JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }),
    { status, headers: { "content-type": "application/json" } },
  );
}

/** The whole server as a fetch handler (also measured in process by scripts/bench/stages.ts). */
export async function bareHandler(req: Request): Promise<Response> {
  const path = new URL(req.url).pathname;
  if (path === "/health") return Response.json({ status: "healthy" });
  if (path !== "/mcp") return new Response("not found", { status: 404 });
  const sid = req.headers.get("mcp-session-id");
  if (sid) {
    const transport = sessions.get(sid);
    return transport ? await transport.handleRequest(req) : jsonError(404, "Session not found");
  }
  const transport: WebStandardStreamableHTTPServerTransport =
    new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id: string) => void sessions.set(id, transport),
      onsessionclosed: (id: string) => void sessions.delete(id),
    });
  await newServer().connect(transport);
  return await transport.handleRequest(req);
}

if (import.meta.main) {
  Deno.serve({
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("BARE_MCP_PORT") ?? 0),
    onListen: ({ port }) => {
      console.log(JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${port}` }));
    },
  }, bareHandler);
}
