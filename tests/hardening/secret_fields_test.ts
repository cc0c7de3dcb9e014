/**
 * No tool accepts a credential (SECURITY_TESTS T15, T16), as properties rather than examples:
 * every string field and every key of every tool in the live tools/list refuses a PAT in any
 * of its usual wrappings, without echoing it; and the detector finds generated Data Center
 * PATs wherever they sit in generated arguments, while generated ordinary values pass.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { startWorld } from "../helpers/world.ts";
import { connectMcp, toolError } from "../helpers/mcp.ts";
import { makeDcPat } from "../helpers/canary.ts";
import { findSecret } from "../../src/security/secret_scan.ts";
import { newConnectionId, newRequestId } from "../../src/ids.ts";
import { assertNoLeak, needlesOf } from "./_helpers.ts";

Deno.test("every string field and key of every live tool refuses a PAT, wrapped or bare, and never echoes it", async () => {
  const w = await startWorld({ env: { SOSVAULT_RATE_TOOLS: "0/60" } });
  const mcp = await connectMcp(w.server.url, w.alice.token, {
    recordFile: `${w.server.dir}/mcp.log`,
  });
  try {
    const id = await w.connect(w.alice);
    const plausible: Record<string, string> = {
      connection_id: id,
      issue_key: "SUP-1",
      artifact_ref: `${w.server.env.SOSVAULT_ARTIFACT_DIR}/alice/x.txt`,
      filename: "x.txt",
      base_url: w.jira.url,
      consent_token: "sc_" + "A".repeat(40),
      job_id: "job_" + "A".repeat(24),
      archive_path: "/var/tmp/sosreport-h-linux-mcp-sos-2026-11-24-abcdefg.tar.xz",
    };
    const stranger = makeDcPat();
    const secrets = [
      w.alice.pat,
      `Bearer ${w.alice.pat}`,
      `token=${w.alice.pat}`,
      encodeURIComponent(w.alice.pat),
      stranger,
      `/tmp/${stranger}.txt`,
    ];
    const needles = needlesOf([w.alice.pat, stranger]);
    const tools: Tool[] = (await mcp.client.listTools()).tools;
    let probes = 0;
    for (const tool of tools) {
      const props = (tool.inputSchema.properties ?? {}) as Record<string, { type?: string }>;
      const required = new Set((tool.inputSchema.required ?? []) as string[]);
      const base: Record<string, string> = {};
      for (const name of required) base[name] = plausible[name] ?? "x";
      const fields = Object.entries(props).filter(([, p]) => p.type === "string").map(([n]) => n);
      assert.ok(fields.length > 0 || tool.name === "generate_sosreport", tool.name);
      for (const secret of secrets) {
        const attempts: Array<Record<string, unknown>> = [
          ...fields.map((f) => ({ ...base, [f]: secret })),
          { ...base, [secret]: "x" },
          { ...base, note: { nested: [secret] } },
        ];
        for (const args of attempts) {
          const result = await mcp.call(tool.name, args);
          probes++;
          assert.equal(toolError(result).code, "secret_rejected", `${tool.name}: a field took it`);
          assertNoLeak(JSON.stringify(result), needles, tool.name);
        }
      }
    }
    assert.ok(probes >= 150, `${probes} probes`);
    const forJira = w.jira.jira.requests.filter((r) => !r.path.endsWith("/myself"));
    assert.equal(forJira.length, 0, "no refused call reached Jira");
  } finally {
    await mcp.close();
    await w.close();
  }
});

const digits = fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 12, maxLength: 12 });
/** A Data Center PAT: base64 of 12 digits, ':', 20 random bytes (SECURITY_TESTS 3.2). */
const dcPat = fc.tuple(digits, fc.uint8Array({ minLength: 20, maxLength: 20 })).map(([d, b]) => {
  const head = new TextEncoder().encode(d.join("").replace(/^0/, "1") + ":");
  return btoa(String.fromCharCode(...head, ...b));
});
const separator = fc.constantFrom(" ", "\n", "\t", '"', "'", ",", ";", "(", ")", "<", ">", "|");
const context = fc.string({ maxLength: 30 });

Deno.test("findSecret() finds 2,000 generated Data Center PATs at any leaf or key of generated arguments", async () => {
  const placed = fc.tuple(dcPat, context, separator, context, separator).chain(
    ([pat, before, s1, after, s2]) => {
      const text = `${before}${s1}${pat}${s2}${after}`;
      return fc.tuple(
        fc.constant(pat),
        fc.oneof(
          fc.constant<unknown>(text),
          fc.constant<unknown>({ issue_key: text }),
          fc.constant<unknown>({ [text]: 1 }),
          fc.jsonValue({ maxDepth: 2 }).map((j) => ({ a: j, b: [j, { c: text }] })),
        ),
      );
    },
  );
  await fc.assert(
    fc.asyncProperty(placed, async ([, args]) => {
      assert.notEqual(await findSecret(args), null);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("findSecret() passes 3,000 generated ordinary values: ids, digests, keys, paths, URLs, prose", async () => {
  const hex = (n: number) =>
    fc.uint8Array({ minLength: n, maxLength: n }).map((b) =>
      Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
    );
  const ordinary = fc.oneof(
    fc.uuid(),
    hex(32),
    hex(16),
    hex(20),
    fc.stringMatching(/^[A-Z][A-Z0-9_]{1,9}-[1-9][0-9]{0,5}$/),
    fc.constant(null).map(() => newConnectionId()),
    fc.constant(null).map(() => newRequestId()),
    fc.tuple(fc.stringMatching(/^[a-z0-9-]{1,20}$/), fc.date({ noInvalidDate: true }), hex(4)).map(
      ([h, d, id]) =>
        `/var/tmp/sosreport-${h}-linux-mcp-sos-${d.toISOString().slice(0, 10)}-${id}.tar.xz`,
    ),
    fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    fc.webUrl({ withQueryParameters: true }),
    fc.emailAddress(),
    fc.lorem({ maxCount: 12 }),
  );
  let hits = 0;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(ordinary, async (value) => {
      runs++;
      if (await findSecret({ value })) hits++;
    }),
    { numRuns: 3000 },
  );
  // The catalogue's target is under 0.5 %; these families are expected never to trip it.
  assert.ok(hits / runs < 0.005, `${hits} of ${runs} ordinary values were taken for secrets`);
  assert.equal(hits, 0);
});
