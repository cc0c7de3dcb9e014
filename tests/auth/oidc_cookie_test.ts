/**
 * The connect page's login cookies behind an https public URL (a TLS proxy in front of
 * sosvault on loopback): both cookies carry the `__Host-` prefix and Secure, with Path=/ and no
 * Domain, so a browser keeps them for this one origin only and never sends them over http.
 * The login runs against the real test IdP, through a minimal user agent.
 */
import assert from "node:assert/strict";
import { followAuthorization, startIdp } from "../helpers/oidc_provider.ts";
import { startServer } from "../helpers/server.ts";

const PUBLIC_URL = "https://sosvault.example.com";

/** `name=value; A; B=c` → { name, value, attributes (lower-cased names) }. */
function parseSetCookie(header: string) {
  const [pair, ...attrs] = header.split(";").map((p) => p.trim());
  const eq = pair.indexOf("=");
  return {
    name: pair.slice(0, eq),
    value: pair.slice(eq + 1),
    attributes: new Map(attrs.map((a) => {
      const i = a.indexOf("=");
      return i < 0 ? [a.toLowerCase(), ""] : [a.slice(0, i).toLowerCase(), a.slice(i + 1)];
    })),
  };
}

function assertHostCookie(header: string, name: string) {
  const c = parseSetCookie(header);
  assert.equal(c.name, name);
  assert.ok(c.attributes.has("secure"), `${name} is Secure`);
  assert.ok(c.attributes.has("httponly"), `${name} is HttpOnly`);
  assert.equal(c.attributes.get("path"), "/");
  assert.equal(c.attributes.get("samesite"), "Lax");
  assert.ok(!c.attributes.has("domain"), `${name} has no Domain (the __Host- rules)`);
  return c;
}

Deno.test("behind an https public URL the login and session cookies are __Host-, Secure, HttpOnly and Lax", async () => {
  const idp = await startIdp();
  const secretFile = await Deno.makeTempFile({ prefix: "sosvault-oidc-secret-" });
  const secret = crypto.randomUUID();
  await Deno.writeTextFile(secretFile, secret + "\n");
  const server = await startServer({
    env: {
      SOSVAULT_AUTH: "oidc",
      SOSVAULT_OIDC_ISSUER: idp.issuer,
      SOSVAULT_PUBLIC_URL: PUBLIC_URL,
      SOSVAULT_OIDC_CLIENT_ID: "sosvault-connect",
      SOSVAULT_OIDC_CLIENT_SECRET_FILE: secretFile,
    },
  });
  idp.addClient({
    client_id: "sosvault-connect",
    client_secret: secret,
    token_endpoint_auth_method: "client_secret_basic",
    redirect_uris: [`${PUBLIC_URL}/oidc/callback`],
    grant_types: ["authorization_code"],
    response_types: ["code"],
  });
  try {
    await server.services.oidc!.keys.start();
    const { connect_url } = await server.services.connectLinks.create(
      {
        user: "alice",
        requestId: "req_cookie_test",
        source: "mcp",
      } as Parameters<typeof server.services.connectLinks.create>[0],
    );
    assert.ok(connect_url.startsWith(`${PUBLIC_URL}/connect/`), connect_url);
    const path = new URL(connect_url).pathname;

    // 1. The link sends the browser to the IdP with a login cookie.
    const start = await fetch(`${server.url}${path}`, { redirect: "manual" });
    await start.body?.cancel();
    assert.equal(start.status, 302);
    const [loginHeader] = start.headers.getSetCookie();
    const login = assertHostCookie(loginHeader, "__Host-sosvault_login");
    assert.ok(Number(login.attributes.get("max-age")) > 0);

    // 2. Alice signs in; the IdP sends her back to the public callback.
    idp.nextLogin = "alice";
    const back = await followAuthorization(
      start.headers.get("location")!,
      `${PUBLIC_URL}/oidc/callback`,
    );
    assert.equal(back.searchParams.get("state"), login.value);

    // 3. The callback (reached through the proxy) opens the session and clears the login cookie.
    const done = await fetch(`${server.url}/oidc/callback${back.search}`, {
      redirect: "manual",
      headers: { cookie: `${login.name}=${login.value}` },
    });
    await done.body?.cancel();
    assert.equal(done.status, 303);
    assert.equal(done.headers.get("location"), path);
    const cookies = done.headers.getSetCookie().map((h) => ({ h, c: parseSetCookie(h) }));
    const session = cookies.find(({ c }) => c.name === "__Host-sosvault_session");
    assert.ok(session, "a session cookie");
    assertHostCookie(session.h, "__Host-sosvault_session");
    const cleared = cookies.find(({ c }) => c.name === "__Host-sosvault_login");
    assert.ok(cleared, "the login cookie is cleared");
    assertHostCookie(cleared.h, "__Host-sosvault_login");
    assert.equal(cleared.c.attributes.get("max-age"), "0");

    // 4. With the session cookie the form is shown; the same value under the plain name is not
    // the session (a cookie set over http, without the prefix, cannot stand in for it).
    const page = await fetch(`${server.url}${path}`, {
      headers: { cookie: `__Host-sosvault_session=${session.c.value}` },
    });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /name="pat"/);
    const plain = await fetch(`${server.url}${path}`, {
      redirect: "manual",
      headers: { cookie: `sosvault_session=${session.c.value}` },
    });
    await plain.body?.cancel();
    assert.equal(plain.status, 302, "sent to the IdP again");
  } finally {
    await server.close();
    await idp.close();
    await Deno.remove(secretFile);
  }
});
