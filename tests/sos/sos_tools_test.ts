/**
 * Sosreport tools in the real server, with the real sos and sudo of this host. The server runs
 * in-process here, as the test's own user (root in CI); tests/sos/e2e_service_user_test.ts runs
 * it as a non-root service user through the narrow sudoers rule.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startWorld } from "../helpers/world.ts";
import { connectMcp, type McpTestClient, toolError } from "../helpers/mcp.ts";
import { TestClock } from "../helpers/clock.ts";
import { symlink } from "../helpers/files.ts";
import type { StartOptions } from "../helpers/server.ts";

const SOS = ["/usr/sbin/sos", "/usr/bin/sos"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});
const ROOT = Deno.uid() === 0;
const canRun = Boolean(SOS) && ROOT;
if (!canRun) {
  const why = !SOS
    ? "sos is not installed (apt-get install sosreport)"
    : "these tests run sos through sudo as root";
  if (Deno.env.get("CI")) throw new Error(`sos tests cannot run: ${why}`);
  console.warn(`SKIPPED sos tests: ${why}`);
}

async function setup(options: StartOptions = {}) {
  const w = await startWorld(options);
  const alice = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  const bob = await connectMcp(w.server.url, w.bob.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  return {
    w,
    alice,
    bob,
    async consent(token: string): Promise<string> {
      const res = await w.server.call("POST", "/api/sos/consents", { token });
      assert.equal(res.status, 201, res.text);
      return res.body.consent_token;
    },
    async close() {
      await w.server.services.sos.settle();
      await alice.close();
      await bob.close();
      await w.close();
    },
  };
}

async function removeArchive(path: string | undefined) {
  if (!path) return;
  for (const p of [path, `${path}.md5`, `${path}.sha256`]) await Deno.remove(p).catch(() => {});
}

const t = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: !canRun, fn });

t(
  "consent is required: none, expired, replayed, or another user's token all give consent_required and run nothing",
  async () => {
    const clock = new TestClock();
    const s = await setup({ clock });
    try {
      const none = toolError(await s.alice.call("generate_sosreport", {}));
      assert.equal(none.code, "consent_required");
      assert.match(none.message, /api\/sos\/consents/);

      const expired = await s.consent(s.w.alice.token);
      clock.advance(10 * 60_000);
      assert.equal(
        toolError(await s.alice.call("generate_sosreport", { consent_token: expired })).code,
        "consent_required",
      );

      const bobs = await s.consent(s.w.bob.token);
      const stolen = toolError(await s.alice.call("generate_sosreport", { consent_token: bobs }));
      assert.equal(stolen.code, "consent_required");
      assert.equal(
        toolError(
          await s.alice.call("generate_sosreport", { consent_token: "sc_" + "x".repeat(43) }),
        ).message,
        stolen.message,
        "another user's token looks unknown",
      );

      assert.equal(
        toolError(await s.alice.call("generate_sosreport", { consent_token: "yes I consent" }))
          .code,
        "consent_required",
      );
      const denied = await s.w.server.services.events.list({ type: "denied", user: "alice" });
      assert.ok(denied.some((e) => e.error_code === "consent_required"));
      const jobs = await Array.fromAsync(s.w.server.services.kv.list({ prefix: ["sos_job"] }));
      assert.equal(jobs.length, 0, "no sosreport was started");
    } finally {
      await s.close();
    }
  },
);

t(
  "consent token → generate (real sos, progress notifications) → status → fetch (verified copy, 0600) → attach: Jira gets the same sha256",
  async () => {
    const s = await setup();
    let archive: string | undefined;
    try {
      const token = await s.consent(s.w.alice.token);
      const progress: Array<{ progress: number; total?: number }> = [];
      const started = performance.now();
      const gen = await s.alice.call(
        "generate_sosreport",
        { consent_token: token },
        (p) => progress.push(p),
      );
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      assert.ok(!gen.isError, JSON.stringify(gen));
      let job = gen.structuredContent;
      while (job.status === "running") {
        await new Promise((r) => setTimeout(r, 500));
        job = (await s.alice.call("sosreport_status", { job_id: job.job_id })).structuredContent;
      }
      assert.equal(job.status, "succeeded", JSON.stringify(job));
      archive = job.archive_path;
      console.log(
        `real sos run: ${seconds} s to answer, ${progress.length} progress notifications, archive ${job.size} bytes`,
      );
      assert.match(
        job.archive_path,
        /^\/var\/tmp\/sosreport-.+-linux-mcp-sos-\d{4}-\d\d-\d\d-[a-z0-9]+\.tar\.xz$/,
      );
      assert.ok(progress.length >= 3, "sos's Starting N/M lines became progress notifications");
      assert.ok(progress.some((p) => (p.total ?? 0) > 1 && p.progress < p.total!));

      const replay = toolError(await s.alice.call("generate_sosreport", { consent_token: token }));
      assert.equal(replay.code, "consent_required", "a consent token works once");

      const status = await s.alice.call("sosreport_status", { job_id: job.job_id });
      assert.equal(status.structuredContent.status, "succeeded");
      assert.equal(
        toolError(await s.bob.call("sosreport_status", { job_id: job.job_id })).code,
        "not_found",
      );

      const fetched = await s.alice.call("fetch_sosreport", { job_id: job.job_id });
      assert.ok(!fetched.isError, JSON.stringify(fetched));
      const f = fetched.structuredContent;
      const copy = await Deno.readFile(f.artifact_ref);
      assert.equal(createHash("sha256").update(copy).digest("hex"), f.sha256);
      assert.equal(f.size, copy.length);
      assert.ok(f.artifact_ref.startsWith(`${s.w.server.env.SOSVAULT_ARTIFACT_DIR}/alice/`));
      assert.equal((await Deno.stat(f.artifact_ref)).mode! & 0o777, 0o600);
      assert.equal(
        (await Deno.stat(`${s.w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`)).mode! & 0o777,
        0o700,
      );
      assert.equal(
        toolError(await s.bob.call("fetch_sosreport", { job_id: job.job_id })).code,
        "not_found",
      );
      assert.equal(
        toolError(await s.bob.call("fetch_sosreport", { archive_path: job.archive_path })).code,
        "artifact_invalid",
      );

      const id = await s.w.connect(s.w.alice);
      const attached = await s.alice.call("jira_attach_artifact", {
        connection_id: id,
        issue_key: "SUP-1",
        artifact_ref: f.artifact_ref,
      });
      assert.ok(!attached.isError, JSON.stringify(attached));
      const upload = s.w.jira.jira.requests.find((r) => r.method === "POST")!;
      assert.equal(upload.fileSha256, f.sha256);
      for (const type of ["consent", "sos_generate", "sos_fetch", "attach"] as const) {
        assert.ok(
          (await s.w.server.services.events.list({ type, user: "alice" })).some((e) =>
            e.outcome === "success"
          ),
          type,
        );
      }
    } finally {
      await s.close();
      await removeArchive(archive);
    }
  },
);

t(
  "a client that supports forms asks the human; accept runs sos, decline runs nothing",
  async () => {
    const s = await setup({ sosWaitMs: 100 });
    const { ElicitRequestSchema } = await import("@modelcontextprotocol/sdk/types.js");
    const asked: string[] = [];
    let answer: "accept" | "decline" = "decline";
    const forms: McpTestClient = await connectMcp(s.w.server.url, s.w.alice.token, {
      capabilities: { elicitation: { form: {} } },
    });
    forms.client.setRequestHandler(ElicitRequestSchema, (req: { params: { message: string } }) => {
      asked.push(req.params.message);
      return answer === "accept"
        ? { action: "accept", content: { confirm: true } }
        : { action: "decline" };
    });
    let archive: string | undefined;
    try {
      const declined = toolError(await forms.call("generate_sosreport", {}));
      assert.equal(declined.code, "consent_required");
      assert.match(declined.message, /declined/);
      answer = "accept";
      const gen = await forms.call("generate_sosreport", {});
      assert.ok(!gen.isError, JSON.stringify(gen));
      assert.equal(asked.length, 2);
      assert.match(asked[0], /sos report/);
      await s.w.server.services.sos.settle();
      const job = (await forms.call("sosreport_status", { job_id: gen.structuredContent.job_id }))
        .structuredContent;
      archive = job.archive_path;
      assert.equal(job.status, "succeeded");
    } finally {
      await forms.close();
      await s.close();
      await removeArchive(archive);
    }
  },
);

t("two generates at once: the second is conflict while the first runs", async () => {
  const s = await setup({ sosWaitMs: 50 });
  let archive: string | undefined;
  try {
    const first = await s.alice.call("generate_sosreport", {
      consent_token: await s.consent(s.w.alice.token),
    });
    assert.equal(first.structuredContent.status, "running");
    const second = toolError(
      await s.bob.call("generate_sosreport", { consent_token: await s.consent(s.w.bob.token) }),
    );
    assert.equal(second.code, "conflict");
    assert.ok(
      !second.message.includes(first.structuredContent.job_id),
      "bob is not told alice's job id",
    );
    const mine = toolError(
      await s.alice.call("generate_sosreport", { consent_token: await s.consent(s.w.alice.token) }),
    );
    assert.match(mine.message, new RegExp(first.structuredContent.job_id));
    await s.w.server.services.sos.settle();
    archive = (await s.alice.call("sosreport_status", { job_id: first.structuredContent.job_id }))
      .structuredContent.archive_path;
  } finally {
    await s.close();
    await removeArchive(archive);
  }
});

t(
  "a sos run past its timeout is stopped (TERM, then KILL) and the job fails with the reason",
  async () => {
    const s = await setup({ sosWaitMs: 50, sosTimeoutMs: 1500 });
    const before = new Set(await Array.fromAsync(Deno.readDir("/var/tmp"), (e) => e.name));
    try {
      const gen = await s.alice.call("generate_sosreport", {
        consent_token: await s.consent(s.w.alice.token),
      });
      await s.w.server.services.sos.settle();
      const job = (await s.alice.call("sosreport_status", { job_id: gen.structuredContent.job_id }))
        .structuredContent;
      assert.equal(job.status, "failed");
      assert.match(job.error.message, /did not finish within 2 s/);
      const ps = await new Deno.Command("pgrep", { args: ["-f", "sos report --batch"] }).output();
      assert.notEqual(ps.code, 0, "no sos process is left running");
      const next = await s.alice.call("generate_sosreport", {
        consent_token: await s.consent(s.w.alice.token),
      });
      assert.ok(!next.isError, "the host lock was released, so a new run starts");
    } finally {
      await s.close();
      // A stopped sos leaves its working directory behind (root's; the operator guide says so).
      for await (const e of Deno.readDir("/var/tmp")) {
        if (!before.has(e.name) && /^(sos\.|sosreport-)/.test(e.name)) {
          await Deno.remove(
            `/var/tmp/${e.name}`,
            { recursive: true },
          );
        }
      }
    }
  },
);

t("sos absent is sos_unavailable, before consent is spent", async () => {
  const s = await setup({
    sosCandidates: ["/tmp/sosvault-test-no-such/sbin/sos", "/tmp/sosvault-test-no-such/bin/sos"],
  });
  try {
    const token = await s.consent(s.w.alice.token);
    const err = toolError(await s.alice.call("generate_sosreport", { consent_token: token }));
    assert.equal(err.code, "sos_unavailable");
    assert.match(err.message, /apt install sosreport/);
  } finally {
    await s.close();
  }
});

t("fetch refuses traversal, other directories, wrong names, links and missing files", async () => {
  const s = await setup();
  const link = "/var/tmp/sosreport-evil-linux-mcp-sos-2026-11-24-linkaaa.tar.xz";
  try {
    await Deno.remove(link).catch(() => {});
    await symlink("/etc/shadow", link);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ archive_path: "/var/tmp/../etc/shadow" }, "invalid_input"],
      [{ archive_path: "/etc/shadow" }, "invalid_input"],
      [
        { archive_path: "/tmp/sosreport-h-linux-mcp-sos-2026-11-24-abcdefg.tar.xz" },
        "invalid_input",
      ],
      [
        { archive_path: "/var/tmp/x/sosreport-h-linux-mcp-sos-2026-11-24-abcdefg.tar.xz" },
        "invalid_input",
      ],
      [
        { archive_path: "/var/tmp/sosreport-h-other-label-2026-11-24-abcdefg.tar.xz" },
        "invalid_input",
      ],
      [
        { archive_path: "/var/tmp/sosreport-h-linux-mcp-sos-2026-11-24-abcdefg.tar.gz" },
        "invalid_input",
      ],
      [{ archive_path: "relative/sosreport.tar.xz" }, "invalid_input"],
      [{ archive_path: link }, "artifact_invalid"],
      [
        { archive_path: "/var/tmp/sosreport-h-linux-mcp-sos-2026-11-24-missing.tar.xz" },
        "artifact_invalid",
      ],
      [{ job_id: "job_" + "x".repeat(24) }, "not_found"],
      [{ job_id: "nope" }, "invalid_input"],
      [{}, "invalid_input"],
      [{ job_id: "job_" + "x".repeat(24), archive_path: link }, "invalid_input"],
    ];
    for (const [args, code] of cases) {
      assert.equal(
        toolError(await s.alice.call("fetch_sosreport", args)).code,
        code,
        JSON.stringify(args),
      );
    }
    const leftovers = await Array.fromAsync(
      Deno.readDir(`${s.w.server.env.SOSVAULT_ARTIFACT_DIR}/alice`),
    ).catch(() => []);
    assert.deepEqual(leftovers, [], "nothing was copied");
  } finally {
    await Deno.remove(link).catch(() => {});
    await s.close();
  }
});

Deno.test("POST /api/sos/consents mints a one-time token for the caller, and rejects a body with fields", async () => {
  const w = await startWorld();
  try {
    const res = await w.server.call("POST", "/api/sos/consents", { token: w.alice.token });
    assert.equal(res.status, 201);
    assert.match(res.body.consent_token, /^sc_[A-Za-z0-9_-]{43}$/);
    assert.ok(Date.parse(res.body.expires_at) > Date.now());
    const withBody = await w.server.call("POST", "/api/sos/consents", {
      token: w.alice.token,
      json: { user: "bob" },
    });
    assert.equal(withBody.status, 400);
    const anon = await w.server.call("POST", "/api/sos/consents", {});
    assert.equal(anon.status, 401);
  } finally {
    await w.close();
  }
});
