/**
 * Users in SOSVAULT_AUTH=oidc: they appear on their first valid token (no `users add`), and
 * `users remove NAME` puts them on a deny list in KV, which every request checks, so a
 * removed user's still-valid access tokens stop working at once on every instance.
 */
import { kvKeys } from "../kv_keys.ts";
import type { Clock } from "../clock.ts";

export interface OidcUser {
  name: string;
  admin: boolean;
  first_login_at: string;
}

export class OidcUsers {
  constructor(private kv: Deno.Kv, private clock: Clock) {}

  /** False for a blocked user. Otherwise records the user on first sight (one KV read when known). */
  async admit(name: string, admin: boolean): Promise<boolean> {
    const [denied, known] = await this.kv.getMany<[true, OidcUser]>([
      kvKeys.oidcDenied(name),
      kvKeys.oidcUser(name),
    ]);
    if (denied.value) return false;
    if (known.value && known.value.admin === admin) return true;
    const user: OidcUser = {
      name,
      admin,
      first_login_at: known.value?.first_login_at ?? this.clock().toISOString(),
    };
    // Checked against the deny entry too, so a login racing `users remove` cannot re-add.
    const res = await this.kv.atomic().check(denied).check(known).set(kvKeys.oidcUser(name), user)
      .commit();
    if (res.ok) return true;
    return !(await this.kv.get(kvKeys.oidcDenied(name))).value;
  }

  /** Blocks the name (known or not yet seen); true when the user had signed in before. */
  async block(name: string): Promise<boolean> {
    const known = await this.kv.get<OidcUser>(kvKeys.oidcUser(name));
    await this.kv.atomic().set(kvKeys.oidcDenied(name), true).delete(kvKeys.oidcUser(name))
      .commit();
    return known.value !== null;
  }

  /** Lifts a block; true when there was one. */
  async unblock(name: string): Promise<boolean> {
    const cur = await this.kv.get(kvKeys.oidcDenied(name));
    if (!cur.value) return false;
    await this.kv.delete(kvKeys.oidcDenied(name));
    return true;
  }

  async isBlocked(name: string): Promise<boolean> {
    return (await this.kv.get(kvKeys.oidcDenied(name))).value === true;
  }

  async list(): Promise<OidcUser[]> {
    const out: OidcUser[] = [];
    for await (const e of this.kv.list<OidcUser>({ prefix: kvKeys.allOidcUsers() })) {
      out.push(e.value);
    }
    return out;
  }
}
