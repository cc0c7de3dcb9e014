/**
 * How Jira requests leave the process. The real transport is `fetch` through a Deno HTTP client
 * that trusts JIRA_CA_FILE; mock mode hands requests to the embedded fake Jira in-process.
 */
export type JiraTransport = (request: Request) => Promise<Response>;

export function httpTransport(caPem?: string): JiraTransport {
  // No cookie jar, no connection reuse across trust settings: one client per process.
  const client = caPem ? Deno.createHttpClient({ caCerts: [caPem] }) : undefined;
  return (request) => fetch(request, client ? { client } : {});
}

export function inProcessTransport(handler: (req: Request) => Promise<Response>): JiraTransport {
  return (request) => handler(request);
}
