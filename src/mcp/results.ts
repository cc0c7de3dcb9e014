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
  const out: string[] = [];
  pushLines(out, value, prefix);
  return out;
}

// One array filled in place: this renders every tool result, and a nested flatMap allocates
// an array per leaf.
function pushLines(out: string[], value: unknown, prefix: string) {
  if (Array.isArray(value)) {
    if (value.length === 0) out.push(`${prefix}: []`);
    for (let i = 0; i < value.length; i++) {
      pushLines(out, value[i], prefix ? `${prefix}.${i}` : String(i));
    }
    return;
  }
  if (value !== null && typeof value === "object") {
    let empty = true;
    for (const k in value) {
      if (!Object.hasOwn(value, k)) continue;
      empty = false;
      pushLines(out, (value as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k);
    }
    if (empty) out.push(`${prefix}: {}`);
    return;
  }
  const text = typeof value === "string"
    ? (value.includes("\n") ? value.replace(/\r?\n/g, "\\n") : value)
    : String(value);
  out.push(`${prefix}: ${text}`);
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
