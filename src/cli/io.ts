/** Where CLI commands write; injected so commands can be tested without a terminal. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  /** Prints a usage message and returns the usage exit code. */
  usage(message: string): number;
}

export const EXIT_USAGE = 64;
export const EXIT_CONFIG = 78;

export const consoleIO: CliIO = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  usage: (message) => {
    console.error(`usage: sosvault ${message}`);
    return EXIT_USAGE;
  },
};
