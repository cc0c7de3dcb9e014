/**
 * End to end on a real host, as operators run it: `sosvault serve` as a non-root service user
 * whose only privilege is the sudoers file that `sosvault doctor --sudoers` printed (installed by
 * .ci/run and checked with visudo). Through the MCP SDK client: consent → generate_sosreport
 * (real sos, progress) → sosreport_status → fetch_sosreport (the archive is root's, mode 0600, so
 * the `sudo -n cat` rule is what reads it) → jira_attach_artifact to the fake Jira, whose
 * recorded sha256 must be the archive's.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { freshDir, OUT_DIR, TEST_CA_FILE } from "../helpers/paths.ts";
import { runSosvault, serveProcess } from "../helpers/process.ts";
import { randomMasterKey } from "../helpers/server.ts";
import { startFakeJira } from "../helpers/fake_jira_server.ts";
import { newCanaryPat } from "../helpers/canary.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";

export const SERVICE_USER = "sosvault-ci";
export const NO_RULE_USER = "sosvault-norule";

function userExists(name: string): boolean {
  const out = new Deno.Command("id", { args: ["-u", name], stdout: "null", stderr: "null" })
    .outputSync();
  return out.success;
}

const missing = [
  Deno.uid() !== 0 && "root (to start the server as the service user)",
  !userExists(SERVICE_USER) && `the ${SERVICE_USER} user with the doctor's sudoers rule`,
  !userExists(NO_RULE_USER) && `the ${NO_RULE_USER} user`,
  !Deno.env.get("DENO_DIR") && "DENO_DIR set to a cache the service user can read",
].filter(Boolean);
if (missing.length) {
  const why = `the service-user e2e test needs ${missing.join(", ")} (.ci/run sets them up)`;
  if (Deno.env.get("CI")) throw new Error(why);
  console.warn(`SKIPPED: ${why}`);
}

/** A directory the service user owns, with its master key in a 0600 file (never in argv). */
async function serviceDir(user: string) {
  const dir = await freshDir(`e2e-${user}`);
  // The service user may pass through .test-out (but not list it) to reach its own folder.
  await Deno.chmod(OUT_DIR, 0o711);
  const keyFile = `${dir}/master.key`;
  await Deno.writeTextFile(keyFile, randomMasterKey() + "\n", { mode: 0o600 });
  const uid = Number(
    new TextDecoder().decode(new Deno.Command("id", { args: ["-u", user] }).outputSync().stdout),
  );
  const gid = Number(
    new TextDecoder().decode(new Deno.Command("id", { args: ["-g", user] }).outputSync().stdout),
  );
  await Deno.chown(dir, uid, gid);
  await Deno.chown(keyFile, uid, gid);
  const env = {
    TOKEN_VAULT_MASTER_KEY_FILE: keyFile,
    SOSVAULT_KV_PATH: `${dir}/kv/sosvault.kv`,
    SOSVAULT_ARTIFACT_DIR: `${dir}/artifacts`,
    JIRA_CA_FILE: TEST_CA_FILE,
    JIRA_ALLOWED_HOSTS: "127.0.0.1",
  };
  return { dir, env };
}

Deno.test({
  name:
    "as a non-root service user: consent → real sos with progress → status → fetch via sudo cat → attach; Jira gets the archive's sha256",
  ignore: missing.length > 0,
  async fn() {
    const { dir, env } = await serviceDir(SERVICE_USER);
    const jira = await startFakeJira();
    const pat = await newCanaryPat();
    jira.jira.addUser({ name: "ops", displayName: "Ops Person" });
    jira.jira.addPat("ops", pat);
    jira.jira.addIssue({ key: "SUP-42" });
    const add = await runSosvault(dir, ["users", "add", "ops", "--json"], env, {
      asUser: SERVICE_USER,
    });
    assert.equal(add.code, 0, add.stderr);
    const token = JSON.parse(add.stdout).token;
    // Jira's reachability is checked per allowed host on port 443; the fake Jira listens on a
    // random port, so doctor runs here without the allow-list (its Jira check is then skipped).
    const doctor = await runSosvault(dir, ["doctor"], { ...env, JIRA_ALLOWED_HOSTS: "" }, {
      asUser: SERVICE_USER,
    });
    assert.equal(
      doctor.code,
      0,
      `doctor passes for the service user:\n${doctor.stdout}${doctor.stderr}`,
    );

    const server = await serveProcess(dir, env, { asUser: SERVICE_USER });
    let archive: string | undefined;
    try {
      const api = (path: string, init: RequestInit = {}) =>
        fetch(`${server.url}${path}`, {
          ...init,
          headers: {
            authorization: `Bearer ${token}`,
            "content-type": "application/json",
            ...init.headers,
          },
        });
      const conn = await (await api("/api/jira/connections", {
        method: "POST",
        body: JSON.stringify({ base_url: jira.url, pat }),
      })).json();
      assert.match(conn.connection_id, /^jc_/, JSON.stringify(conn));
      const consent = await (await api("/api/sos/consents", { method: "POST" })).json();

      const mcp = await connectMcp(server.url, token, { recordFile: `${dir}/mcp.log` });
      try {
        const progress: number[] = [];
        const t0 = performance.now();
        const gen = await mcp.call(
          "generate_sosreport",
          { consent_token: consent.consent_token },
          (p) => progress.push(p.progress),
        );
        assert.ok(!gen.isError, JSON.stringify(gen));
        let job = gen.structuredContent;
        while (job.status === "running") {
          await new Promise((r) => setTimeout(r, 500));
          job = (await mcp.call("sosreport_status", { job_id: job.job_id })).structuredContent;
        }
        const genSeconds = (performance.now() - t0) / 1000;
        assert.equal(job.status, "succeeded", JSON.stringify(job));
        archive = job.archive_path;
        assert.ok(progress.length >= 3, `progress notifications: ${progress.length}`);

        const info = await Deno.stat(job.archive_path);
        assert.equal(info.uid, 0, "the archive is root's");
        assert.equal(info.mode! & 0o777, 0o600, "and unreadable to the service user");
        const original = createHash("sha256").update(await Deno.readFile(job.archive_path)).digest(
          "hex",
        );

        const t1 = performance.now();
        const fetched = await mcp.call("fetch_sosreport", { job_id: job.job_id });
        assert.ok(!fetched.isError, JSON.stringify(fetched));
        const fetchSeconds = (performance.now() - t1) / 1000;
        assert.equal(fetched.structuredContent.sha256, original);
        const copy = await Deno.stat(fetched.structuredContent.artifact_ref);
        assert.equal(copy.mode! & 0o777, 0o600);
        assert.notEqual(copy.uid, 0, "the copy belongs to the service user");

        const t2 = performance.now();
        const attached = await mcp.call("jira_attach_artifact", {
          connection_id: conn.connection_id,
          issue_key: "SUP-42",
          artifact_ref: fetched.structuredContent.artifact_ref,
        });
        assert.ok(!attached.isError, JSON.stringify(attached));
        const attachSeconds = (performance.now() - t2) / 1000;
        const upload = jira.jira.requests.find((r) => r.method === "POST")!;
        assert.equal(upload.fileSha256, original, "Jira received exactly the archive");
        console.log(
          `e2e timings: generate ${
            genSeconds.toFixed(1)
          } s (${progress.length} progress notifications), fetch via sudo cat ${
            fetchSeconds.toFixed(2)
          } s, attach ${attachSeconds.toFixed(2)} s; archive ${info.size} bytes`,
        );
      } finally {
        await mcp.close();
      }
    } finally {
      await server.stop();
      await jira.close();
      if (archive) {
        for (const p of [archive, `${archive}.md5`, `${archive}.sha256`]) {
          await Deno.remove(p).catch(() => {});
        }
      }
    }
    assert.ok(!server.lines.join("\n").includes(pat));
  },
});

Deno.test({
  name:
    "a service user without the sudoers rule gets sudo_not_configured, and doctor says what to fix",
  ignore: missing.length > 0,
  async fn() {
    const { dir, env } = await serviceDir(NO_RULE_USER);
    const token = JSON.parse(
      (await runSosvault(dir, ["users", "add", "ops", "--json"], env, { asUser: NO_RULE_USER }))
        .stdout,
    ).token;
    const doctor = await runSosvault(dir, ["doctor"], { ...env, JIRA_ALLOWED_HOSTS: "" }, {
      asUser: NO_RULE_USER,
    });
    assert.notEqual(doctor.code, 0);
    assert.match(doctor.stdout + doctor.stderr, /FAIL.*sudo/i);
    assert.match(
      doctor.stdout,
      new RegExp(
        `${NO_RULE_USER} ALL=\\(root\\) CWD=/ NOPASSWD: /usr/(s)?bin/sos report --batch --tmp-dir /var/tmp --name linux-mcp-sos`,
      ),
    );
    const server = await serveProcess(dir, env, { asUser: NO_RULE_USER });
    try {
      const consent = await (await fetch(`${server.url}/api/sos/consents`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      })).json();
      const mcp = await connectMcp(server.url, token);
      try {
        const err = toolError(
          await mcp.call("generate_sosreport", { consent_token: consent.consent_token }),
        );
        assert.equal(err.code, "sudo_not_configured");
        assert.match(err.message, /sosvault doctor/);
      } finally {
        await mcp.close();
      }
    } finally {
      await server.stop();
    }
  },
});
