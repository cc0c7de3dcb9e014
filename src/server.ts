/** Serves the app until the signal aborts; logs the bound address (port 0 picks a free one). */
import { createApp } from "./app.ts";
import { McpSessions } from "./mcp/sessions.ts";
import { sweepArtifacts } from "./sos/janitor.ts";
import type { Services } from "./services.ts";

export interface RunningServer {
  url: string;
  port: number;
  finished: Promise<void>;
  sessions: McpSessions;
  shutdown(): Promise<void>;
}

export function serve(s: Services): RunningServer {
  const mcp = new McpSessions(s);
  const app = createApp(s, mcp);
  const { hostname, port } = s.config.listen;
  const server = Deno.serve({
    hostname,
    port,
    onListen: () => {},
    onError: (err) => {
      s.log.error("unhandled_server_error", { error: err });
      return new Response(
        JSON.stringify({
          error: { code: "unexpected_error", message: "internal error", request_id: "req_unknown" },
        }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    },
  }, app.fetch);
  const bound = server.addr as Deno.NetAddr;
  const host = bound.hostname.includes(":") ? `[${bound.hostname}]` : bound.hostname;
  const url = `http://${host}:${bound.port}`;
  // With port 0 (tests, ad-hoc runs) the default public URL must name the port actually bound.
  if (!s.config.publicUrlExplicit) s.config.publicUrl = url;
  // Fetched sosreport copies are deleted once older than SOSVAULT_ARTIFACT_TTL_SECONDS.
  const ttlMs = s.config.artifactTtlSeconds * 1000;
  const sweep = () =>
    void sweepArtifacts(s.config.artifactDir, ttlMs, s.clock, s.log).catch(() => {});
  sweep();
  const janitor = setInterval(sweep, Math.min(ttlMs / 4, 3_600_000));
  Deno.unrefTimer(janitor);
  // Events past the retention period go behind a signed checkpoint (security/events.ts).
  const prune = () =>
    void s.events.prune().catch((err) => s.log.error("event_prune_failed", { error: err }));
  prune();
  const pruner = setInterval(prune, 3_600_000);
  Deno.unrefTimer(pruner);
  // Fetched in the background: the server starts (and answers 503 on /mcp) while the IdP is down.
  if (s.oidc) void s.oidc.keys.start();
  s.log.info("listening", {
    url,
    port: bound.port,
    auth: s.config.auth,
    mock_mode: s.config.mockMode,
  });
  return {
    url,
    port: bound.port,
    finished: server.finished,
    sessions: mcp,
    shutdown: async () => {
      clearInterval(janitor);
      clearInterval(pruner);
      await mcp.closeAll();
      await server.shutdown();
    },
  };
}
