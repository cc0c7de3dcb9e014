/**
 * What the known-secret search costs on the hot path: the caller's connections are listed from
 * KV only when an argument could hold one of their secrets. Field names and sosvault's own ids,
 * which every jira_connection_status call carries, never trigger that listing.
 */
import assert from "node:assert/strict";
import { startWorld } from "../helpers/world.ts";

Deno.test("the secret guard lists the caller's connections only for strings that could hold a token", async () => {
  const w = await startWorld();
  try {
    const id = await w.connect(w.alice);
    const s = w.server.services;
    let listings = 0;
    const original = s.connections.knownSecretsOf.bind(s.connections);
    s.connections.knownSecretsOf = (user: string) => {
      listings++;
      return original(user);
    };
    const ctx = { user: "alice", requestId: "req_guard_cost", source: "mcp" as const };

    await s.secretGuard.check(ctx, { connection_id: id });
    await s.secretGuard.check(ctx, { job_id: "job_AAAAAAAAAAAAAAAAAAAAAAAA", issue_key: "SUP-1" });
    assert.equal(listings, 0, "no KV listing for field names, our ids and short values");

    await s.secretGuard.check(ctx, { connection_id: id, filename: "sosreport-host-2026.tar.xz" });
    assert.equal(listings, 1, "one listing for a call with a longer string");

    // And the search still finds the token inside such a string.
    await assert.rejects(
      s.secretGuard.check(ctx, { filename: `notes-${w.alice.pat}.txt` }),
      (e: Error & { code?: string }) => e.code === "secret_rejected",
    );
  } finally {
    await w.close();
  }
});
