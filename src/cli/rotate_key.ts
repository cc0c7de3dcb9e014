/**
 * `sosvault rotate-key`: re-encrypts every stored PAT under TOKEN_VAULT_MASTER_KEY, reading
 * what TOKEN_VAULT_MASTER_KEY_PREVIOUS wrote. Safe to run while servers keep serving, safe to
 * interrupt, and safe to run again.
 */
import { ConnectionStore } from "../connections/store.ts";
import type { Services } from "../services.ts";
import { rotateKey } from "../vault/rotate.ts";
import type { CliIO } from "./io.ts";

/** What a rotation needs from the running services (the CLI and the tests build it alike). */
export function rotationDeps(s: Services) {
  return {
    kv: s.kv,
    store: new ConnectionStore(s.kv),
    keyring: s.keyring,
    clock: s.clock,
    events: s.events,
    log: s.log,
    secrets: s.secrets,
  };
}

export async function rotateKeyCommand(s: Services, args: string[], io: CliIO): Promise<number> {
  if (args.length > 0) return io.usage("rotate-key (takes no arguments)");
  const r = await rotateKey(rotationDeps(s));
  const counts = `rotated ${r.rotated}, already current ${r.alreadyCurrent}, ` +
    `skipped (revoked/expired) ${r.skipped}`;
  if (r.undecryptable.length > 0) {
    // Security: only ids; never anything of the envelope.
    io.err(
      `sosvault: ${r.undecryptable.length} stored PAT${
        r.undecryptable.length === 1 ? "" : "s"
      } decrypt under neither the current nor the previous key (tampered, or written with ` +
        `another key): ${r.undecryptable.join(", ")}. Revoke ${
          r.undecryptable.length === 1 ? "that connection" : "those connections"
        } and run rotate-key again; until then keep TOKEN_VAULT_MASTER_KEY_PREVIOUS set.`,
    );
  }
  if (r.busy.length > 0) {
    io.err(
      `sosvault: ${r.busy.length} connection${r.busy.length === 1 ? "" : "s"} kept changing ` +
        `during the rotation: ${r.busy.join(", ")}. Run rotate-key again.`,
    );
  }
  if (r.events.broken) {
    io.err(
      "sosvault: the security event chain does not verify, so events from its first break on " +
        "were not re-signed: run `sosvault events verify` and keep its report for the incident.",
    );
  }
  if (!r.complete) {
    io.out(`Rotation to key ${r.currentKid} is not complete: ${counts}.`);
    return 1;
  }
  if (r.rotated === 0 && !r.sentinelResealed) {
    io.out(
      `Nothing to rotate: every stored PAT is already under the current key ${r.currentKid} ` +
        `(${counts}).`,
    );
  } else {
    io.out(`Rotated from key ${r.previousKid} to ${r.currentKid}: ${counts}.`);
  }
  io.out(
    "TOKEN_VAULT_MASTER_KEY_PREVIOUS is no longer needed: remove it from every instance's " +
      "environment and restart them.",
  );
  return 0;
}
