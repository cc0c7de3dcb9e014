/**
 * How one connection talks to Jira: the auth scheme and the route builder per deployment.
 *
 * - Data Center: `Authorization: Bearer <PAT>` to `{base}/rest/api/2/...` (JIRA_FACTS.md).
 * - Cloud, classic API token: `Authorization: Basic base64(email:token)` to
 *   `{site}/rest/api/3/...`.
 * - Cloud, scoped API token: the same Basic header, but through Atlassian's gateway,
 *   `https://api.atlassian.com/ex/jira/{cloudId}/rest/api/3/...`; the site URL refuses it.
 *
 * The client, the attachment calls and the uploader take a `JiraAuth` (or, as before, a bare
 * PAT string meaning Data Center on the given base URL), so a deployment's differences live here.
 */
import { AppError } from "../errors.ts";

export type Deployment = "data_center" | "cloud";
export type TokenKind = "classic" | "scoped";

/** Atlassian's API gateway, through which scoped Cloud tokens must go. */
export const ATLASSIAN_GATEWAY = "https://api.atlassian.com";

export interface JiraAuth {
  deployment: Deployment;
  /** Prefix every REST path is appended to: the base URL, or the gateway's `/ex/jira/{cloudId}`. */
  apiBase: string;
  /** `/rest/api/2` on Data Center, `/rest/api/3` on Cloud. */
  restPrefix: "/rest/api/2" | "/rest/api/3";
  /** The whole Authorization header value. */
  authorization: string;
  /**
   * Security: every form of the caller's credential that must never come back from Jira or
   * leave in an error: the token, `email:token` and its base64 (what the Basic header carries).
   */
  secrets: readonly string[];
}

export function dataCenterAuth(baseUrl: string, pat: string): JiraAuth {
  return {
    deployment: "data_center",
    apiBase: baseUrl,
    restPrefix: "/rest/api/2",
    authorization: `Bearer ${pat}`,
    secrets: [pat],
  };
}

export interface CloudTarget {
  siteUrl: string;
  email: string;
  token: string;
  /** Set for a scoped token: calls then go through `{gateway}/ex/jira/{cloudId}`. */
  cloudId?: string;
  gateway?: string;
}

export function cloudAuth(t: CloudTarget): JiraAuth {
  const pair = `${t.email}:${t.token}`;
  const basic = utf8Base64(pair);
  return {
    deployment: "cloud",
    apiBase: t.cloudId
      ? `${(t.gateway ?? ATLASSIAN_GATEWAY).replace(/\/+$/, "")}/ex/jira/${
        encodeURIComponent(t.cloudId)
      }`
      : t.siteUrl,
    restPrefix: "/rest/api/3",
    authorization: `Basic ${basic}`,
    secrets: cloudSecretForms(t.email, t.token),
  };
}

/** The forms of a Cloud credential that count as the caller's known secrets. */
export function cloudSecretForms(email: string, token: string): string[] {
  const pair = `${email}:${token}`;
  return [token, pair, utf8Base64(pair)];
}

/** A bare string is a Data Center PAT used on `baseUrl` (the calls' original signature). */
export function toAuth(baseUrl: string, auth: string | JiraAuth): JiraAuth {
  return typeof auth === "string" ? dataCenterAuth(baseUrl, auth) : auth;
}

function utf8Base64(text: string): string {
  let s = "";
  for (const b of new TextEncoder().encode(text)) s += String.fromCharCode(b);
  return btoa(s);
}

// ---------------------------------------------------------------------------------------------
// Intake checks for the Cloud fields

// The local part in RFC 5322 atext (and dots): no space, control character, "@" or ":".
const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/**
 * Checks an Atlassian account e-mail's form. Security: the message never echoes it, and a colon
 * is refused because it would split `email:token` differently on Jira's side.
 */
export function checkEmail(input: string): string {
  const email = input.trim();
  if (email.length === 0 || email.length > 254 || !EMAIL.test(email)) {
    throw new AppError(
      "invalid_input",
      "email must be the e-mail address of your Atlassian account, for example a.person@example.com",
    );
  }
  return email;
}

/** `a***@example.com`: enough to tell two accounts apart, not enough to learn the address. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  if (at < 1) return "***";
  return `${email[0]}***${email.slice(at)}`;
}

/**
 * Security: a host that names Atlassian but is not a `*.atlassian.net` site (for example
 * `acme.atlassian.net.example.org`, `acme-atlassian.net`, `atlassian.net` itself or a punycode
 * look-alike) is where a phishing copy of the Cloud login would live: refused before any call,
 * so an Atlassian token is never sent there.
 */
export function refuseAtlassianLookalike(baseUrl: string): void {
  const host = new URL(baseUrl).hostname.toLowerCase().replace(/\.+$/, "");
  if (/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.atlassian\.net$/.test(host)) return;
  if (host === "api.atlassian.com") {
    throw new AppError(
      "invalid_input",
      "base_url is Atlassian's API gateway: give your site's address (https://<your-site>.atlassian.net); sosvault finds the gateway route for scoped tokens itself",
    );
  }
  // Atlassian's own hosts (e.g. jira.atlassian.com) are not look-alikes.
  if (host.endsWith(".atlassian.com")) return;
  // Letters only, so "atlassian-net", "atlassian.net.evil" and a punycode label that decodes
  // to a Cyrillic "а" + "tlassian" all show the tell-tale stem.
  const squashed = host.replace(/[^a-z]/g, "");
  if (/tlassian|atlasian|atlassain|attlassian/.test(squashed)) {
    throw new AppError(
      "invalid_input",
      "base_url names Atlassian but is not a Jira Cloud site: Cloud sites are https://<your-site>.atlassian.net (check the address for look-alike spellings)",
    );
  }
}
