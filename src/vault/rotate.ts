/**
 * Key rotation (SECURITY_TESTS T7, T8): re-encrypts every stored PAT envelope written under
 * TOKEN_VAULT_MASTER_KEY_PREVIOUS into the current key, one connection at a time.
 *
 * - Each connection is one atomic KV operation that checks the versionstamps of both the
 *   record and the envelope, so a revoke, expiry or verify that lands meanwhile wins and the
 *   connection is read again: a revoked connection never gets a ciphertext back.
 * - A crash at any point leaves every envelope under the current or the previous key, both of
 *   which the keyring opens; running again carries on where the last run stopped.
 * - The vault sentinel moves to the current key only once no envelope is left under any other
 *   key, so the previous key stays required (and accepted at start) until then.
 * - The PAT exists in clear only in this process's memory, between open and seal.
 */
import { KnownSecrets } from "../security/known_secrets.ts";
import { secretsOfConnection } from "../connections/service.ts";
import { ConfigError } from "../config.ts";
import type { Clock } from "../clock.ts";
import type { ConnectionStore } from "../connections/store.ts";
import { kvKeys } from "../kv_keys.ts";
import type { Logger, SecretRegistry } from "../log.ts";
import type { EventLog } from "../security/events.ts";
import { DecryptError, type Envelope, keyFor, type Keyring, open, patAad, seal } from "./cipher.ts";
import { resealSentinel } from "./sentinel.ts";
import { secretFingerprints } from "../connections/credential.ts";

export interface RotationDeps {
  kv: Deno.Kv;
  store: ConnectionStore;
  keyring: Keyring;
  clock: Clock;
  events: EventLog;
  log: Logger;
  secrets?: SecretRegistry;
}

export interface RotationReport {
  currentKid: string;
  previousKid: string;
  /** Re-encrypted under the current key by this run. */
  rotated: number;
  /** Already under the current key. */
  alreadyCurrent: number;
  /** Revoked or expired: no ciphertext to rotate (an expired one is closed now). */
  skipped: number;
  /** Connections whose envelope decrypts under neither key (ids only). */
  undecryptable: string[];
  /** Connections that kept changing under this run; running again settles them. */
  busy: string[];
  /** Whether this run moved the vault sentinel to the current key. */
  sentinelResealed: boolean;
  /** Every envelope and the sentinel are under the current key, and so is the event chain. */
  complete: boolean;
  /**
   * The security event chain re-signed with the current key, so it stays verifiable once the
   * previous key is gone. `broken`: the chain does not verify (see `events verify`); entries
   * from the break on keep their old signatures and do not hold the rotation up.
   */
  events: { resigned: number; left: number; broken: boolean };
}

type Outcome = "rotated" | "current" | "skipped" | "undecryptable" | "busy" | "gone";

const ATTEMPTS_PER_CONNECTION = 10;
/** Passes over envelopes still under another key (written meanwhile by an instance on the old key). */
const EXTRA_PASSES = 3;

export async function rotateKey(d: RotationDeps): Promise<RotationReport> {
  const current = d.keyring.current;
  const previous = d.keyring.previous;
  if (!previous) throw new ConfigError([previousMissing()]);
  if (previous.kid === current.kid) throw new ConfigError([previousSame()]);

  const outcomes = new Map<string, Outcome>();
  for await (const id of d.store.allIds()) outcomes.set(id, await rotateOne(d, id));

  for (let pass = 0; pass < EXTRA_PASSES; pass++) {
    const left: string[] = [];
    for await (const { id, kid } of d.store.allEnvelopeKids()) {
      if (kid !== current.kid && outcomes.get(id) !== "undecryptable") left.push(id);
    }
    if (left.length === 0) break;
    for (const id of left) outcomes.set(id, await rotateOne(d, id));
  }

  const count = (o: Outcome) => [...outcomes.values()].filter((x) => x === o).length;
  const idsOf = (o: Outcome) => [...outcomes].filter(([, x]) => x === o).map(([id]) => id).sort();
  const undecryptable = idsOf("undecryptable");
  const busy = idsOf("busy");

  let left = 0;
  for await (const { kid } of d.store.allEnvelopeKids()) if (kid !== current.kid) left++;
  const events = await d.events.resign();
  const eventsDone = events.left === 0 || events.broken;
  let sentinelResealed = false;
  if (left === 0 && undecryptable.length === 0 && busy.length === 0) {
    const sentinel = await d.kv.get<Envelope>(kvKeys.vaultSentinel());
    if (sentinel.value?.kid !== current.kid) {
      await resealSentinel(d.kv, d.keyring);
      sentinelResealed = true;
    }
  }
  const report: RotationReport = {
    currentKid: current.kid,
    previousKid: previous.kid,
    rotated: count("rotated"),
    alreadyCurrent: count("current"),
    skipped: count("skipped"),
    undecryptable,
    busy,
    sentinelResealed,
    complete: left === 0 && undecryptable.length === 0 && busy.length === 0 && eventsDone,
    events,
  };
  d.log.info("key_rotation", {
    current_kid: report.currentKid,
    previous_kid: report.previousKid,
    rotated: report.rotated,
    already_current: report.alreadyCurrent,
    skipped: report.skipped,
    undecryptable: undecryptable.length,
    busy: busy.length,
    events_resigned: events.resigned,
    events_left: events.left,
    event_chain_broken: events.broken,
    complete: report.complete,
  });
  return report;
}

async function rotateOne(d: RotationDeps, id: string): Promise<Outcome> {
  const current = d.keyring.current;
  for (let attempt = 0; attempt < ATTEMPTS_PER_CONNECTION; attempt++) {
    const { record, envelope } = await d.store.getWithEnvelope(id);
    if (!record || record.value.status !== "connected") {
      // Security: a ciphertext without a connected record is never used; it must not outlive
      // the key it was written with either.
      if (envelope && !await d.store.deleteOrphanEnvelope(id, record, envelope)) continue;
      if (envelope) d.log.warn("orphan_ciphertext_deleted", { connection_id: id });
      return record ? "skipped" : "gone";
    }
    const r = record.value;
    const now = d.clock();
    if (now.getTime() >= Date.parse(r.expires_at)) {
      if (!envelope || envelope.value.kid === current.kid) return "skipped";
      // Expired by the clock: closing it deletes the old key's ciphertext instead of
      // re-encrypting a credential nobody may use any more.
      if (!await d.store.close(record, "expired", now.toISOString())) continue;
      await d.events.record({
        type: "expire",
        outcome: "success",
        user: r.user,
        connection_id: id,
        request_id: "rotate-key",
        source: "cli",
      });
      return "skipped";
    }
    // A connected record without its ciphertext cannot be used (use() answers revoked).
    if (!envelope) return "skipped";
    if (envelope.value.kid === current.kid && r.key_version === current.kid) return "current";
    if (!keyFor(d.keyring, envelope.value.kid)) {
      d.log.error("decrypt_failed", {
        connection_id: id,
        reason: "unknown_key",
        kid: envelope.value.kid,
      });
      return "undecryptable";
    }
    const aad = patAad(r.user, id);
    let pat: string;
    try {
      pat = await open(d.keyring, envelope.value, aad);
    } catch (err) {
      if (!(err instanceof DecryptError)) throw err;
      d.log.error("decrypt_failed", { connection_id: id, reason: err.reason, kid: err.kid });
      return "undecryptable";
    }
    await d.events.record({
      type: "credential_use",
      outcome: "success",
      user: r.user,
      connection_id: id,
      request_id: "rotate-key",
      source: "cli",
      purpose: "rotate",
    });
    const release = d.secrets?.register(pat);
    let sealed;
    try {
      sealed = await seal(current, pat, aad);
    } finally {
      release?.();
    }
    // Cloud envelopes hold e-mail and token together; the fingerprints are of the token forms.
    const fps = await secretFingerprints(current, r.deployment, pat);
    const done = await d.store.rewrap(
      record,
      envelope,
      sealed,
      {
        key_version: current.kid,
        ...fps,
        known_secrets: KnownSecrets.fingerprint(current, secretsOfConnection(pat, r.deployment)),
      },
      d.clock().getTime(),
    );
    if (done) return "rotated";
  }
  return "busy";
}

function previousMissing(): string {
  return "TOKEN_VAULT_MASTER_KEY_PREVIOUS is not set: rotate-key re-encrypts what the previous " +
    "key wrote, so set TOKEN_VAULT_MASTER_KEY to the new key and TOKEN_VAULT_MASTER_KEY_PREVIOUS " +
    "to the old one, then run it again";
}

function previousSame(): string {
  return "TOKEN_VAULT_MASTER_KEY_PREVIOUS is the same key as TOKEN_VAULT_MASTER_KEY: set " +
    "TOKEN_VAULT_MASTER_KEY to the new key and TOKEN_VAULT_MASTER_KEY_PREVIOUS to the old one";
}

/** Refuses rotate-key before the vault is opened when there is no previous key to rotate from. */
export function requirePreviousKey(config: { previousMasterKey?: Uint8Array }): void {
  if (!config.previousMasterKey) throw new ConfigError([previousMissing()]);
}
