/**
 * Runs after the whole suite (see the `test` task): every canary PAT the suite used must
 * appear nowhere it left behind — recorded HTTP responses, server logs, process output, and
 * the raw bytes of every KV file on disk — in any common encoding, or as any 12-character piece.
 * Jira Cloud canaries (tests/helpers/canary.ts) add API tokens and the random local part of
 * e-mails to that list, and whole e-mails and `email:token` pairs (and so the base64 a Basic
 * header carries) to canaries-whole.txt, swept in every whole-value form.
 */
import assert from "node:assert/strict";
import { OUT_DIR } from "../helpers/paths.ts";

function forms(pat: string): string[] {
  const bytes = new TextEncoder().encode(pat);
  const b64 = btoa(pat);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return [
    pat,
    pat.split("").reverse().join(""),
    encodeURIComponent(pat),
    JSON.stringify(pat).slice(1, -1).replace(/\//g, "\\/"),
    b64,
    b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""),
    hex,
    hex.toUpperCase(),
  ];
}

function pieces(pat: string, size = 12): string[] {
  const out: string[] = [];
  for (let i = 0; i + size <= pat.length; i++) out.push(pat.slice(i, i + size));
  return out;
}

async function* files(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* files(p);
    else if (e.isFile) yield p;
  }
}

Deno.test("no canary PAT appears in any response, log, output or KV byte the suite left behind", async () => {
  const canaries = (await Deno.readTextFile(`${OUT_DIR}/canaries.txt`)).split("\n").filter(Boolean);
  assert.ok(canaries.length >= 10, `the suite registered ${canaries.length} canaries`);
  const whole = await Deno.readTextFile(`${OUT_DIR}/canaries-whole.txt`).then(
    (t) => t.split("\n").filter(Boolean),
    () => [] as string[],
  );
  const needles = [
    ...canaries.flatMap((c) => [...forms(c), ...pieces(c)]),
    ...whole.flatMap((c) => forms(c)),
  ];
  let scanned = 0, kvFiles = 0;
  const hits: string[] = [];
  for await (const path of files(OUT_DIR)) {
    if (path.endsWith("/canaries.txt") || path.endsWith("/canaries-whole.txt")) continue;
    const text = new TextDecoder("latin1").decode(await Deno.readFile(path));
    scanned++;
    if (/\.kv(-wal|-shm)?$/.test(path)) kvFiles++;
    for (const n of needles) {
      if (text.includes(n)) hits.push(`${path.slice(OUT_DIR.length)} contains a canary form`);
    }
  }
  assert.ok(kvFiles >= 5, `the sweep read ${kvFiles} KV files`);
  assert.ok(scanned >= 20, `the sweep read ${scanned} files`);
  assert.deepEqual([...new Set(hits)], []);
});

Deno.test("the sweep itself finds a canary that is there (it can fail)", () => {
  const pat = "MTIzNDU2Nzg5MDEyOr6Ck1pbTC2Ui3r7ZjvRGv+lV0Yx";
  const leaked = `{"log":"${encodeURIComponent(pat)}"}`;
  assert.ok(forms(pat).some((f) => leaked.includes(f)));
  assert.ok(pieces(pat).some((p) => `...${pat.slice(5, 20)}...`.includes(p)));
});

Deno.test("the sweep finds a Cloud credential's Basic header value and its e-mail", () => {
  const pair = "c0123456789abcdef01234567@canary.example.org:ATATT3xyzxyzxyzxyzxyzxyz=0A1B2C3D";
  const header = `Authorization: Basic ${btoa(pair)}`;
  assert.ok(forms(pair).some((f) => header.includes(f)));
  const email = pair.slice(0, pair.indexOf(":"));
  assert.ok(forms(email).some((f) => `{"to":"${encodeURIComponent(email)}"}`.includes(f)));
});
