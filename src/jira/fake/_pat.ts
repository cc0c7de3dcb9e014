// Recognises the shape of a Jira Data Center personal access token without knowing any token.

const DC_PAT = /^[A-Za-z0-9+/]{44}$/;

/**
 * The numeric token id inside a Data Center PAT, or undefined if `pat` does not have that shape.
 *
 * A DC PAT is 44 base64 characters (33 bytes, no padding) that decode to ASCII digits (the token
 * id), a colon, then at least 16 random bytes.
 */
export function dataCenterPatId(pat: string): string | undefined {
  if (!DC_PAT.test(pat)) return undefined;
  let bytes: string;
  try {
    bytes = atob(pat);
  } catch {
    return undefined;
  }
  const colon = bytes.indexOf(":");
  if (colon < 1 || bytes.length - colon - 1 < 16) return undefined;
  const id = bytes.slice(0, colon);
  return /^[0-9]+$/.test(id) ? id : undefined;
}

/** True when `pat` has the shape of a Jira Data Center personal access token. */
export function isDataCenterPatShape(pat: string): boolean {
  return dataCenterPatId(pat) !== undefined;
}
