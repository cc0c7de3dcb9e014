/**
 * One MCP server per session, bound to the user who opened it. tools/list and tools/call are
 * handled here with the low-level SDK server, so every call goes through the same pipeline:
 * the rate limit, secret rejection, strict input validation, the tool, and one error mapping.
 * Prompts and resources (the guided workflow) are in prompts.ts.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  type CallToolRequest,
  CallToolRequestSchema,
  ListToolsRequestSchema,
  type ServerNotification,
  type ServerRequest,
} from "@modelcontextprotocol/sdk/types.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import { z } from "zod";
import { AppError, toAppError } from "../errors.ts";
import { newRequestId } from "../ids.ts";
import type { Services } from "../services.ts";
import type { RequestContext } from "../context.ts";
import { describeIssues } from "../http/json_body.ts";
import { errorResult, okResult, type ToolResult } from "./results.ts";
import type { ToolDef, ToolRun } from "./tool.ts";
import { TOOLS } from "./tools/mod.ts";
import { PROMPT_CAPABILITIES, registerPromptsAndResources } from "./prompts.ts";

const INSTRUCTIONS =
  "sosvault attaches files (such as sosreports) to Jira issues with the user's own Jira token, which never passes through this conversation. Never ask the user for a token: call jira_connect and let them enter it on the page it opens; then use the connection_id it gives them. The whole workflow, step by step: the prompt engage_support or the resource sosvault://workflow.";

interface ListedTool {
  name: string;
  title: string;
  description: string;
  inputSchema: Record<string, unknown>;
  outputSchema: Record<string, unknown>;
  annotations: ToolDef["annotations"];
}

let listed: ListedTool[] | undefined;

/** The tools/list answer, computed once: schemas come from the same zod objects that validate. */
export function listTools(): ListedTool[] {
  listed ??= TOOLS.map((t) => ({
    name: t.name,
    title: t.annotations.title,
    description: t.description,
    inputSchema: jsonSchema(t.input, "input"),
    outputSchema: jsonSchema(t.output, "output"),
    annotations: t.annotations,
  }));
  return listed;
}

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, {
    io,
    unrepresentable: "any",
  }) as Record<string, unknown>;
  return rest;
}

export function createMcpServer(s: Services, user: string, version: string): Server {
  const server = new Server(
    { name: "sosvault", title: "sosvault", version },
    {
      capabilities: { tools: { listChanged: false }, ...PROMPT_CAPABILITIES },
      instructions: INSTRUCTIONS,
    },
  );
  const byName = new Map(TOOLS.map((t) => [t.name, t]));

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listTools() }));
  registerPromptsAndResources(server, s, user);

  server.setRequestHandler(CallToolRequestSchema, async (
    req: CallToolRequest,
    extra: RequestHandlerExtra<ServerRequest, ServerNotification>,
  ): Promise<ToolResult> => {
    const sent = extra.authInfo?.extra?.requestId;
    const ctx: RequestContext = {
      user,
      requestId: typeof sent === "string" ? sent : newRequestId(),
      source: "mcp",
    };
    const tool = byName.get(req.params.name);
    try {
      // Security: every call spends the user's tool budget (kept in KV, shared by instances),
      // before any other work, so a runaway or hostile client is throttled cheaply.
      await s.rateLimiter.take("tool", user);
      if (!tool) {
        throw new AppError(
          "invalid_input",
          `there is no tool named ${safeName(req.params.name)}: call tools/list`,
        );
      }
      const args = req.params.arguments ?? {};
      await s.secretGuard.check(ctx, args);
      const parsed = tool.input.safeParse(args);
      if (!parsed.success) throw new AppError("invalid_input", describeIssues(parsed.error));
      const progressToken = req.params._meta?.progressToken;
      const run: ToolRun = {
        s,
        ctx,
        signal: extra.signal,
        progress: async (done, total, message) => {
          if (progressToken === undefined) return;
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progressToken, progress: done, total, ...(message ? { message } : {}) },
          });
        },
        openUrl: async (url, message) => {
          if (!server.getClientCapabilities()?.elicitation?.url) return false;
          try {
            const answer = await server.elicitInput(
              { mode: "url", message, url, elicitationId: crypto.randomUUID() },
              // Sent on this call's own response stream: the session's standalone GET stream may
              // not be open (or may never be, for some clients).
              { signal: extra.signal, timeout: 120_000, relatedRequestId: extra.requestId },
            );
            return answer.action === "accept";
          } catch {
            return false;
          }
        },
        confirm: async (message) => {
          if (!server.getClientCapabilities()?.elicitation) return null;
          const caps = server.getClientCapabilities()?.elicitation as {
            form?: unknown;
            url?: unknown;
          };
          // A client declaring only URL mode cannot show a form.
          if (caps.url && !caps.form) return null;
          const answer = await server.elicitInput({
            mode: "form",
            message,
            requestedSchema: {
              type: "object",
              properties: {
                confirm: {
                  type: "boolean",
                  title: "Yes, run it now",
                  description: "Run sos report as root on this host",
                },
              },
              required: ["confirm"],
            },
          }, { signal: extra.signal, timeout: 300_000, relatedRequestId: extra.requestId }).catch(
            () => null,
          );
          if (!answer) return null;
          return answer.action === "accept" && answer.content?.confirm === true;
        },
      };
      const out = await tool.run(run, parsed.data);
      return okResult(out as Record<string, unknown>);
    } catch (err) {
      const appErr = toAppError(err);
      if (appErr.code === "unexpected_error") {
        s.log.error("tool_failed", {
          tool: tool?.name,
          request_id: ctx.requestId,
          user,
          error: err,
        });
      } else if (appErr.detail) {
        s.log.warn("tool_failed", {
          tool: tool?.name,
          request_id: ctx.requestId,
          code: appErr.code,
          detail: appErr.detail,
        });
      }
      return errorResult(appErr, ctx.requestId);
    }
  });
  return server;
}

function safeName(name: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? `'${name}'` : "like that";
}
