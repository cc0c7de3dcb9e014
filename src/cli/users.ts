/** `sosvault users add|list|remove`. */
import type { Services } from "../services.ts";
import { AppError } from "../errors.ts";
import type { CliIO } from "./io.ts";

export async function usersCommand(
  s: Services,
  args: string[],
  flags: CliFlags,
  io: CliIO,
): Promise<number> {
  const [sub, name, ...rest] = args;
  if (rest.length > 0) return io.usage("users takes one NAME");
  switch (sub) {
    case "add": {
      if (!name) return io.usage("users add NAME [--admin] [--json]");
      const { user, token } = await s.users.add(name, flags.admin === true);
      if (flags.json) io.out(JSON.stringify({ user: user.name, token, admin: user.admin }));
      else {
        io.out(
          `Created ${
            user.admin ? "admin " : ""
          }user ${user.name}. Its token, shown only this once:`,
        );
        io.out(token);
        io.out("Send it as 'Authorization: Bearer <token>' to /api and /mcp.");
      }
      return 0;
    }
    case "list": {
      const users = await s.users.list();
      if (flags.json) {
        io.out(
          JSON.stringify({
            users: users.map((u) => ({ user: u.name, admin: u.admin, created_at: u.created_at })),
          }),
        );
      } else if (users.length === 0) io.out("No users yet: sosvault users add NAME");
      else {for (const u of users) {
          io.out(`${u.name}\t${u.admin ? "admin" : "user"}\t${u.created_at}`);
        }}
      return 0;
    }
    case "remove": {
      if (!name) return io.usage("users remove NAME");
      if (!await s.users.remove(name)) throw new AppError("not_found", `no user named ${name}`);
      const revoked = await s.connections.revokeAll({
        user: "operator",
        requestId: "cli",
        source: "cli",
      }, name);
      io.out(`Removed user ${name}; revoked ${revoked} connection${revoked === 1 ? "" : "s"}.`);
      return 0;
    }
    default:
      return io.usage(
        "users add NAME [--admin] [--json] | users list [--json] | users remove NAME",
      );
  }
}

export interface CliFlags {
  admin?: boolean;
  json?: boolean;
  user?: string;
  type?: string;
  since?: string;
  limit?: string;
  sudoers?: boolean;
  /** events: only gated actions under this change request. */
  cr?: string;
}
