import { redactText } from "../log.ts";

/** Where CLI commands write; injected so commands can be tested without a terminal. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  /** Prints a usage message and returns the usage exit code. */
  usage(message: string): number;
}

export const EXIT_USAGE = 64;
export const EXIT_CONFIG = 78;

const enc = new TextEncoder();
/**
 * The terminal, written directly rather than through `console.*` (which main.ts routes into
 * the log pipeline): stdout is the command's answer (`users add` prints the new token there,
 * once, on purpose); stderr is masked like a log line.
 */
export const consoleIO: CliIO = {
  out: (line) => void Deno.stdout.writeSync(enc.encode(line + "\n")),
  err: (line) => void Deno.stderr.writeSync(enc.encode(redactText(line) + "\n")),
  usage: (message) => {
    consoleIO.err(`usage: sosvault ${message}`);
    return EXIT_USAGE;
  },
};
