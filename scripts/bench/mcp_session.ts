/**
 * A minimal Streamable HTTP client for the load generator's setup: initialize a session, send
 * notifications/initialized, and make single calls that report how the server answered (SSE
 * or JSON), so the wrk script can be checked against what each server really sends.
 */

export interface McpSession {
  url: string;
  token: string | undefined;
  sessionId: string;
  protocolVersion: string;
}

export const PROTOCOL_VERSION = "2025-11-25";

function headers(s: { token?: string; sessionId?: string; protocolVersion?: string }) {
  const h: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  };
  if (s.token) h.authorization = `Bearer ${s.token}`;
  if (s.sessionId) h["mcp-session-id"] = s.sessionId;
  if (s.protocolVersion) h["mcp-protocol-version"] = s.protocolVersion;
  return h;
}

/** The JSON-RPC message(s) of an answer, whether SSE frames or a JSON body. */
export async function readAnswer(res: Response): Promise<{ kind: string; messages: unknown[] }> {
  const type = res.headers.get("content-type") ?? "";
  const text = await res.text();
  if (type.includes("text/event-stream")) {
    const messages = text.split(/\r?\n/).filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).trim()).filter((d) => d !== "").map((d) => JSON.parse(d));
    return { kind: "text/event-stream", messages };
  }
  if (type.includes("application/json")) {
    const body = JSON.parse(text);
    return { kind: "application/json", messages: Array.isArray(body) ? body : [body] };
  }
  return { kind: type || "(none)", messages: [] };
}

export async function openSession(baseUrl: string, token?: string): Promise<McpSession> {
  const url = `${baseUrl}/mcp`;
  const res = await fetch(url, {
    method: "POST",
    headers: headers({ token }),
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: "sosvault-bench", version: "1.0.0" },
      },
    }),
  });
  const sessionId = res.headers.get("mcp-session-id");
  const answer = await readAnswer(res);
  if (res.status !== 200 || !sessionId) {
    throw new Error(`initialize failed: ${res.status} ${JSON.stringify(answer.messages)}`);
  }
  // deno-lint-ignore no-explicit-any
  const protocolVersion = (answer.messages[0] as any)?.result?.protocolVersion ?? PROTOCOL_VERSION;
  const note = await fetch(url, {
    method: "POST",
    headers: headers({ token, sessionId, protocolVersion }),
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await note.body?.cancel();
  if (note.status !== 202) throw new Error(`notifications/initialized: ${note.status}`);
  return { url, token, sessionId, protocolVersion };
}

let nextId = 1;

/** One JSON-RPC request; returns how the server answered and the result. */
export async function rpc(
  s: McpSession,
  method: string,
  params: Record<string, unknown>,
): Promise<{ kind: string; status: number; result: Record<string, unknown> }> {
  const res = await fetch(s.url, {
    method: "POST",
    headers: headers(s),
    body: JSON.stringify({ jsonrpc: "2.0", id: `setup-${nextId++}`, method, params }),
  });
  const answer = await readAnswer(res);
  // deno-lint-ignore no-explicit-any
  const msg = answer.messages.find((m: any) => "result" in m || "error" in m) as any;
  if (!msg?.result || msg.result.isError) {
    throw new Error(`${method} failed: ${res.status} ${JSON.stringify(answer.messages)}`);
  }
  return { kind: answer.kind, status: res.status, result: msg.result };
}

/** One tools/call (optionally with a progress token, as clients that show progress send). */
export function callTool(
  s: McpSession,
  name: string,
  args: Record<string, unknown>,
  progressToken?: string,
): Promise<{ kind: string; status: number; result: Record<string, unknown> }> {
  return rpc(s, "tools/call", {
    name,
    arguments: args,
    ...(progressToken ? { _meta: { progressToken } } : {}),
  });
}

export async function closeSession(s: McpSession): Promise<void> {
  const res = await fetch(s.url, { method: "DELETE", headers: headers(s) });
  await res.body?.cancel();
}
