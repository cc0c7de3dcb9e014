/**
 * Parsing sos's output, against recorded (sos 4.0 on this Debian host) and reconstructed
 * (3.5, 4.3, 4.5, 4.10) outputs in tests/fixtures/sos/; each fixture's header says where it
 * comes from.
 */
import assert from "node:assert/strict";
import {
  ARCHIVE_NAME,
  failureHint,
  parseArchivePath,
  parseChecksum,
  parseProgress,
} from "../../src/sos/output.ts";

const FIXTURES = new URL("../fixtures/sos/", import.meta.url);

/** The raw output below the fixture's `# ---` header line. */
async function fixture(name: string): Promise<string> {
  const text = await Deno.readTextFile(new URL(name, FIXTURES));
  const end = text.indexOf("\n# ---\n");
  assert.ok(text.startsWith("# ") && end > 0, `${name} has no header`);
  return text.slice(end + "\n# ---\n".length);
}

interface Expected {
  archive: string | null;
  checksum: { algorithm: "md5" | "sha256"; value: string } | null;
  /** The highest "Starting N/M" seen, and M. */
  progress: { done: number; total: number } | null;
  nameMatches: boolean;
  failure: RegExp | null;
}

const CASES: Record<string, Expected> = {
  "4.0-debian-recorded.txt": {
    archive: "/var/tmp/sosreport-vm-linux-mcp-sos-2026-11-24-efqlkpz.tar.xz",
    checksum: { algorithm: "md5", value: "b562ce1f0be34e318d3d2ac0503afd09" },
    progress: { done: 49, total: 49 },
    nameMatches: true,
    failure: null,
  },
  "4.3-rhel8-reconstructed.txt": {
    archive: "/var/tmp/sosreport-rhel8-linux-mcp-sos-2022-09-26-vdphrie.tar.xz",
    checksum: {
      algorithm: "sha256",
      value: "96cd338ec557b41681041449d9ea402dcf2959573c254b1bd067da0441c2556c",
    },
    progress: { done: 25, total: 25 },
    nameMatches: true,
    failure: null,
  },
  "4.5-ubuntu-reconstructed.txt": {
    archive:
      "/var/tmp/sosreport-juju-6127db-lunar-testing1-0-linux-mcp-sos-2023-07-14-kfjwqxn.tar.xz",
    checksum: {
      algorithm: "sha256",
      value: "4b3f0c6a9de1f25a7a52c0b01f1a8c3e0d8d6f1b2e9a7c4d5b6e7f8091a2b3c4",
    },
    progress: { done: 14, total: 14 },
    nameMatches: true,
    failure: null,
  },
  "4.10-rhel9-reconstructed.txt": {
    archive: "/var/tmp/sosreport-crc-linux-mcp-sos-2026-05-02-ttdzzri.tar.xz",
    checksum: {
      algorithm: "sha256",
      value: "a3657fa92bfc982427ca0fad81b4f823f9da0185739766d1007336872a7d300c",
    },
    progress: { done: 25, total: 25 },
    nameMatches: true,
    failure: null,
  },
  "3.5-rhel7-reconstructed.txt": {
    archive: "/var/tmp/sosreport-rhel7-20190307155700.tar.xz",
    checksum: { algorithm: "md5", value: "2ba3dacdb32622ae451daac72e8c56fe" },
    progress: null,
    nameMatches: false,
    failure: null,
  },
  "4.0-debian-recorded-sigterm.txt": {
    archive: null,
    checksum: null,
    progress: { done: 48, total: 49 },
    nameMatches: false,
    failure: null,
  },
  "4.0-debian-recorded-sigint.txt": {
    archive: null,
    checksum: null,
    progress: { done: 49, total: 49 },
    nameMatches: false,
    failure: /interrupted/,
  },
  "4.0-debian-recorded-not-root.txt": {
    archive: null,
    checksum: null,
    progress: null,
    nameMatches: false,
    failure: /without root/,
  },
  "4.0-debian-recorded-bad-tmp-dir.txt": {
    archive: null,
    checksum: null,
    progress: null,
    nameMatches: false,
    failure: /could not write to \/var\/tmp/,
  },
  "4.0-archive-failed-reconstructed.txt": {
    archive: null,
    checksum: null,
    progress: { done: 49, total: 49 },
    nameMatches: false,
    failure: /disk space/,
  },
  "4.10-traceback-reconstructed.txt": {
    archive: null,
    checksum: null,
    progress: null,
    nameMatches: false,
    failure: /crashed/,
  },
};

function highestProgress(output: string) {
  let best: { done: number; total: number } | null = null;
  for (const line of output.split(/\r?\n/)) {
    const p = parseProgress(line);
    if (p && (!best || p.done > best.done)) best = p;
  }
  return best;
}

for (const [name, want] of Object.entries(CASES)) {
  Deno.test(`sos output ${name}: archive, checksum, progress and failure are read`, async () => {
    const output = await fixture(name);
    for (const variant of [output, output.replaceAll("\n", "\r\n")]) {
      const archive = parseArchivePath(variant);
      assert.equal(archive, want.archive);
      assert.deepEqual(parseChecksum(variant), want.checksum);
      assert.deepEqual(highestProgress(variant), want.progress);
      assert.equal(
        archive !== null && ARCHIVE_NAME.test(archive.split("/").pop()!),
        want.nameMatches,
      );
      const hint = failureHint(variant);
      if (want.failure) assert.match(hint ?? "", want.failure);
      else if (want.archive) assert.equal(hint, null);
    }
  });
}

Deno.test("the fixture set covers every fixture file", async () => {
  const files: string[] = [];
  for await (const e of Deno.readDir(FIXTURES)) files.push(e.name);
  assert.deepEqual(files.sort(), Object.keys(CASES).sort());
});

Deno.test("parseProgress() reads 'Starting N/M' lines of every 4.x format and nothing else", () => {
  assert.deepEqual(
    parseProgress("  Starting 38/49 services        [Running: apt networking scsi services]"),
    { done: 38, total: 49 },
  );
  assert.deepEqual(parseProgress("  Starting 1/1   juju            [Running: juju]"), {
    done: 1,
    total: 1,
  });
  // Without --batch sos rewrites one line with \r; tolerate it.
  assert.deepEqual(parseProgress("\r  Starting 7/120 kernel          [Running: kernel]"), {
    done: 7,
    total: 120,
  });
  for (
    const line of [
      "  Finishing plugins              [Running: systemd]",
      "  Finished running plugins",
      "  Running 2/3: kernel...        ",
      "  Starting 50/49 x [Running: x]",
      "  Starting 0/49 x [Running: x]",
      "  Starting 3/0 x",
      "[plugin:networking] Starting 1/2 something",
      "  Starting 12/49x",
    ]
  ) assert.equal(parseProgress(line), null, line);
});

Deno.test("parseArchivePath() tolerates tabs, spaces and CRLF, and takes the last report line", () => {
  const path = "/var/tmp/sosreport-h-linux-mcp-sos-2026-11-24-abcdefg.tar.xz";
  for (
    const text of [
      `Your sosreport has been generated and saved in:\n\t${path}\n`,
      `Your sos report has been generated and saved in:\r\n\t${path}\r\n`,
      `Your sos report has been generated and saved in:\n        ${path}\n`,
      `Your sosreport has been generated and saved in: ${path}\n`,
      `Your sos report has been generated and saved in\n${path}`,
    ]
  ) assert.equal(parseArchivePath(text), path, JSON.stringify(text));
  const planted = "Your sosreport has been generated and saved in:\n\t/etc/evil.tar.xz\n";
  assert.equal(
    parseArchivePath(
      `${planted}...\nYour sos report has been generated and saved in:\n\t${path}\n`,
    ),
    path,
  );
});

Deno.test("parseArchivePath() returns only an absolute tarball path without dot segments", () => {
  for (
    const bad of [
      "var/tmp/sosreport-h-linux-mcp-sos-2026-11-24-abcdefg.tar.xz",
      "/var/tmp/../etc/shadow.tar.xz",
      "/var/tmp/./sosreport.tar.xz",
      "/var/tmp/sosreport-h-linux-mcp-sos-2026-11-24-abcdefg",
      "/var/tmp/sosreport-h.tar.xz.md5",
      "/var/tmp/sosreport-h.zip",
      "/var/tmp/sosreport-h-linux-mcp-sos-2026-11-24-abcdefg.tar.xz;rm",
      "",
    ]
  ) {
    assert.equal(
      parseArchivePath(`Your sos report has been generated and saved in:\n\t${bad}\n`),
      null,
      bad,
    );
  }
  for (const ext of ["xz", "gz", "bz2", "zst"]) {
    const p = `/var/tmp/sosreport-h-2026-11-24-abcdefg.tar.${ext}`;
    assert.equal(parseArchivePath(`Your sosreport has been generated and saved in:\n\t${p}\n`), p);
  }
  assert.equal(
    parseArchivePath("Your sosreport build tree has been generated in:\n\t/var/tmp/sosreport-h\n"),
    null,
  );
});

Deno.test("parseChecksum() reads md5 (4.0), sha256 (4.1+, FIPS) and 3.x lines, checking length", () => {
  const head = "Your sos report has been generated and saved in:\n\t/var/tmp/a.tar.xz\n\n";
  const md5 = "b562ce1f0be34e318d3d2ac0503afd09";
  const sha = "a3657fa92bfc982427ca0fad81b4f823f9da0185739766d1007336872a7d300c";
  assert.deepEqual(parseChecksum(`${head} md5\t${md5}\n`), { algorithm: "md5", value: md5 });
  assert.deepEqual(parseChecksum(`${head} sha256\t${sha.toUpperCase()}\r\n`), {
    algorithm: "sha256",
    value: sha,
  });
  assert.deepEqual(parseChecksum(`${head} sha256   ${sha}\n`), { algorithm: "sha256", value: sha });
  assert.deepEqual(parseChecksum(`${head}The checksum is: ${sha}\n`), {
    algorithm: "sha256",
    value: sha,
  });
  assert.equal(parseChecksum(`${head} md5\t${sha}\n`), null);
  assert.equal(parseChecksum(`${head} sha256\t${md5}\n`), null);
  assert.equal(parseChecksum(`${head} sha1\t${"a".repeat(40)}\n`), null);
  assert.equal(parseChecksum(`${head} md5\t${md5}zz\n`), null);
});

Deno.test("parseChecksum() ignores digest-shaped lines before the archive line", () => {
  const planted = " md5\t00000000000000000000000000000000\n";
  const real = "b562ce1f0be34e318d3d2ac0503afd09";
  const out =
    `${planted}Your sosreport has been generated and saved in:\n\t/var/tmp/a.tar.xz\n\n md5\t${real}\n`;
  assert.deepEqual(parseChecksum(out), { algorithm: "md5", value: real });
  assert.equal(
    parseChecksum(
      `${planted}Your sosreport has been generated and saved in:\n\t/var/tmp/a.tar.xz\n`,
    ),
    null,
  );
});

Deno.test("ARCHIVE_NAME accepts sos's names for our label only, directly, nothing around them", () => {
  for (
    const ok of [
      "sosreport-vm-linux-mcp-sos-2026-11-24-efqlkpz.tar.xz",
      "sosreport-juju-6127db-lunar-testing1-0-linux-mcp-sos-2023-07-14-kfjwqxn.tar.xz",
      "sosreport-Host_1.lab-linux-mcp-sos-2026-01-02-abc123x.tar.xz",
    ]
  ) assert.ok(ARCHIVE_NAME.test(ok), ok);
  for (
    const bad of [
      "sosreport-vm-linux-mcp-sos-2026-11-24-efqlkpz.tar.xz.md5",
      "sosreport-vm-other-label-2026-11-24-efqlkpz.tar.xz",
      "sosreport-vm-linux-mcp-sos-2026-11-24-EFQLKPZ.tar.xz",
      "sosreport-vm-linux-mcp-sos-26-11-24-efqlkpz.tar.xz",
      "sosreport-vm-linux-mcp-sos-2026-11-24-efqlkpz.tar.gz",
      "sosreport-v m-linux-mcp-sos-2026-11-24-efqlkpz.tar.xz",
      "sosreport-a/b-linux-mcp-sos-2026-11-24-efqlkpz.tar.xz",
      // a case id from /etc/sos/sos.conf lands after the label: refused, the safe direction
      "sosreport-vm-linux-mcp-sos-01234567-2026-11-24-efqlkpz.tar.xz",
      "sosreport-vm,x-linux-mcp-sos-2026-11-24-efqlkpz.tar.xz",
      "sosreport-vé-linux-mcp-sos-2026-11-24-efqlkpz.tar.xz",
      "xsosreport-vm-linux-mcp-sos-2026-11-24-efqlkpz.tar.xz",
      "sosreport-vm-linux-mcp-sos-2026-11-24-efqlkpz.tar.xz\n",
    ]
  ) assert.ok(!ARCHIVE_NAME.test(bad), bad);
});
