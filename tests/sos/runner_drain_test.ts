/**
 * processRunner ends a run when its program exits even if a grandchild keeps the output pipes
 * open — as sos does when it hangs on TERM and sudo is KILLed: without this, the job (and the
 * host's sos lock) would stay "running" until that orphan ends, if ever.
 */
import assert from "node:assert/strict";
import { processRunner } from "../../src/sos/runner.ts";

Deno.test({
  name:
    "processRunner returns when the program exits, though an orphaned grandchild holds its pipes",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const result = await processRunner(
      ["sudo", "-n", "sh", "-c", "sleep 600 & echo orphan=$!"],
      { timeoutMs: 60_000, drainMs: 200 },
    );
    const pid = /orphan=(\d+)/.exec(result.output)?.[1];
    try {
      assert.equal(result.code, 0);
      assert.ok(pid, result.output);
      const alive = await new Deno.Command("sudo", { args: ["-n", "kill", "-0", pid] }).output();
      assert.equal(alive.code, 0, "the grandchild still runs and still holds the pipe");
    } finally {
      if (pid) await new Deno.Command("sudo", { args: ["-n", "kill", pid] }).output();
    }
  },
});
