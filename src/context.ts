import type { EventSource } from "./security/events.ts";

/** Who is asking, and through which adapter: passed from HTTP and MCP into every service call. */
export interface RequestContext {
  user: string;
  requestId: string;
  source: EventSource;
}
