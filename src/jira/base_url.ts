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

// The URL parser has already turned decimal, octal and hex IPv4 forms into dotted quads, and
// IPv6 into its shortest lower-case form.
function isInternalAddress(host: string): boolean {
  // Security: "localhost." and "metadata.google.internal." are the same names as without the
  // final dot, and resolve alike.
  const h = host.replace(/^\[|\]$/g, "").replace(/\.+$/, "");
  if (h === "localhost" || h.endsWith(".localhost") || LOOPBACK_NAMES.has(h)) return true;
  if (METADATA_NAMES.has(h) || isInternalV4(h)) return true;
  if (h === "::1" || h === "::" || /^fe[89ab][0-9a-f]:/i.test(h)) return true;
  if (/^fd00:ec2::254$/i.test(h)) return true;
  // IPv4-mapped IPv6 ([::ffff:127.0.0.1] parses to ::ffff:7f00:1) only ever hides an IPv4.
  if (/^::ffff:/i.test(h)) return true;
  // Security: the deprecated IPv4-compatible form ([::127.0.0.1] is ::7f00:1) is never a Jira.
  if (/^::[0-9a-f]{1,4}(:[0-9a-f]{1,4})?$/i.test(h)) return true;
  // Security: through a NAT64 gateway (64:ff9b::/96) an embedded internal IPv4 is reached too.
  const nat64 = /^64:ff9b::([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(h);
  if (nat64) {
    const [hi, lo] = [parseInt(nat64[1], 16), parseInt(nat64[2], 16)];
    return isInternalV4(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  }
  return false;
}

function isInternalV4(h: string): boolean {
  // 0.0.0.0/8 ("this network"), loopback, link-local (cloud metadata), Alibaba's metadata.
  return /^(0|127)\.\d+\.\d+\.\d+$/.test(h) || /^169\.254\.\d+\.\d+$/.test(h) ||
    h === "100.100.100.200";
}

/** Names /etc/hosts gives the loopback address on common distributions. */
const LOOPBACK_NAMES = new Set([
  "localhost.localdomain",
  "localhost4",
  "localhost4.localdomain4",
  "localhost6",
  "localhost6.localdomain6",
  "ip6-localhost",
  "ip6-loopback",
]);

/** Names cloud resolvers give the instance metadata service. */
const METADATA_NAMES = new Set([
  "metadata",
  "metadata.google.internal",
  "instance-data",
  "instance-data.ec2.internal",
]);
