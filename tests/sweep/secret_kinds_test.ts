/**
 * The sweep (canary_sweep_test.ts) looks for every canary in canaries.txt. This proves the
 * suite registered canaries of each secret kind issue 15 added — Vault client and wrapping
 * tokens, AppRole secret IDs, master keys served by Vault — next to the PATs, so the sweep
 * covers them too.
 */
import assert from "node:assert/strict";
import { OUT_DIR } from "../helpers/paths.ts";

Deno.test("the suite registered canaries of every secret kind: PATs, Vault tokens, secret IDs, Vault-served keys", async () => {
  const canaries = (await Deno.readTextFile(`${OUT_DIR}/canaries.txt`)).split("\n").filter(Boolean);
  const kinds = {
    vault_token: canaries.filter((c) => /^hvs\.[A-Za-z0-9]{20,}$/.test(c)).length,
    secret_id:
      canaries.filter((c) =>
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(c)
      ).length,
    master_key: canaries.filter((c) => /^[0-9a-f]{64}$/.test(c)).length,
    pat: canaries.filter((c) => /^[A-Za-z0-9+/]{43}[A-Za-z0-9+/=]$/.test(c)).length,
  };
  for (const [kind, n] of Object.entries(kinds)) assert.ok(n >= 2, `${kind}: ${n} canaries`);
});
