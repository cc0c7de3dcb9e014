import assert from "node:assert/strict";
import { hashToken, UserStore } from "../../src/users/users.ts";
import { freshDir } from "../helpers/paths.ts";

const clock = () => new Date("2026-12-07T00:00:00Z");

Deno.test("hashToken() is the hex SHA-256 of the token", async () => {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode("svt_example")),
  );
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(hashToken("svt_example"), hex);
});

Deno.test("UserStore.authenticate() refuses a token as soon as another handle removes its user", async () => {
  const path = `${await freshDir("users")}/users.kv`;
  const kvA = await Deno.openKv(path);
  const kvB = await Deno.openKv(path);
  try {
    const a = new UserStore(kvA, clock);
    const b = new UserStore(kvB, clock);
    const { token } = await a.add("alice", false);
    assert.equal((await a.authenticate(token))?.name, "alice");
    assert.equal((await a.authenticate(token))?.name, "alice", "again, from what it learnt");
    assert.ok(await b.remove("alice"));
    assert.equal(await a.authenticate(token), null);
    // A new alice has a new token: the old one stays refused, the new one works everywhere.
    const again = await b.add("alice", true);
    assert.equal(await a.authenticate(token), null);
    assert.equal((await a.authenticate(again.token))?.admin, true);
  } finally {
    kvA.close();
    kvB.close();
  }
});

Deno.test("UserStore.authenticate() refuses malformed and unknown tokens without a lookup", async () => {
  const kv = await Deno.openKv(`${await freshDir("users")}/users.kv`);
  try {
    const store = new UserStore(kv, clock);
    await store.add("bob", false);
    for (const bad of ["", "svt_", "Bearer x", "svt_" + "A".repeat(43) + " ", "jc_abc"]) {
      assert.equal(await store.authenticate(bad), null, bad);
    }
    assert.equal(await store.authenticate("svt_" + "A".repeat(43)), null);
  } finally {
    kv.close();
  }
});
