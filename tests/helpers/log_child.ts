/**
 * A tiny program for tests/log_pipeline_test.ts: wires the log pipeline as main.ts does,
 * registers the canary given as the first argument as a live secret, then fails in the way
 * the second argument names. Its stderr must show the failure, masked.
 */
import { captureProcessOutput, createLogger, SecretRegistry, stderrSink } from "../../src/log.ts";

const [canary, how] = Deno.args;
const secrets = new SecretRegistry();
captureProcessOutput(createLogger(stderrSink, { secrets }), secrets);
secrets.register(canary);
if (how === "console") {
  console.log("token in flight", canary, { nested: { note: `x ${canary} y` } });
  console.error(new Error(`failed with ${canary}`));
  console.warn({ Authorization: canary, list: [canary] });
} else if (how === "rejection") {
  Promise.reject(new Error(`rejected: vault said ${canary}`));
  await new Promise((r) => setTimeout(r, 20));
  console.log("still serving");
} else {
  setTimeout(() => {
    throw new Error(`uncaught: ${canary}`);
  }, 0);
}
