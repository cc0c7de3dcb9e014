import { AppError } from "../errors.ts";

/**
 * Validates and normalises a Jira base URL given by a user.
 * Security: only HTTPS, no credentials or query in the URL, and the host must be in
 * JIRA_ALLOWED_HOSTS when that is set; when it is empty, loopback, link-local, metadata and
 * unspecified addresses are refused, so a base URL cannot make sosvault call endpoints on the
 * host itself or the cloud metadata service (SSRF).
 */
export function normaliseBaseUrl(
  input: string,
  allowedHosts: readonly string[],
  options: { allowInternal?: boolean } = {},
): string {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw new AppError(
      "invalid_input",
      "base_url is not a valid URL: give the Jira base URL, for example https://jira.example.com",
    );
  }
  if (url.protocol !== "https:") {
    throw new AppError(
      "invalid_input",
      "base_url must use https: sosvault never sends a token over plain HTTP",
    );
  }
  if (url.username || url.password) {
    throw new AppError("invalid_input", "base_url must not contain a user name or password");
  }
  if (url.search || url.hash) {
    throw new AppError("invalid_input", "base_url must not contain a query or fragment");
  }
  const host = url.hostname.toLowerCase();
  if (allowedHosts.length > 0) {
    if (!allowedHosts.includes(host)) {
      throw new AppError(
        "forbidden",
        "this Jira host is not in JIRA_ALLOWED_HOSTS: ask the operator to allow it, or use an allowed Jira",
      );
    }
  } else if (!options.allowInternal && isInternalAddress(host)) {
    // An operator who really runs Jira on such an address lists it in JIRA_ALLOWED_HOSTS.
    throw new AppError(
      "forbidden",
      "base_url points at a loopback, link-local, metadata or unspecified address; sosvault calls such a host only when JIRA_ALLOWED_HOSTS lists it",
    );
  }
  const path = url.pathname.replace(/\/+$/, "").replace(/\/rest\/api\/\d+$/, "");
  return `${url.protocol}//${url.host.toLowerCase()}${path}`;
}

// The URL parser has already turned decimal, octal and hex IPv4 forms into dotted quads.
function isInternalAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  if (h === "localhost" || h.endsWith(".localhost") || /^127\./.test(h) || h === "::1") return true;
  if (/^169\.254\./.test(h) || h === "0.0.0.0" || h === "::" || /^fe[89ab][0-9a-f]:/i.test(h)) {
    return true;
  }
  if (/^fd00:ec2::254$/i.test(h) || h === "metadata.google.internal") return true;
  // IPv4-mapped IPv6 ([::ffff:127.0.0.1] parses to ::ffff:7f00:1) only ever hides an IPv4.
  if (/^::ffff:/i.test(h)) return true;
  return false;
}
