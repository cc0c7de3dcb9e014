/**
 * MCP prompts and resources: the `engage_support` prompt and the `sosvault://workflow` guide
 * (src/mcp/workflow.ts). They need the same session, and so the same bearer token, as tools;
 * arguments pass the same tool budget and secret guard as tool arguments, since whatever a
 * prompt returns goes into the model's context.
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  ErrorCode,
  type GetPromptRequest,
  GetPromptRequestSchema,
  type GetPromptResult,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  McpError,
  type ReadResourceRequest,
  ReadResourceRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { AppError, toAppError } from "../errors.ts";
import { CONNECTION_ID, newRequestId } from "../ids.ts";
import { normaliseIssueKey } from "../jira/attachments.ts";
import type { Services } from "../services.ts";
import type { RequestContext } from "../context.ts";
import { engageSupportText, PROMPT_NAME, WORKFLOW_MARKDOWN, WORKFLOW_URI } from "./workflow.ts";

/** MCP's code for an unknown resource URI (specification, "Resources", error handling). */
const RESOURCE_NOT_FOUND = -32002;

const PROMPT = {
  name: PROMPT_NAME,
  title: "Engage support with a sosreport",
  description:
    "Walks through connecting Jira (the token is entered on sosvault's page, never in the chat), verifying the connection, generating a sosreport on this host, fetching it and attaching it to the given Jira issue.",
  arguments: [
    {
      name: "issue_key",
      description: "The Jira issue to attach the sosreport to, such as SUP-123.",
      required: true,
    },
    {
      name: "connection_id",
      description:
        "A Jira connection the user already has (jc_…, from the connect page); omit it to connect first. Never a token.",
      required: false,
    },
  ],
};

const RESOURCE = {
  uri: WORKFLOW_URI,
  name: "workflow",
  title: "Engaging support with sosvault",
  description:
    "The steps from connecting Jira to an attached sosreport, with the rules that keep the user's Jira token out of the conversation.",
  mimeType: "text/markdown",
};

export const PROMPT_CAPABILITIES = {
  prompts: { listChanged: false },
  resources: { listChanged: false },
} as const;

export function registerPromptsAndResources(server: Server, s: Services, user: string): void {
  server.setRequestHandler(ListPromptsRequestSchema, () => ({ prompts: [PROMPT] }));
  server.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: [RESOURCE] }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: [] }));

  server.setRequestHandler(
    GetPromptRequestSchema,
    async (req: GetPromptRequest): Promise<GetPromptResult> => {
      const ctx: RequestContext = { user, requestId: newRequestId(), source: "mcp" };
      return await asMcpError(s, ctx, async () => {
        await s.rateLimiter.take("tool", user);
        if (req.params.name !== PROMPT_NAME) {
          throw new AppError("invalid_input", `there is no prompt like that: call prompts/list`);
        }
        const args = req.params.arguments ?? {};
        // Security: a token pasted as an argument is refused (and recorded), never echoed.
        await s.secretGuard.check(ctx, args);
        const unknown = Object.keys(args).filter((k) => k !== "issue_key" && k !== "connection_id");
        if (unknown.length > 0) {
          throw new AppError("invalid_input", "engage_support takes issue_key and connection_id");
        }
        if (args.issue_key === undefined) {
          throw new AppError("invalid_input", "issue_key is required, such as SUP-123");
        }
        const issueKey = normaliseIssueKey(args.issue_key);
        const connectionId = args.connection_id || undefined;
        if (connectionId !== undefined && !CONNECTION_ID.test(connectionId)) {
          throw new AppError(
            "invalid_input",
            "connection_id must be the jc_… id shown on the connect page, never a token; omit it to connect first",
          );
        }
        return {
          description: `Attach a sosreport of this host to ${issueKey}`,
          messages: [{
            role: "user",
            content: { type: "text", text: engageSupportText(issueKey, connectionId) },
          }],
        };
      });
    },
  );

  server.setRequestHandler(ReadResourceRequestSchema, async (req: ReadResourceRequest) => {
    const ctx: RequestContext = { user, requestId: newRequestId(), source: "mcp" };
    return await asMcpError(s, ctx, async () => {
      await s.rateLimiter.take("tool", user);
      if (req.params.uri !== WORKFLOW_URI) {
        throw new McpError(RESOURCE_NOT_FOUND, "Resource not found: call resources/list");
      }
      return {
        contents: [{ uri: WORKFLOW_URI, mimeType: RESOURCE.mimeType, text: WORKFLOW_MARKDOWN }],
      };
    });
  });
}

/**
 * Prompts and resources have no error result like tools: a failure is a JSON-RPC error. Bad
 * arguments are InvalidParams, everything else keeps the contract's code in `data`.
 */
async function asMcpError<T>(
  s: Services,
  ctx: RequestContext,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof McpError) throw err;
    const e = toAppError(err);
    if (e.code === "unexpected_error") {
      s.log.error("prompt_failed", { request_id: ctx.requestId, user: ctx.user, error: err });
    }
    const input = e.code === "invalid_input" || e.code === "secret_rejected";
    throw new McpError(input ? ErrorCode.InvalidParams : ErrorCode.InternalError, e.message, {
      code: e.code,
      request_id: ctx.requestId,
      ...(e.retryAfter !== undefined ? { retry_after: e.retryAfter } : {}),
    });
  }
}
