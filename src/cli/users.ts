/** `sosvault users add|list|remove`. */
import type { Services } from "../services.ts";
import { AppError } from "../errors.ts";
import type { CliIO } from "./io.ts";
import type { OidcUsers } from "../auth/oidc_users.ts";
import { USER_NAME } from "../users/users.ts";

export async function usersCommand(
  s: Services,
  args: string[],
  flags: CliFlags,
  io: CliIO,
): Promise<number> {
  const [sub, name, ...rest] = args;
  if (rest.length > 0) return io.usage("users takes one NAME");
  if (s.oidc) return await oidcUsersCommand(s, s.oidc.users, sub, name, flags, io);
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

/**
 * In SOSVAULT_AUTH=oidc users come from the identity provider: there is no token to print,
 * `remove` blocks the name (and revokes its connections) and `add` lifts such a block.
 */
async function oidcUsersCommand(
  s: Services,
  users: OidcUsers,
  sub: string | undefined,
  name: string | undefined,
  flags: CliFlags,
  io: CliIO,
): Promise<number> {
  if ((sub === "add" || sub === "remove") && (!name || !USER_NAME.test(name))) {
    return io.usage(`users ${sub} NAME (a sosvault user name)`);
  }
  switch (sub) {
    case "add": {
      const lifted = await users.unblock(name!);
      io.out(
        lifted
          ? `${name} may sign in again.`
          : `${name} needs no adding: users appear when they first sign in with the identity provider.`,
      );
      return 0;
    }
    case "list": {
      const list = await users.list();
      if (flags.json) {
        io.out(JSON.stringify({
          users: list.map((u) => ({ user: u.name, admin: u.admin, created_at: u.first_login_at })),
        }));
      } else if (list.length === 0) io.out("No one has signed in yet.");
      else {for (const u of list) {
          io.out(`${u.name}\t${u.admin ? "admin" : "user"}\t${u.first_login_at}`);
        }}
      return 0;
    }
    case "remove": {
      await users.block(name!);
      const revoked = await s.connections.revokeAll({
        user: "operator",
        requestId: "cli",
        source: "cli",
      }, name!);
      io.out(
        `Blocked ${name} (their access tokens are refused from now on); revoked ${revoked} connection${
          revoked === 1 ? "" : "s"
        }. 'sosvault users add ${name}' lifts the block.`,
      );
      return 0;
    }
    default:
      return io.usage("users add NAME | users list [--json] | users remove NAME");
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
