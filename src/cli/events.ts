/** `sosvault events`: review the security events; `events verify`: prove they were not edited. */
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
  if (args.length === 1 && args[0] === "verify") return await verifyCommand(s, flags, io);
  if (args.length > 0) {
    return io.usage(
      "events [verify] [--type T] [--user U] [--cr KEY] [--since ISO] [--limit N] [--json]",
    );
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
  const events = await s.events.entries({
    type: flags.type as EventType | undefined,
    user: flags.user,
    cr: flags.cr?.trim().toUpperCase(),
    since,
    limit: flags.limit ? Number(flags.limit) : undefined,
  });
  if (flags.json) {
    io.out(JSON.stringify({ events: events.map(({ seq: _, ...e }) => e) }));
    return 0;
  }
  for (const e of events) {
    io.out(
      [
        e.seq ? `#${e.seq}` : "#-",
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
        e.purpose ? `purpose=${e.purpose}` : "",
        `source=${e.source}`,
        e.request_id ? `request=${e.request_id}` : "",
      ].filter(Boolean).join("  "),
    );
  }
  if (events.length === 0) io.out("No security events match.");
  return 0;
}

/** Exit 0 when the chain is intact, 1 (with the first break named) when it is not. */
async function verifyCommand(s: Services, flags: CliFlags, io: CliIO): Promise<number> {
  const r = await s.events.verify();
  if (flags.json) {
    io.out(JSON.stringify(r));
    return r.ok ? 0 : 1;
  }
  const range = r.first_seq === null ? "no events" : `events ${r.first_seq} to ${r.last_seq}`;
  const pruned = r.checkpoint_seq > 0
    ? `, after the retention checkpoint at event ${r.checkpoint_seq}`
    : "";
  const legacy = r.unchained > 0
    ? ` (${r.unchained} older unchained event${r.unchained === 1 ? "" : "s"} not verifiable)`
    : "";
  if (r.ok) {
    io.out(`Event chain intact: ${r.verified} verified, ${range}${pruned}.${legacy}`);
    return 0;
  }
  const p = r.problem!;
  io.err(`sosvault: event chain BROKEN at event ${p.seq} (${p.kind}): ${p.message}.`);
  io.err(
    `Verified before the break: ${r.verified}${pruned}. Treat the log from event ${p.seq} on as untrusted; ` +
      "compare with an exported copy (SOSVAULT_EVENT_EXPORT) if there is one.",
  );
  return 1;
}
