/**
 * What a tool is: its contract (name, description, strict input schema, output schema, honest
 * annotations) and a `run` that calls services. Tools hold no rules of their own.
 */
import type { z } from "zod";
import type { RequestContext } from "../context.ts";
import type { Services } from "../services.ts";

export interface ToolAnnotations {
  title: string;
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

export interface ToolRun {
  s: Services;
  ctx: RequestContext;
  /** Reports progress when the client sent a progress token; otherwise a no-op. */
  progress(done: number, total: number, message?: string): Promise<void>;
  /** Aborted when the client cancels the call or the session closes. */
  signal: AbortSignal;
  /** Asks the client to open a URL (URL-mode elicitation) when it supports that; false otherwise. */
  openUrl(url: string, message: string): Promise<boolean>;
  /** Asks the human to confirm through a client form: true/false, or null when unsupported. */
  confirm(message: string): Promise<boolean | null>;
}

// deno-lint-ignore no-explicit-any
export interface ToolDef<I extends z.ZodType = any, O extends z.ZodType = any> {
  name: string;
  description: string;
  input: I;
  output: O;
  annotations: ToolAnnotations;
  run(t: ToolRun, args: z.infer<I>): Promise<z.infer<O>>;
}

export function defineTool<I extends z.ZodType, O extends z.ZodType>(
  def: ToolDef<I, O>,
): ToolDef<I, O> {
  return def;
}
