/**
 * sosvault users (DESIGN.md section 3). A user's API token is shown once at creation and
 * stored only as its SHA-256: the token carries 256 random bits, so a fast hash is enough and
 * lets a request find its user with one KV read.
 */
import { createHash } from "node:crypto";
import { AppError } from "../errors.ts";
import { kvKeys } from "../kv_keys.ts";
import { coalescingReader, type KvReader } from "../kv_reads.ts";
import { newUserToken } from "../ids.ts";
import type { Clock } from "../clock.ts";

export interface User {
  name: string;
  admin: boolean;
  created_at: string;
  token_hash: string;
}

export const USER_NAME = /^[a-z][a-z0-9._-]{0,63}$/;
/** The single user of `SOSVAULT_AUTH=dev`. */
export const DEV_USER: Omit<User, "token_hash"> = { name: "dev", admin: true, created_at: "" };

/**
 * SHA-256 of a token, hex. Synchronous on purpose: it runs on every request, and for a short
 * input node:crypto's one-shot hash costs a fraction of an awaited crypto.subtle.digest.
 */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** How many token-hash → name pairs a store remembers (they are not secrets). */
const KNOWN_NAMES_MAX = 10_000;

export class UserStore {
  /**
   * Token hash → user name, learnt at a successful authentication. A hash never changes owner
   * (a new token is a new hash), so the name may be remembered; whether the user still exists
   * with that token is read from KV on every request all the same, so a removal made by any
   * process is seen on the very next call.
   */
  readonly #names = new Map<string, string>();

  readonly #read: KvReader;

  constructor(private kv: Deno.Kv, private clock: Clock) {
    this.#read = coalescingReader(kv);
  }

  /** Creates a user and returns its token, which is not stored and cannot be shown again. */
  async add(name: string, admin: boolean): Promise<{ user: User; token: string }> {
    if (!USER_NAME.test(name)) {
      throw new AppError(
        "invalid_input",
        "user names are 1-64 characters: a lower-case letter, then lower-case letters, digits, '.', '_' or '-'",
      );
    }
    const token = newUserToken();
    const user: User = {
      name,
      admin,
      created_at: this.clock().toISOString(),
      token_hash: hashToken(token),
    };
    const res = await this.kv.atomic()
      .check({ key: kvKeys.user(name), versionstamp: null })
      .set(kvKeys.user(name), user)
      .set(kvKeys.userToken(user.token_hash), name)
      .commit();
    if (!res.ok) throw new AppError("conflict", `a user named ${name} already exists`);
    return { user, token };
  }

  async list(): Promise<User[]> {
    const out: User[] = [];
    for await (const e of this.kv.list<User>({ prefix: kvKeys.allUsers() })) out.push(e.value);
    return out;
  }

  async get(name: string): Promise<User | null> {
    return (await this.#read<User>(kvKeys.user(name))).value;
  }

  /** Removes the user and its token; the caller revokes its connections. */
  async remove(name: string): Promise<boolean> {
    const cur = await this.kv.get<User>(kvKeys.user(name));
    if (!cur.value) return false;
    const res = await this.kv.atomic()
      .check(cur)
      .delete(kvKeys.user(name))
      .delete(kvKeys.userToken(cur.value.token_hash))
      .commit();
    return res.ok;
  }

  async authenticate(token: string): Promise<User | null> {
    if (!/^svt_[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
    const hash = hashToken(token);
    const known = this.#names.get(hash);
    if (known !== undefined) {
      // One KV read: the user's own record decides, as below.
      const user = await this.get(known);
      if (user && user.token_hash === hash) return user;
      this.#names.delete(hash);
      return null;
    }
    const name = (await this.#read<string>(kvKeys.userToken(hash))).value;
    if (!name) return null;
    const user = await this.get(name);
    // The index could point at a user whose token was replaced: the user's own hash decides.
    if (!user || user.token_hash !== hash) return null;
    if (this.#names.size >= KNOWN_NAMES_MAX) {
      this.#names.delete(this.#names.keys().next().value!);
    }
    this.#names.set(hash, name);
    return user;
  }
}
