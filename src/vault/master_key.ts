import { ConfigError, type MasterKeySource, parseMasterKey } from "../config.ts";

const SHAPE = "32 random bytes as base64 (44 characters) or hex (64 characters)";

/**
 * Turns the configured key source into key bytes. A dev key is generated once, beside the KV
 * file, with mode 0600, so `deno task dev` works on a fresh machine without setup.
 */
export async function resolveMasterKey(source: MasterKeySource): Promise<Uint8Array> {
  switch (source.kind) {
    case "vault":
      // Fetched with its token's life cycle by runtime.ts (vault/vault_source.ts).
      throw new Error("a Vault key source is opened by openServices, not resolveMasterKey");
    case "value":
      return source.bytes;
    case "file": {
      let text: string;
      try {
        text = await Deno.readTextFile(source.path);
      } catch (err) {
        throw new ConfigError([
          `TOKEN_VAULT_MASTER_KEY_FILE cannot be read (${
            (err as Error).name
          }): check the path and its permissions`,
        ]);
      }
      const bytes = parseMasterKey(text);
      if (!bytes) {
        throw new ConfigError([
          `TOKEN_VAULT_MASTER_KEY_FILE does not hold a valid key: it must hold ${SHAPE}`,
        ]);
      }
      return bytes;
    }
    case "dev-generated":
      return await loadOrCreateDevKey(source.path);
  }
}

async function loadOrCreateDevKey(path: string): Promise<Uint8Array> {
  try {
    const existing = parseMasterKey(await Deno.readTextFile(path));
    if (!existing) {
      throw new ConfigError([
        `the dev master key file ${path} is malformed: delete it to generate a new one`,
      ]);
    }
    return existing;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const dir = path.slice(0, path.lastIndexOf("/")) || ".";
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  // createNew: two dev servers starting at once must not overwrite each other's key.
  try {
    await Deno.writeTextFile(path, hex + "\n", { mode: 0o600, createNew: true });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return loadOrCreateDevKey(path);
    throw err;
  }
  await Deno.chmod(path, 0o600);
  return bytes;
}
