/** `sosvault events`: review the security events. */
import { AppError } from "../errors.ts";
import { EVENT_TYPES, type EventType } from "../security/events.ts";
import type { Services } from "../services.ts";
import type { CliIO } from "./io.ts";
import type { CliFlags } from "./users.ts";

export async function eventsCommand(
  s: Services,
  args: string[],
  flags: CliFlags,
  io: CliIO,
): Promise<number> {
  if (args.length > 0) {
    return io.usage("events [--type T] [--user U] [--cr KEY] [--since ISO] [--limit N] [--json]");
  }
  if (flags.type && !EVENT_TYPES.includes(flags.type as EventType)) {
    throw new AppError("invalid_input", `--type must be one of: ${EVENT_TYPES.join(", ")}`);
  }
  const since = flags.since ? new Date(flags.since) : undefined;
  if (since && Number.isNaN(since.getTime())) {
    throw new AppError("invalid_input", "--since must be an ISO-8601 time");
  }
  if (flags.limit && !/^\d{1,4}$/.test(flags.limit)) {
    throw new AppError("invalid_input", "--limit must be 1 to 1000");
  }
  const events = await s.events.list({
    type: flags.type as EventType | undefined,
    user: flags.user,
    cr: flags.cr?.trim().toUpperCase(),
    since,
    limit: flags.limit ? Number(flags.limit) : undefined,
  });
  if (flags.json) {
    io.out(JSON.stringify({ events }));
    return 0;
  }
  for (const e of events) {
    io.out(
      [
        e.time,
        e.type,
        e.outcome,
        `user=${e.user}`,
        e.connection_id ? `connection=${e.connection_id}` : "",
        e.issue_key ? `issue=${e.issue_key}` : "",
        e.change_request ? `cr=${e.change_request}` : "",
        e.approver ? `approver=${e.approver}` : "",
        e.signature_fingerprint ? `signature=${e.signature_fingerprint.slice(0, 16)}` : "",
        e.error_code ? `code=${e.error_code}` : "",
        `source=${e.source}`,
        e.request_id ? `request=${e.request_id}` : "",
      ].filter(Boolean).join("  "),
    );
  }
  if (events.length === 0) io.out("No security events match.");
  return 0;
}
