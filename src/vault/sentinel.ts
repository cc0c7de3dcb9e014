/**
 * A wrong master key must stop the server at start, not turn every request into garbage
 * (SECURITY_TESTS T6). The vault keeps one sentinel envelope; at start it must decrypt under
 * the current or the previous key.
 */
import { ConfigError } from "../config.ts";
import { kvKeys } from "../kv_keys.ts";
import { DecryptError, type Envelope, type Keyring, open, seal } from "./cipher.ts";

const AAD = new TextEncoder().encode("sosvault/sentinel/v1");
const PLAINTEXT = "sosvault vault sentinel";

export async function checkSentinel(kv: Deno.Kv, keyring: Keyring): Promise<void> {
  const entry = await kv.get<Envelope>(kvKeys.vaultSentinel());
  if (!entry.value) {
    await kv.atomic().check(entry).set(
      kvKeys.vaultSentinel(),
      await seal(keyring.current, PLAINTEXT, AAD),
    ).commit();
    return;
  }
  try {
    if (await open(keyring, entry.value, AAD) === PLAINTEXT) return;
  } catch (err) {
    if (!(err instanceof DecryptError)) throw err;
    if (err.reason === "unknown_key") {
      throw new ConfigError([
        `TOKEN_VAULT_MASTER_KEY is not the key this vault was written with (vault key id ${err.kid}, ` +
        `given key id ${keyring.current.kid}): start with the right key, or set ` +
        "TOKEN_VAULT_MASTER_KEY_PREVIOUS to the old key and run `sosvault rotate-key`",
      ]);
    }
  }
  throw new ConfigError([
    "the vault sentinel does not decrypt: the KV store was tampered with or is corrupt",
  ]);
}

/** After a completed rotation, the sentinel moves to the current key. */
export async function resealSentinel(kv: Deno.Kv, keyring: Keyring): Promise<void> {
  await kv.set(kvKeys.vaultSentinel(), await seal(keyring.current, PLAINTEXT, AAD));
}
