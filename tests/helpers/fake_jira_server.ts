// Serves a fake Jira over real loopback HTTPS for tests.
//
// TLS is terminated here with Deno.listenTls and the bytes are piped to an inner plain HTTP
// server. That keeps the wire at HTTP/1.1 (Deno.serve would offer h2, where Content-Length and
// chunked uploads look different from most Jira deployments), and it lets the fake drop a
// connection mid-upload for real: when the fake answers Response.error(), the TCP link is cut.

import { createFakeJira, type FakeJira, type FakeJiraSettings } from "../../src/jira/fake/mod.ts";

const TLS_DIR = new URL("../fixtures/tls/", import.meta.url);

export interface StartFakeJiraOptions extends FakeJiraSettings {
  /** "rogue" serves a chain the test CA does not sign, for TLS-failure tests. */
  tls?: "trusted" | "rogue";
  /** Serve this fake instead of a new one. */
  jira?: FakeJira;
  /** Serve this handler (e.g. the fake Jira Cloud) instead of a Data Center fake. */
  handler?: (req: Request) => Promise<Response>;
}

export interface RunningFakeJira {
  /** `https://127.0.0.1:PORT` plus the context path: Jira's base URL. */
  url: string;
  origin: string;
  port: number;
  jira: FakeJira;
  close(): Promise<void>;
}

/** The PEM of the CA that signs the trusted fake's certificate. */
export function testCaPem(): Promise<string> {
  return Deno.readTextFile(new URL("test-ca.pem", TLS_DIR));
}

/** An HTTP client that trusts the test CA; close it when done. */
export async function testHttpClient(): Promise<Deno.HttpClient> {
  return Deno.createHttpClient({ caCerts: [await testCaPem()] });
}

export async function startFakeJira(options: StartFakeJiraOptions = {}): Promise<RunningFakeJira> {
  const { tls = "trusted", jira: given, handler, ...settings } = options;
  const jira = given ?? createFakeJira(settings);
  const prefix = tls === "rogue" ? "rogue-server" : "server";
  const [cert, key] = await Promise.all([
    Deno.readTextFile(new URL(`${prefix}.pem`, TLS_DIR)),
    Deno.readTextFile(new URL(`${prefix}-key.pem`, TLS_DIR)),
  ]);

  // Inner links keyed by the local port of the inner connection, which the inner server sees
  // as the remote port.
  const links = new Map<number, { outer: Deno.Conn; inner: Deno.Conn }>();
  const pipes = new Set<Promise<void>>();

  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
  const port = listener.addr.port;
  const origin = `https://127.0.0.1:${port}`;

  const inner = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req, info) => {
      // The inner hop is plain HTTP; give the fake the URL the client actually used.
      const url = new URL(req.url);
      const outerUrl = `${origin}${url.pathname}${url.search}`;
      // Copy method, headers and the (still streaming) body, but not req.signal: reading it
      // opts into Deno.serve's legacy abort warning.
      const forwarded = new Request(outerUrl, {
        method: req.method,
        headers: req.headers,
        body: req.body,
      });
      const res = await (handler ? handler(forwarded) : jira.fetch(forwarded));
      if (res.type === "error") {
        const link = links.get(info.remoteAddr.port);
        if (link) closeLink(link);
        return new Response(null, { status: 500 });
      }
      return res;
    },
  );

  const accepting = (async () => {
    try {
      for await (const outer of listener) {
        const pipe = link(outer, inner.addr.port, links);
        pipes.add(pipe);
        pipe.finally(() => pipes.delete(pipe));
      }
    } catch {
      // The listener was closed.
    }
  })();

  const contextPath = settings.contextPath?.replace(/\/+$/, "") ?? "";
  const ctx = contextPath && !contextPath.startsWith("/") ? `/${contextPath}` : contextPath;
  return {
    url: `${origin}${ctx}`,
    origin,
    port,
    jira,
    async close() {
      listener.close();
      await accepting;
      for (const l of links.values()) closeLink(l);
      await Promise.allSettled([...pipes]);
      await inner.shutdown();
    },
  };
}

async function link(
  outer: Deno.TlsConn,
  innerPort: number,
  links: Map<number, { outer: Deno.Conn; inner: Deno.Conn }>,
): Promise<void> {
  let inner: Deno.TcpConn;
  try {
    inner = await Deno.connect({ hostname: "127.0.0.1", port: innerPort });
  } catch {
    closeQuietly(outer);
    return;
  }
  const pair = { outer, inner };
  const key = inner.localAddr.port;
  links.set(key, pair);
  // Failed TLS handshakes (the rogue-chain tests) and dropped links reject here; both are fine.
  await Promise.allSettled([
    outer.readable.pipeTo(inner.writable),
    inner.readable.pipeTo(outer.writable),
  ]);
  links.delete(key);
  closeLink(pair);
}

function closeLink(l: { outer: Deno.Conn; inner: Deno.Conn }): void {
  closeQuietly(l.outer);
  closeQuietly(l.inner);
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}
