/** `sosvault connections revoke-all [--user NAME]`: incident response. */
import type { Services } from "../services.ts";
import type { CliIO } from "./io.ts";
import type { CliFlags } from "./users.ts";

export async function connectionsCommand(
  s: Services,
  args: string[],
  flags: CliFlags,
  io: CliIO,
): Promise<number> {
  if (args[0] !== "revoke-all" || args.length > 1) {
    return io.usage("connections revoke-all [--user NAME]");
  }
  const n = await s.connections.revokeAll(
    { user: "operator", requestId: "cli", source: "cli" },
    flags.user,
  );
  io.out(`Revoked ${n} connection${n === 1 ? "" : "s"}${flags.user ? ` of ${flags.user}` : ""}.`);
  return 0;
}
