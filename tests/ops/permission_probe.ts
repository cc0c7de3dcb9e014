/**
 * Prints, as JSON, what Deno grants this process for a fixed list of candidates (see
 * tests/ops/compile_test.ts). Asks only; touches nothing.
 */
import { ENV_VARS } from "../../src/config.ts";

const candidates: Deno.PermissionDescriptor[] = [
  ...[...ENV_VARS, "PATH", "HOME", "AWS_SECRET_ACCESS_KEY"].map((variable) => ({
    name: "env" as const,
    variable,
  })),
  ...[
    ".data",
    ".data/x.kv",
    "/var/lib/sosvault",
    "/etc/sosvault",
    "/run/credentials",
    "/tmp/sosvault",
    "/var/tmp",
    "/usr/bin/sos",
    "/usr/sbin/sos",
    "/bin/cat",
    "/etc/shadow",
    "/etc",
    "/",
    "src",
  ].flatMap(
    (path) => [{ name: "read" as const, path }, { name: "write" as const, path }],
  ),
  ...["169.254.169.254", "jira.example.com", "127.0.0.1:8080", "[::1]:443"].map((host) => ({
    name: "net" as const,
    host,
  })),
  ...["sudo", "sysctl", "dpkg-query", "rpm", "/usr/bin/rpm", "sh", "python3", "cat"].map((
    command,
  ) => ({
    name: "run" as const,
    command,
  })),
  ...(["hostname", "uid", "gid", "osRelease", "networkInterfaces", "homedir"] as const).map(
    (kind) => ({ name: "sys" as const, kind }),
  ),
  { name: "ffi" },
];

const key = (d: Deno.PermissionDescriptor) =>
  `${d.name}:${Object.entries(d).filter(([k]) => k !== "name").map(([, v]) => v).join("")}`;
console.log(JSON.stringify(
  Object.fromEntries(candidates.map((d) => [key(d), Deno.permissions.querySync(d).state])),
));
