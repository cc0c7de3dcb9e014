/**
 * The connection store on Deno KV. A record and its secret are written and removed together
 * in one atomic operation, guarded by versionstamps, so no reader ever sees a connected record
 * without its ciphertext, and a revoke can never leave the ciphertext behind. Commits and
 * reads are retried when another process holds the KV file's write lock.
 */
import { kvKeys } from "../kv_keys.ts";
import { lockTolerantKv } from "../kv_retry.ts";
import { coalescingReader, type KvReader } from "../kv_reads.ts";
import type { Envelope } from "../vault/cipher.ts";
import type { KnownSecretFingerprint } from "../security/known_secrets.ts";
import type { Deployment, TokenKind } from "../jira/auth.ts";

export type ConnectionStatus = "connected" | "expired" | "revoked";

export interface ConnectionRecord {
  connection_id: string;
  user: string;
  base_url: string;
  jira_user: { name: string; display_name: string; key: string | null };
  status: ConnectionStatus;
  created_at: string;
  expires_at: string;
  last_verified_at: string;
  revoked_at: string | null;
  /** Which master key encrypts the PAT (the envelope's kid). */
  key_version: string;
  /** Keyed fingerprint of the PAT, to recognise it if it is ever pasted into a tool call. */
  pat_fp: string;
  /**
   * The connection's secrets as window fingerprints, to find them inside longer strings
   * (src/security/known_secrets.ts). Absent on connections made before it existed: those are
   * recognised by `pat_fp` as whole tokens only.
   */
  known_secrets?: KnownSecretFingerprint[];
  /** Absent on records written before Cloud support: those are Data Center. */
  deployment?: Deployment;
  /** Cloud: the masked e-mail (`a***@example.com`); the e-mail itself is only in the envelope. */
  email_hint?: string;
  /** Cloud: a scoped token goes through the gateway with `cloud_id`. */
  token_kind?: TokenKind;
  cloud_id?: string;
  /**
   * Cloud: keyed fingerprints of the other forms of the credential (`email:token` and its
   * base64), known secrets of the caller like `pat_fp` (which holds the API token's).
   */
  secret_fps?: string[];
}

export interface Versioned<T> {
  value: T;
  versionstamp: string;
}

/** Records of closed connections are kept this long for status answers and audits. */
const CLOSED_RECORD_TTL_MS = 30 * 86_400_000;

export class ConnectionStore {
  private kv: Deno.Kv;
  readonly #read: KvReader;

  constructor(kv: Deno.Kv) {
    this.kv = lockTolerantKv(kv);
    this.#read = coalescingReader(kv);
  }

  async create(record: ConnectionRecord, envelope: Envelope, nowMs: number): Promise<void> {
    const id = record.connection_id;
    const lifetime = Date.parse(record.expires_at) - nowMs;
    const res = await this.kv.atomic()
      .check({ key: kvKeys.connection(id), versionstamp: null })
      .check({ key: kvKeys.secret(id), versionstamp: null })
      .set(kvKeys.connection(id), record, { expireIn: lifetime + CLOSED_RECORD_TTL_MS })
      // expireIn only garbage-collects; expiry is enforced against the clock on every read.
      .set(kvKeys.secret(id), envelope, { expireIn: lifetime + 60_000 })
      .set(kvKeys.userConnection(record.user, id), true, {
        expireIn: lifetime + CLOSED_RECORD_TTL_MS,
      })
      .commit();
    if (!res.ok) throw new Error("connection id collision");
  }

  async get(id: string): Promise<Versioned<ConnectionRecord> | null> {
    const e = await this.#read<ConnectionRecord>(kvKeys.connection(id));
    return e.versionstamp ? { value: e.value!, versionstamp: e.versionstamp } : null;
  }

  async getEnvelope(id: string): Promise<Envelope | null> {
    return (await this.kv.get<Envelope>(kvKeys.secret(id))).value;
  }

  /** The record and its envelope read together (one consistent snapshot), for key rotation. */
  async getWithEnvelope(
    id: string,
  ): Promise<{ record: Versioned<ConnectionRecord> | null; envelope: Versioned<Envelope> | null }> {
    const [r, e] = await this.kv.getMany<[ConnectionRecord, Envelope]>([
      kvKeys.connection(id),
      kvKeys.secret(id),
    ]);
    return {
      record: r.versionstamp ? { value: r.value!, versionstamp: r.versionstamp } : null,
      envelope: e.versionstamp ? { value: e.value!, versionstamp: e.versionstamp } : null,
    };
  }

  /**
   * Replaces a connection's envelope (re-encrypted under another key) and the record's key
   * version and fingerprint in one atomic operation, only if neither changed since they were
   * read: a concurrent revoke, expiry or verify wins, and the caller re-reads.
   */
  async rewrap(
    current: Versioned<ConnectionRecord>,
    currentEnvelope: Versioned<Envelope>,
    envelope: Envelope,
    change: Pick<ConnectionRecord, "key_version" | "pat_fp" | "secret_fps" | "known_secrets">,
    nowMs: number,
  ): Promise<ConnectionRecord | null> {
    const id = current.value.connection_id;
    const next: ConnectionRecord = { ...current.value, ...change };
    const lifetime = Date.parse(next.expires_at) - nowMs;
    const res = await this.kv.atomic()
      .check({ key: kvKeys.connection(id), versionstamp: current.versionstamp })
      .check({ key: kvKeys.secret(id), versionstamp: currentEnvelope.versionstamp })
      .set(kvKeys.connection(id), next, { expireIn: lifetime + CLOSED_RECORD_TTL_MS })
      .set(kvKeys.secret(id), envelope, { expireIn: lifetime + 60_000 })
      .commit();
    return res.ok ? next : null;
  }

  /**
   * Deletes a ciphertext whose record is gone or closed, only if neither changed since read.
   * Such an orphan is never readable through the service; this keeps it from outliving a key.
   */
  async deleteOrphanEnvelope(
    id: string,
    record: Versioned<ConnectionRecord> | null,
    envelope: Versioned<Envelope>,
  ): Promise<boolean> {
    if (record?.value.status === "connected") return false;
    const res = await this.kv.atomic()
      .check({ key: kvKeys.connection(id), versionstamp: record?.versionstamp ?? null })
      .check({ key: kvKeys.secret(id), versionstamp: envelope.versionstamp })
      .delete(kvKeys.secret(id))
      .commit();
    return res.ok;
  }

  async listForUser(user: string): Promise<ConnectionRecord[]> {
    const ids: string[] = [];
    for await (const e of this.kv.list({ prefix: kvKeys.userConnections(user) })) {
      ids.push(String(e.key[2]));
    }
    const out: ConnectionRecord[] = [];
    // getMany takes at most 10 keys.
    for (let i = 0; i < ids.length; i += 10) {
      const entries = await this.kv.getMany<ConnectionRecord[]>(
        ids.slice(i, i + 10).map((id) => kvKeys.connection(id)),
      );
      for (const e of entries) if (e.value) out.push(e.value);
    }
    return out;
  }

  /**
   * Marks a connection revoked or expired and deletes its ciphertext in the same atomic
   * operation. Returns null when the record changed meanwhile (the caller re-reads).
   */
  async close(
    current: Versioned<ConnectionRecord>,
    status: "revoked" | "expired",
    atIso: string,
  ): Promise<ConnectionRecord | null> {
    const id = current.value.connection_id;
    const next: ConnectionRecord = {
      ...current.value,
      status,
      revoked_at: status === "revoked" ? atIso : current.value.revoked_at,
    };
    const res = await this.kv.atomic()
      .check({ key: kvKeys.connection(id), versionstamp: current.versionstamp })
      .set(kvKeys.connection(id), next, { expireIn: CLOSED_RECORD_TTL_MS })
      .delete(kvKeys.secret(id))
      .commit();
    return res.ok ? next : null;
  }

  /** Records a successful re-verification, unless the record changed meanwhile. */
  async markVerified(
    current: Versioned<ConnectionRecord>,
    atIso: string,
  ): Promise<ConnectionRecord | null> {
    const next = { ...current.value, last_verified_at: atIso };
    const res = await this.kv.atomic()
      .check({ key: kvKeys.connection(next.connection_id), versionstamp: current.versionstamp })
      .set(kvKeys.connection(next.connection_id), next, {
        expireIn: Date.parse(next.expires_at) - Date.parse(atIso) + CLOSED_RECORD_TTL_MS,
      })
      .commit();
    return res.ok ? next : null;
  }

  /** A stream of the record's values: the current one first, then every change (any instance). */
  watch(id: string): ReadableStream<[Deno.KvEntryMaybe<ConnectionRecord>]> {
    return this.kv.watch<[ConnectionRecord]>([kvKeys.connection(id)]);
  }

  /** Every connection id (for incident response and key rotation). */
  async *allIds(): AsyncGenerator<string> {
    for await (const e of this.kv.list({ prefix: kvKeys.allConnections() })) yield String(e.key[1]);
  }

  /** The id and key id of every stored envelope (for key rotation; never the ciphertext). */
  async *allEnvelopeKids(): AsyncGenerator<{ id: string; kid: string | undefined }> {
    for await (const e of this.kv.list<Envelope>({ prefix: kvKeys.allSecrets() })) {
      yield { id: String(e.key[1]), kid: e.value?.kid };
    }
  }
}
