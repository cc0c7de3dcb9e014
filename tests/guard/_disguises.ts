/** The caller's PAT wrapped the ways a file name or key could hide it. */
export function disguises(pat: string): Array<[string, string]> {
  return [
    ["dash and extension", `notes-${pat}.txt`],
    ["underscores", `x_${pat}_y`],
    ["glued to letters", `abc${pat}def.log`],
    ["glued to digits", `2026${pat}0001`],
    ["URL-encoded inside a name", `report-${encodeURIComponent(pat)}.tar.xz`],
    ["base64 of user:token", `creds-${btoa(`alice.jira:${pat}`)}.txt`],
    ["base64 of user:token, shifted", `ab${btoa(`alice:${pat}`).replace(/=+$/, "")}`],
    ["after a path", `/tmp/upload/${pat}`],
  ];
}
