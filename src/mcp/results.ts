/** The one mapping from results and the error family to MCP tool results. */
import { type AppError, errorBody } from "../errors.ts";

export interface ToolResult {
  [key: string]: unknown;
  content: Array<{ type: "text"; text: string }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

/**
 * Deterministic `key: value` lines for clients that show only text: nested keys joined by
 * dots, array items by index, in the structured object's own order.
 */
export function keyValueLines(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${prefix}: []`];
    return value.flatMap((v, i) => keyValueLines(v, prefix ? `${prefix}.${i}` : String(i)));
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return [`${prefix}: {}`];
    return entries.flatMap(([k, v]) => keyValueLines(v, prefix ? `${prefix}.${k}` : k));
  }
  const text = typeof value === "string" ? value.replace(/\r?\n/g, "\\n") : String(value);
  return [`${prefix}: ${text}`];
}

export function okResult(structured: Record<string, unknown>): ToolResult {
  return {
    structuredContent: structured,
    content: [{ type: "text", text: keyValueLines(structured).join("\n") }],
  };
}

/** Tool errors are results (the model can act on them), carrying the contract's error shape. */
export function errorResult(err: AppError, requestId: string): ToolResult {
  return {
    isError: true,
    content: [{ type: "text", text: JSON.stringify(errorBody(err, requestId)) }],
  };
}
