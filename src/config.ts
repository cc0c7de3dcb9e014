/**
 * Configuration: one zod pass over the environment at start (DESIGN.md section 2).
 * Every bad variable is reported by name; a secret's value is never echoed.
 */
import { z } from "zod";
import type { VaultSettings } from "./vault/vault_source.ts";

/** Every variable sosvault reads. The task permission flags (`--allow-env=…`) list exactly these. */
export const ENV_VARS = [
  "TOKEN_VAULT_MASTER_KEY",
  "TOKEN_VAULT_MASTER_KEY_FILE",
  "TOKEN_VAULT_MASTER_KEY_PREVIOUS",
  "JIRA_CONNECTION_TTL_SECONDS",
  "JIRA_ATTACHMENT_MAX_BYTES",
  "JIRA_MOCK_MODE",
  "JIRA_ALLOWED_HOSTS",
  "JIRA_CA_FILE",
  "JIRA_TIMEOUT_SECONDS",
  "SOSVAULT_ENV",
  "SOSVAULT_LISTEN",
  "SOSVAULT_PUBLIC_URL",
  "SOSVAULT_KV_PATH",
  "SOSVAULT_AUTH",
  "SOSVAULT_ARTIFACT_DIR",
  "SOSVAULT_ARTIFACT_ROOTS",
  "SOSVAULT_SOS_TIMEOUT_SECONDS",
  "SOSVAULT_EVENT_RETENTION_DAYS",
  "SOSVAULT_ARTIFACT_TTL_SECONDS",
  "SOSVAULT_RATE_CONNECT",
  "SOSVAULT_RATE_TOOLS",
  "SOSVAULT_APPROVAL",
  "SOSVAULT_APPROVAL_PROJECT",
  "SOSVAULT_APPROVAL_STATUS",
  "SOSVAULT_APPROVAL_ROLE",
  "SOSVAULT_APPROVAL_HOST_FIELD",
  "SOSVAULT_APPROVAL_WINDOW_FIELDS",
  "SOSVAULT_APPROVAL_ALLOW_SELF",
  "SOSVAULT_APPROVAL_SIGNATURE_FIELD",
  "SOSVAULT_APPROVAL_TRUST_DIR",
  "SOSVAULT_WEBHOOK_SECRET_FILE",
  "SOSVAULT_KEY_SOURCE",
  "VAULT_ADDR",
  "VAULT_NAMESPACE",
  "VAULT_CACERT",
  "VAULT_ROLE_ID",
  "VAULT_ROLE_ID_FILE",
  "VAULT_SECRET_ID_FILE",
  "VAULT_SECRET_ID_REMOVE",
  "SOSVAULT_VAULT_KEY_PATH",
  "SOSVAULT_EVENT_EXPORT",
  "SOSVAULT_OIDC_ISSUER",
  "SOSVAULT_OIDC_AUDIENCE",
  "SOSVAULT_OIDC_SCOPE",
  "SOSVAULT_OIDC_USER_CLAIM",
  "SOSVAULT_OIDC_GROUPS_CLAIM",
  "SOSVAULT_OIDC_ADMIN_GROUP",
  "SOSVAULT_OIDC_CLIENT_ID",
  "SOSVAULT_OIDC_CLIENT_SECRET_FILE",
  // Read by Deno.openKv itself for a KV Connect URL; removed from the environment once opened.
  "DENO_KV_ACCESS_TOKEN",
] as const;

export type EnvName = typeof ENV_VARS[number];
export type Env = Partial<Record<EnvName, string>>;

/** Variables whose values are secrets: never echoed, removed from the process env after reading. */
export const SECRET_ENV_VARS: readonly EnvName[] = [
  "TOKEN_VAULT_MASTER_KEY",
  "TOKEN_VAULT_MASTER_KEY_PREVIOUS",
];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export interface Config {
  env: "development" | "production";
  listen: { hostname: string; port: number };
  /** Base of connect links. When SOSVAULT_PUBLIC_URL is unset it follows the bound address. */
  publicUrl: string;
  publicUrlExplicit: boolean;
  kvPath: string;
  auth: "tokens" | "dev" | "oidc";
  /** Set exactly when `auth` is `oidc`. */
  oidc?: OidcConfig;
  masterKey: MasterKeySource;
  previousMasterKey?: Uint8Array;
  connectionTtlSeconds: number;
  attachmentMaxBytes: number;
  mockMode: boolean;
  allowedHosts: string[];
  caFile?: string;
  jiraTimeoutMs: number;
  artifactDir: string;
  artifactRoots: string[];
  sosTimeoutSeconds: number;
  eventRetentionDays: number;
  artifactTtlSeconds: number;
  /** Per-user budgets kept in KV: `count` per `seconds`, a count of 0 turns one off. */
  rateLimits: {
    connect: { count: number; seconds: number };
    tool: { count: number; seconds: number };
  };
  /** SOSVAULT_EVENT_EXPORT: a copy of every event as a JSON line to a file, or syslog. */
  eventExport?:
    | { kind: "file"; path: string }
    | { kind: "syslog"; transport: "udp" | "tcp"; host: string; port: number };
  /** The change-approval gate before generate_sosreport (off by default). */
  approval: ApprovalConfig;
  /** File holding the shared secret of signed Jira webhooks; unset turns /jira/webhook off. */
  webhookSecretFile?: string;
}

export interface ApprovalConfig {
  mode: "off" | "cr" | "cr+signature";
  /** The CR project key, e.g. "CR". */
  project: string;
  /** The status a CR must be in (and must have been moved into by the approver). */
  status: string;
  /** A project role of the CR project, or else a Jira group, the approver must hold. */
  role: string;
  /** Field naming the host; null: the CR's labels. */
  hostField: string | null;
  /** Planned start and end fields (ids like customfield_10300); null: no window check. */
  windowFields: [string, string] | null;
  allowSelf: boolean;
  /** Field holding the approver's signature JSON (cr+signature). */
  signatureField: string | null;
  /** Directory of trusted approver certificates (*.pem) (cr+signature). */
  trustDir: string | null;
}

/** `SOSVAULT_AUTH=oidc`: one OpenID Connect issuer whose JWT access tokens /mcp and /api accept. */
export interface OidcConfig {
  /** The issuer URL exactly as the tokens' `iss` names it (no trailing slash added or removed). */
  issuer: string;
  /** The `aud` a token must contain; unset means `{publicUrl}/mcp`, read when a request arrives. */
  audience?: string;
  scope: string;
  userClaim: string;
  groupsClaim: string;
  adminGroup?: string;
  /** The connect page's login client; both set or both unset. */
  clientId?: string;
  clientSecretFile?: string;
}

/** Where the master key comes from; the bytes are read by `resolveMasterKey`. */
export type MasterKeySource =
  | { kind: "vault"; settings: VaultSettings }
  | { kind: "value"; bytes: Uint8Array }
  | { kind: "file"; path: string }
  | { kind: "dev-generated"; path: string };

/** Parses a 32-byte key given as base64 (44 chars) or hex (64 chars); null when malformed. */
export function parseMasterKey(text: string): Uint8Array | null {
  const s = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) {
    return Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));
  }
  if (/^[A-Za-z0-9+/]{43}=$/.test(s)) {
    const bytes = Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    if (bytes.length === 32) return bytes;
  }
  return null;
}

const KEY_SHAPE = "32 random bytes as base64 (44 characters) or hex (64 characters)";

const intIn = (min: number, max: number) =>
  z.string().trim().regex(/^\d+$/, "must be a whole number").transform(Number).pipe(
    z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`),
  );

const listen = z.string().trim().transform((s, ctx) => {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({ code: "custom", message: "must be host:port, for example 127.0.0.1:8080" });
    return z.NEVER;
  }
  return { hostname: m[1].replace(/^\[|\]$/g, ""), port };
});

/** `<count>/<seconds>`, for example `10/600`; `0/…` turns the limit off. */
const rate = z.string().trim().transform((s, ctx) => {
  const m = /^(\d{1,7})\/(\d{1,6})$/.exec(s);
  const count = m ? Number(m[1]) : NaN;
  const seconds = m ? Number(m[2]) : NaN;
  if (!m || seconds < 1 || seconds > 86_400) {
    ctx.addIssue({
      code: "custom",
      message:
        "must be <count>/<seconds> with seconds 1 … 86400, for example 10/600 (0/60 turns it off)",
    });
    return z.NEVER;
  }
  return { count, seconds };
});

const absoluteOrRelativePath = z.string().trim().min(1, "must not be empty");

/** A Jira field id as REST v2 names it: a system field (labels) or customfield_NNNNN. */
const fieldId = z.string().trim().regex(
  /^([a-z]{1,40}|customfield_\d{1,10})$/,
  "must be a Jira field id, for example labels or customfield_10200",
);

const schema = z.object({
  SOSVAULT_ENV: z.enum(["development", "production"]).default("development"),
  SOSVAULT_LISTEN: listen.default({ hostname: "127.0.0.1", port: 8080 }),
  SOSVAULT_PUBLIC_URL: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" })
    .optional(),
  SOSVAULT_KV_PATH: absoluteOrRelativePath.default("./.data/sosvault.kv"),
  SOSVAULT_AUTH: z.enum(["tokens", "dev", "oidc"]).default("tokens"),
  SOSVAULT_OIDC_ISSUER: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" })
    .optional(),
  SOSVAULT_OIDC_AUDIENCE: z.string().trim().min(1).max(2048).optional(),
  SOSVAULT_OIDC_SCOPE: z.string().trim().regex(
    /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/,
    "must be one OAuth scope (no spaces or quotes)",
  ).default("sosvault"),
  SOSVAULT_OIDC_USER_CLAIM: z.string().trim().regex(
    /^[A-Za-z0-9_.:-]{1,64}$/,
    "must be a claim name",
  )
    .default("preferred_username"),
  SOSVAULT_OIDC_GROUPS_CLAIM: z.string().trim().regex(
    /^[A-Za-z0-9_.:\/-]{1,128}$/,
    "must be a claim name (dots walk into objects, e.g. realm_access.roles)",
  ).default("groups"),
  SOSVAULT_OIDC_ADMIN_GROUP: z.string().trim().min(1).max(256).optional(),
  SOSVAULT_OIDC_CLIENT_ID: z.string().trim().min(1).max(256).optional(),
  SOSVAULT_OIDC_CLIENT_SECRET_FILE: absoluteOrRelativePath.optional(),
  JIRA_CONNECTION_TTL_SECONDS: intIn(60, 2_592_000).default(28_800),
  JIRA_ATTACHMENT_MAX_BYTES: intIn(1, Number.MAX_SAFE_INTEGER).default(536_870_912),
  JIRA_MOCK_MODE: z.enum(["", "0", "1"], { error: "must be 1 (on) or unset" }).default("")
    .transform((v) => v === "1"),
  JIRA_ALLOWED_HOSTS: z.string().default("").transform((s) =>
    s.split(",").map((h) => h.trim().toLowerCase()).filter(Boolean)
  ).pipe(
    z.array(z.string().regex(/^[a-z0-9.:\[\]-]+$/, "must be a comma list of hostnames")),
  ),
  JIRA_CA_FILE: absoluteOrRelativePath.optional(),
  JIRA_TIMEOUT_SECONDS: intIn(1, 600).default(30),
  SOSVAULT_ARTIFACT_DIR: absoluteOrRelativePath.default("/tmp/sosvault"),
  SOSVAULT_ARTIFACT_ROOTS: z.string().optional(),
  SOSVAULT_SOS_TIMEOUT_SECONDS: intIn(10, 86_400).default(1800),
  SOSVAULT_EVENT_RETENTION_DAYS: intIn(1, 3650).default(90),
  SOSVAULT_ARTIFACT_TTL_SECONDS: intIn(60, 31_536_000).default(86_400),
  SOSVAULT_RATE_CONNECT: rate.default({ count: 10, seconds: 600 }),
  SOSVAULT_RATE_TOOLS: rate.default({ count: 120, seconds: 60 }),
  SOSVAULT_APPROVAL: z.enum(["off", "cr", "cr+signature"]).default("off"),
  SOSVAULT_APPROVAL_PROJECT: z.string().trim().regex(
    /^[A-Z][A-Z0-9_]{1,254}$/,
    "must be a Jira project key, for example CR",
  ).optional(),
  SOSVAULT_APPROVAL_STATUS: z.string().trim().min(1).max(255).default("Approved"),
  SOSVAULT_APPROVAL_ROLE: z.string().trim().min(1).max(255).default("Change Manager"),
  SOSVAULT_APPROVAL_HOST_FIELD: fieldId.optional(),
  SOSVAULT_APPROVAL_WINDOW_FIELDS: z.string().trim().transform((s) =>
    s.split(",").map((f) => f.trim())
  ).pipe(
    z.tuple([fieldId, fieldId], {
      error:
        "must be two field ids, start and end, for example customfield_10300,customfield_10301",
    }),
  ).optional(),
  SOSVAULT_APPROVAL_ALLOW_SELF: z.enum(["0", "1"], { error: "must be 1 (on) or unset" })
    .default("0").transform((v) => v === "1"),
  SOSVAULT_APPROVAL_SIGNATURE_FIELD: fieldId.optional(),
  SOSVAULT_APPROVAL_TRUST_DIR: absoluteOrRelativePath.optional(),
  SOSVAULT_WEBHOOK_SECRET_FILE: absoluteOrRelativePath.optional(),
  SOSVAULT_KEY_SOURCE: z.enum(["env", "vault"]).default("env"),
  VAULT_ADDR: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional(),
  VAULT_NAMESPACE: z.string().trim().regex(/^[A-Za-z0-9_./-]{1,200}$/, "must be a namespace path")
    .optional(),
  VAULT_CACERT: absoluteOrRelativePath.optional(),
  VAULT_ROLE_ID: z.string().trim().min(1).optional(),
  VAULT_ROLE_ID_FILE: absoluteOrRelativePath.optional(),
  VAULT_SECRET_ID_FILE: absoluteOrRelativePath.optional(),
  VAULT_SECRET_ID_REMOVE: z.enum(["0", "1"], { error: "must be 1 (remove) or 0" }).default("0")
    .transform((v) => v === "1"),
  SOSVAULT_VAULT_KEY_PATH: z.string().trim().regex(
    /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/data\/[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/,
    "must be a KV v2 data path, for example secret/data/sosvault/master-key",
  ).default("secret/data/sosvault/master-key"),
  SOSVAULT_EVENT_EXPORT: z.string().trim().transform((s, ctx) => {
    const file = /^file:(.+)$/.exec(s);
    if (file) return { kind: "file" as const, path: file[1] };
    const sys = /^syslog(\+tcp|\+udp)?:([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(s);
    if (sys && Number(sys[3]) <= 65535) {
      return {
        kind: "syslog" as const,
        transport: sys[1] === "+tcp" ? "tcp" as const : "udp" as const,
        host: sys[2].replace(/^\[|\]$/g, ""),
        port: Number(sys[3]),
      };
    }
    ctx.addIssue({
      code: "custom",
      message: "must be file:PATH, syslog:HOST:PORT (UDP) or syslog+tcp:HOST:PORT",
    });
    return z.NEVER;
  }).optional(),
});

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * Parses the environment. Throws `ConfigError` naming every bad variable. Pure: reading the
 * key file and generating the dev key happen later, in `resolveMasterKey`.
 */
export function parseConfig(env: Env): Config {
  const problems: string[] = [];
  // Empty strings mean "unset" for every variable, as in most service managers.
  const present = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${String(issue.path[0] ?? "environment")} ${issue.message}`);
    }
  }

  const vaultMode = env.SOSVAULT_KEY_SOURCE === "vault";
  if (vaultMode && (env.TOKEN_VAULT_MASTER_KEY || env.TOKEN_VAULT_MASTER_KEY_FILE)) {
    problems.push(
      "SOSVAULT_KEY_SOURCE=vault takes the key from Vault: unset TOKEN_VAULT_MASTER_KEY and TOKEN_VAULT_MASTER_KEY_FILE",
    );
  }
  if (vaultMode && env.TOKEN_VAULT_MASTER_KEY_PREVIOUS) {
    problems.push(
      "SOSVAULT_KEY_SOURCE=vault takes the previous key from the secret's previous version: unset TOKEN_VAULT_MASTER_KEY_PREVIOUS",
    );
  }
  const masterKey = vaultMode ? undefined : masterKeySource(env, problems);
  let previousMasterKey: Uint8Array | undefined;
  if (env.TOKEN_VAULT_MASTER_KEY_PREVIOUS) {
    previousMasterKey = parseMasterKey(env.TOKEN_VAULT_MASTER_KEY_PREVIOUS) ?? undefined;
    if (!previousMasterKey) {
      problems.push(`TOKEN_VAULT_MASTER_KEY_PREVIOUS is malformed: it must be ${KEY_SHAPE}`);
    }
  }
  if (!parsed.success) throw new ConfigError(problems);
  const c = parsed.data;

  if (c.SOSVAULT_ENV === "production") {
    if (c.SOSVAULT_AUTH === "dev") {
      problems.push("SOSVAULT_AUTH=dev is refused when SOSVAULT_ENV=production");
    }
    if (c.JIRA_MOCK_MODE) {
      problems.push("JIRA_MOCK_MODE=1 is refused when SOSVAULT_ENV=production");
    }
  }
  if (c.SOSVAULT_AUTH === "dev" && !isLoopbackHost(c.SOSVAULT_LISTEN.hostname)) {
    problems.push(
      "SOSVAULT_AUTH=dev needs a loopback SOSVAULT_LISTEN address (127.0.0.1, ::1 or localhost)",
    );
  }
  const vault = vaultMode ? vaultSettings(c, problems) : undefined;
  const oidc = c.SOSVAULT_AUTH === "oidc" ? oidcConfig(c, problems) : undefined;
  if (vaultMode) {
    // The key comes from Vault at start (vault/vault_source.ts).
  } else if (!masterKey && c.SOSVAULT_AUTH === "dev" && c.SOSVAULT_ENV !== "production") {
    // Dev mode: a key generated once beside the KV file, so `deno task dev` needs no setup.
  } else if (!masterKey && !problems.some((p) => p.startsWith("TOKEN_VAULT_MASTER_KEY "))) {
    problems.push(
      `TOKEN_VAULT_MASTER_KEY is missing: set it to ${KEY_SHAPE} (for example from ` +
        "`openssl rand -base64 32`), or point TOKEN_VAULT_MASTER_KEY_FILE at a file holding it",
    );
  }
  if (c.SOSVAULT_APPROVAL !== "off" && !c.SOSVAULT_APPROVAL_PROJECT) {
    problems.push(
      `SOSVAULT_APPROVAL=${c.SOSVAULT_APPROVAL} needs SOSVAULT_APPROVAL_PROJECT (the CR project key)`,
    );
  }
  if (c.SOSVAULT_APPROVAL === "cr+signature") {
    for (
      const name of ["SOSVAULT_APPROVAL_SIGNATURE_FIELD", "SOSVAULT_APPROVAL_TRUST_DIR"] as const
    ) {
      if (!c[name]) problems.push(`SOSVAULT_APPROVAL=cr+signature needs ${name}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const host = c.SOSVAULT_LISTEN.hostname.includes(":")
    ? `[${c.SOSVAULT_LISTEN.hostname}]`
    : c.SOSVAULT_LISTEN.hostname;
  const artifactDir = c.SOSVAULT_ARTIFACT_DIR.replace(/\/+$/, "") || "/";
  return {
    env: c.SOSVAULT_ENV,
    listen: c.SOSVAULT_LISTEN,
    publicUrl: (c.SOSVAULT_PUBLIC_URL ?? `http://${host}:${c.SOSVAULT_LISTEN.port}`).replace(
      /\/+$/,
      "",
    ),
    publicUrlExplicit: c.SOSVAULT_PUBLIC_URL !== undefined,
    kvPath: c.SOSVAULT_KV_PATH,
    auth: c.SOSVAULT_AUTH,
    oidc,
    masterKey: vault
      ? { kind: "vault", settings: vault }
      : masterKey ?? { kind: "dev-generated", path: devKeyPath(c.SOSVAULT_KV_PATH) },
    previousMasterKey,
    connectionTtlSeconds: c.JIRA_CONNECTION_TTL_SECONDS,
    attachmentMaxBytes: c.JIRA_ATTACHMENT_MAX_BYTES,
    mockMode: c.JIRA_MOCK_MODE,
    allowedHosts: c.JIRA_ALLOWED_HOSTS,
    caFile: c.JIRA_CA_FILE,
    jiraTimeoutMs: c.JIRA_TIMEOUT_SECONDS * 1000,
    artifactDir,
    artifactRoots: (c.SOSVAULT_ARTIFACT_ROOTS ?? artifactDir).split(":").map((r) => r.trim())
      .filter(Boolean),
    sosTimeoutSeconds: c.SOSVAULT_SOS_TIMEOUT_SECONDS,
    eventRetentionDays: c.SOSVAULT_EVENT_RETENTION_DAYS,
    artifactTtlSeconds: c.SOSVAULT_ARTIFACT_TTL_SECONDS,
    rateLimits: { connect: c.SOSVAULT_RATE_CONNECT, tool: c.SOSVAULT_RATE_TOOLS },
    approval: {
      mode: c.SOSVAULT_APPROVAL,
      project: c.SOSVAULT_APPROVAL_PROJECT ?? "",
      status: c.SOSVAULT_APPROVAL_STATUS,
      role: c.SOSVAULT_APPROVAL_ROLE,
      hostField: c.SOSVAULT_APPROVAL_HOST_FIELD ?? null,
      windowFields: c.SOSVAULT_APPROVAL_WINDOW_FIELDS ?? null,
      allowSelf: c.SOSVAULT_APPROVAL_ALLOW_SELF,
      signatureField: c.SOSVAULT_APPROVAL_SIGNATURE_FIELD ?? null,
      trustDir: c.SOSVAULT_APPROVAL_TRUST_DIR ?? null,
    },
    webhookSecretFile: c.SOSVAULT_WEBHOOK_SECRET_FILE,
    eventExport: c.SOSVAULT_EVENT_EXPORT,
  };
}

function vaultSettings(c: z.infer<typeof schema>, problems: string[]): VaultSettings | undefined {
  const before = problems.length;
  if (!c.VAULT_ADDR) {
    problems.push("VAULT_ADDR is missing: SOSVAULT_KEY_SOURCE=vault needs Vault's URL");
  } else {
    const u = new URL(c.VAULT_ADDR);
    // Security: the secret ID and the token travel to Vault; in clear only over loopback.
    if (u.protocol !== "https:" && !isLoopbackHost(u.hostname.replace(/^\[|\]$/g, ""))) {
      problems.push("VAULT_ADDR must be https:// (plain http only on a loopback address)");
    }
  }
  if (!c.VAULT_ROLE_ID === !c.VAULT_ROLE_ID_FILE) {
    problems.push(
      "SOSVAULT_KEY_SOURCE=vault needs exactly one of VAULT_ROLE_ID and VAULT_ROLE_ID_FILE",
    );
  }
  if (!c.VAULT_SECRET_ID_FILE) {
    problems.push(
      "VAULT_SECRET_ID_FILE is missing: SOSVAULT_KEY_SOURCE=vault reads the AppRole secret ID from it (tmpfs)",
    );
  }
  if (problems.length > before) return undefined;
  return {
    addr: c.VAULT_ADDR!.replace(/\/+$/, ""),
    namespace: c.VAULT_NAMESPACE,
    caFile: c.VAULT_CACERT,
    roleId: c.VAULT_ROLE_ID,
    roleIdFile: c.VAULT_ROLE_ID_FILE,
    secretIdFile: c.VAULT_SECRET_ID_FILE!,
    removeSecretId: c.VAULT_SECRET_ID_REMOVE,
    keyPath: c.SOSVAULT_VAULT_KEY_PATH,
  };
}

/**
 * Security: refuses an issuer reached over plain HTTP outside loopback (its keys could be
 * swapped on the way), and a mode whose audience is only a guess: without SOSVAULT_OIDC_AUDIENCE
 * or SOSVAULT_PUBLIC_URL the audience follows the bound address, which only names this server
 * when that address is loopback in development.
 */
function oidcConfig(c: z.infer<typeof schema>, problems: string[]): OidcConfig | undefined {
  const issuer = c.SOSVAULT_OIDC_ISSUER;
  if (!issuer) {
    problems.push("SOSVAULT_OIDC_ISSUER is missing: SOSVAULT_AUTH=oidc needs the issuer URL");
    return undefined;
  }
  const url = new URL(issuer);
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ""))) {
    problems.push("SOSVAULT_OIDC_ISSUER must be https:// (plain http is allowed on loopback only)");
  }
  if (url.search || url.hash) {
    problems.push("SOSVAULT_OIDC_ISSUER must not have a query or fragment");
  }
  const derivable = c.SOSVAULT_OIDC_AUDIENCE !== undefined || c.SOSVAULT_PUBLIC_URL !== undefined ||
    (c.SOSVAULT_ENV === "development" && isLoopbackHost(c.SOSVAULT_LISTEN.hostname));
  if (!derivable) {
    problems.push(
      "SOSVAULT_AUTH=oidc needs an audience: set SOSVAULT_PUBLIC_URL (the audience is then " +
        "{SOSVAULT_PUBLIC_URL}/mcp) or SOSVAULT_OIDC_AUDIENCE",
    );
  }
  if (
    (c.SOSVAULT_OIDC_CLIENT_ID === undefined) !== (c.SOSVAULT_OIDC_CLIENT_SECRET_FILE === undefined)
  ) {
    problems.push(
      "SOSVAULT_OIDC_CLIENT_ID and SOSVAULT_OIDC_CLIENT_SECRET_FILE go together: set both or neither",
    );
  }
  return {
    issuer,
    audience: c.SOSVAULT_OIDC_AUDIENCE,
    scope: c.SOSVAULT_OIDC_SCOPE,
    userClaim: c.SOSVAULT_OIDC_USER_CLAIM,
    groupsClaim: c.SOSVAULT_OIDC_GROUPS_CLAIM,
    adminGroup: c.SOSVAULT_OIDC_ADMIN_GROUP,
    clientId: c.SOSVAULT_OIDC_CLIENT_ID,
    clientSecretFile: c.SOSVAULT_OIDC_CLIENT_SECRET_FILE,
  };
}

function masterKeySource(env: Env, problems: string[]): MasterKeySource | undefined {
  const value = env.TOKEN_VAULT_MASTER_KEY;
  const file = env.TOKEN_VAULT_MASTER_KEY_FILE;
  if (value && file) {
    problems.push("TOKEN_VAULT_MASTER_KEY and TOKEN_VAULT_MASTER_KEY_FILE are both set: keep one");
    return undefined;
  }
  if (file) return { kind: "file", path: file };
  if (!value) return undefined;
  const bytes = parseMasterKey(value);
  if (!bytes) {
    const why = value.trim().length < 44 ? "too short" : "malformed";
    problems.push(`TOKEN_VAULT_MASTER_KEY is ${why}: it must be ${KEY_SHAPE}`);
    return undefined;
  }
  return { kind: "value", bytes };
}

function devKeyPath(kvPath: string): string {
  const slash = kvPath.lastIndexOf("/");
  const dir = slash >= 0 ? kvPath.slice(0, slash) || "/" : ".";
  return `${dir}/dev-master.key`;
}

/** Reads the environment variables sosvault knows, and nothing else. */
export function readEnv(): Env {
  const env: Env = {};
  for (const name of ENV_VARS) {
    const v = Deno.env.get(name);
    if (v !== undefined) env[name] = v;
  }
  return env;
}
