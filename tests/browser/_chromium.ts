/**
 * Debian's headless Chromium for the browser tests, driven by playwright-core: whether it is
 * installed (absent: the tests skip, but in CI they fail instead), and a fresh profile per
 * launch so no test sees another's cookies and each can search its own profile for leaks.
 */
import type { BrowserContext } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function chromiumInstalled(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Whether the browser tests can run here; throws in CI when they cannot. */
export function requireChromium(what: string): boolean {
  if (chromiumInstalled()) return true;
  const message =
    `${CHROMIUM} is not installed: ${what} needs Debian's chromium (apt-get install -y chromium)`;
  if (Deno.env.get("CI")) throw new Error(message);
  console.warn(`SKIPPED: ${message}`);
  return false;
}

async function loadPlaywright() {
  // playwright-core's is-wsl dependency probes /proc/sys/fs/binfmt_misc/WSLInterop with
  // existsSync at import; Deno guards /proc behind --allow-all even for a stat. The package's
  // own switch defers that probe to a function that is only used to open a desktop browser,
  // which these tests never do; so they need no --allow-all.
  Deno.env.set("__IS_WSL_TEST__", "1");
  return await import("playwright-core");
}

export interface Browser {
  context: BrowserContext;
  /** The profile directory, for a test that checks what the browser kept. */
  profile: string;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Starts Chromium on a new, empty profile. */
export async function launchChromium(
  options: { viewport?: { width: number; height: number } } = {},
): Promise<Browser> {
  const { chromium } = await loadPlaywright();
  const profile = await Deno.makeTempDir({ prefix: "sosvault-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    env: { HOME: profile, PATH: "/usr/bin:/bin" },
    timeout: 30_000,
    ...options,
  });
  return {
    context,
    profile,
    close: async () => {
      await context.close().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}
