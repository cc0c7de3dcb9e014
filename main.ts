/**
 * sosvault — composition root. Parses the configuration once, builds the services, then serves
 * or runs one CLI command (DESIGN.md section 3).
 */
import { parseArgs } from "node:util";
import { ConfigError, parseConfig, readEnv, SECRET_ENV_VARS } from "./src/config.ts";
import { AppError } from "./src/errors.ts";
import { openServices } from "./src/runtime.ts";
import { serve } from "./src/server.ts";
import { consoleIO, EXIT_CONFIG, EXIT_USAGE } from "./src/cli/io.ts";
import { type CliFlags, usersCommand } from "./src/cli/users.ts";
import { connectionsCommand } from "./src/cli/connections.ts";
import { eventsCommand } from "./src/cli/events.ts";
import { doctorCommand } from "./src/cli/doctor.ts";
import { rotateKeyCommand } from "./src/cli/rotate_key.ts";
import { requirePreviousKey } from "./src/vault/rotate.ts";
import { locateCat, locateSos } from "./src/sos/locate.ts";
import { VERSION } from "./src/version.ts";
import { configuredPaths, pathPermissionProblems } from "./src/path_permissions.ts";
import {
  captureProcessOutput,
  createLogger,
  redactText,
  SecretRegistry,
  stderrSink,
} from "./src/log.ts";

/** One registry of live secrets and one log sink for the whole process (src/log.ts). */
const secrets = new SecretRegistry();
const processLog = createLogger(stderrSink, { secrets });
import {
  APPROVAL_USAGE,
  approvalCommand,
  type ApprovalFlags,
  terminalPassphrase,
} from "./src/cli/approval.ts";
import { systemClock } from "./src/clock.ts";

const HELP =
  `sosvault ${VERSION} — attach sosreports to Jira with your own token, kept out of the model

usage:
  sosvault [serve]
  sosvault users add NAME [--admin] [--json]
  sosvault users list [--json]
  sosvault users remove NAME
  sosvault connections revoke-all [--user NAME]
  sosvault rotate-key                          # re-encrypt stored PATs under the current key
  sosvault events [--type T] [--user U] [--cr KEY] [--since ISO] [--limit N] [--json]
  sosvault events verify [--json]              # exit 1 on the first edited/missing/moved event
  sosvault doctor [--user NAME] [--sudoers]   # check this host; --sudoers prints only the rules
  sosvault ${APPROVAL_USAGE}

Configuration comes from the environment; see the README.`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        admin: { type: "boolean" },
        json: { type: "boolean" },
        user: { type: "string" },
        type: { type: "string" },
        since: { type: "string" },
        limit: { type: "string" },
        sudoers: { type: "boolean" },
        cr: { type: "string" },
        name: { type: "string" },
        out: { type: "string" },
        "passphrase-file": { type: "string" },
        key: { type: "string" },
        cert: { type: "string" },
        host: { type: "string" },
        expires: { type: "string" },
        approver: { type: "string" },
        status: { type: "string" },
        signature: { type: "string" },
        "trust-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
  } catch (err) {
    consoleIO.err(`sosvault: ${(err as Error).message}\n\n${HELP}`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === "help") {
    consoleIO.out(HELP);
    return 0;
  }
  if (values.version) {
    consoleIO.out(VERSION);
    return 0;
  }
  const [command = "serve", ...args] = positionals;
  if (
    !["serve", "users", "connections", "events", "rotate-key", "doctor", "approval"].includes(
      command,
    )
  ) {
    consoleIO.err(`sosvault: unknown command '${command}'\n\n${HELP}`);
    return EXIT_USAGE;
  }

  const flags = values as CliFlags;
  const doctorDeps = async () => ({
    sosPath: await locateSos(),
    catPath: await locateCat(),
    user: flags.user,
    sudoersOnly: flags.sudoers === true,
  });
  // The sudoers rules depend only on this host, so printing them needs no key or vault.
  if (command === "doctor" && flags.sudoers) {
    return await doctorCommand(null, consoleIO, await doctorDeps());
  }

  // Approver keys and signatures are the approver's business: no server key or KV involved.
  if (command === "approval") {
    return await approvalCommand(args, values as ApprovalFlags, consoleIO, {
      clock: systemClock,
      hostname: () => Deno.hostname(),
      promptPassphrase: terminalPassphrase,
    });
  }

  const env = readEnv();
  // Security: the master key leaves the environment at once, so no child process inherits it.
  for (const name of SECRET_ENV_VARS) Deno.env.delete(name);
  const config = parseConfig(env);
  // A path outside Deno's permissions is a configuration error, said before anything opens it.
  const pathProblems = pathPermissionProblems(
    configuredPaths(config, command === "serve" ? "serve" : "cli"),
  );
  if (pathProblems.length > 0) throw new ConfigError(pathProblems);
  if (command === "rotate-key") requirePreviousKey(config);
  const services = await openServices(config, { secrets });
  try {
    switch (command) {
      case "serve": {
        if (args.length > 0) return consoleIO.usage("serve (takes no arguments)");
        const server = serve(services);
        const stop = () => void server.shutdown();
        Deno.addSignalListener("SIGINT", stop);
        Deno.addSignalListener("SIGTERM", stop);
        await server.finished;
        return 0;
      }
      case "users":
        return await usersCommand(services, args, flags, consoleIO);
      case "connections":
        return await connectionsCommand(services, args, flags, consoleIO);
      case "events":
        return await eventsCommand(services, args, flags, consoleIO);
      case "rotate-key":
        return await rotateKeyCommand(services, args, consoleIO);
      case "doctor":
        if (args.length > 0) return consoleIO.usage("doctor [--user NAME] [--sudoers]");
        return await doctorCommand(services, consoleIO, await doctorDeps());
    }
    return EXIT_USAGE;
  } finally {
    services.kv.close();
  }
}

if (import.meta.main) {
  // Security: console.* and uncaught errors go through the same masking as every log line.
  captureProcessOutput(processLog, secrets);
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    if (err instanceof ConfigError) {
      consoleIO.err(`sosvault: ${err.message}`);
      Deno.exit(EXIT_CONFIG);
    }
    if (err instanceof AppError) {
      consoleIO.err(`sosvault: ${err.message}`);
      Deno.exit(err.code === "invalid_input" ? EXIT_USAGE : 1);
    }
    consoleIO.err(
      `sosvault: unexpected failure: ${
        redactText(String((err as Error)?.message ?? err), secrets)
      }`,
    );
    Deno.exit(1);
  }
}
