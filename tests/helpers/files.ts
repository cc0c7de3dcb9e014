/** File helpers for tests. */

/** Random bytes of any length (getRandomValues gives at most 64 KiB per call). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  }
  return out;
}

/**
 * Makes a symlink with `ln -s`: Deno.symlink needs unscoped read and write permissions, which the
 * test task deliberately does not grant.
 */
export async function symlink(target: string, path: string): Promise<void> {
  const { code } = await new Deno.Command("ln", { args: ["-s", target, path] }).output();
  if (code !== 0) throw new Error(`ln -s failed for ${path}`);
}
