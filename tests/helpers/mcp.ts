/**
 * The official MCP SDK client over Streamable HTTP, authenticated like any real client, with
 * every tool result appended to the run's record for the canary sweep.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { ClientCapabilities } from "@modelcontextprotocol/sdk/types.js";

export interface McpTestClient {
  client: Client;
  transport: StreamableHTTPClientTransport;
  call(
    name: string,
    args: Record<string, unknown>,
    onprogress?: (p: { progress: number; total?: number }) => void,
    // deno-lint-ignore no-explicit-any
  ): Promise<any>;
  close(): Promise<void>;
}

export async function connectMcp(
  baseUrl: string,
  token: string | undefined,
  options: {
    capabilities?: ClientCapabilities;
    recordFile?: string;
    sessionId?: string;
    /** Sees every HTTP answer the transport receives (its headers, say). */
    onResponse?: (res: Response) => void;
  } = {},
): Promise<McpTestClient> {
  const { onResponse } = options;
  const transport = new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), {
    requestInit: { headers: token ? { Authorization: `Bearer ${token}` } : {} },
    sessionId: options.sessionId,
    ...(onResponse
      ? {
        fetch: async (url: string | URL, init?: RequestInit) => {
          const res = await fetch(url, init);
          onResponse(res);
          return res;
        },
      }
      : {}),
  });
  const client = new Client({ name: "sosvault-tests", version: "1.0.0" }, {
    capabilities: options.capabilities ?? {},
  });
  if (!options.sessionId) await client.connect(transport);
  const record = async (text: string) => {
    if (options.recordFile) {
      await Deno.writeTextFile(options.recordFile, text + "\n", { append: true });
    }
  };
  return {
    client,
    transport,
    async call(name, args, onprogress) {
      const result = await client.callTool(
        { name, arguments: args },
        undefined,
        onprogress ? { onprogress, resetTimeoutOnProgress: true } : {},
      );
      await record(JSON.stringify({ tool: name, result }));
      return result;
    },
    async close() {
      await client.close().catch(() => {});
    },
  };
}

/** The contract's error shape inside an isError tool result. */
// deno-lint-ignore no-explicit-any
export function toolError(result: any): { code: string; message: string; request_id: string } {
  if (!result.isError) throw new Error(`expected an error result, got ${JSON.stringify(result)}`);
  const body = JSON.parse(result.content[0].text);
  if (!body.error || Object.keys(body.error).sort().join() !== "code,message,request_id") {
    throw new Error(`not the contract's error shape: ${result.content[0].text}`);
  }
  return body.error;
}
