// Response builders: Jira's common headers (JIRA_FACTS A.1) and the non-JSON pages that real
// Jira, Tomcat, nginx and SSO gateways send, so clients learn to classify by status and type.

export type LoginReason = "OK" | "AUTHENTICATED_FAILED";

/** What Jira's own responses need to carry its usual headers. */
export interface JiraReplyContext {
  requestId: string;
  userName?: string;
  /** Present only when the request attempted authentication. */
  loginReason?: LoginReason;
  /** Jira's cookie path: the context path, or "/". */
  cookiePath: string;
  /** Used for the realm in WWW-Authenticate. */
  baseUrl: string;
}

const JSON_TYPE = "application/json;charset=UTF-8";
const HTML_TYPE = "text/html;charset=UTF-8";
const TEXT_TYPE = "text/plain;charset=UTF-8";

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

function xsrfTokenId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const random = crypto.getRandomValues(new Uint8Array(16));
  const chars = Array.from(random, (b) => alphabet[b % alphabet.length]).join("");
  return chars.match(/.{4}/g)!.join("-");
}

/** The headers Jira Server/DC puts on every response it generates itself. */
export function jiraHeaders(ctx: JiraReplyContext, contentType?: string): Headers {
  const h = new Headers({
    "X-AREQUESTID": ctx.requestId,
    "X-AUSERNAME": ctx.userName ?? "anonymous",
    "X-ASEN": "SEN-L12345678",
    "Cache-Control": "no-cache, no-store, no-transform",
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1; mode=block",
  });
  if (contentType) h.set("Content-Type", contentType);
  if (ctx.loginReason) h.set("X-Seraph-LoginReason", ctx.loginReason);
  const state = ctx.userName ? "lin" : "lout";
  h.append(
    "Set-Cookie",
    `atlassian.xsrf.token=${xsrfTokenId()}_${
      randomHex(20)
    }_${state}; Path=${ctx.cookiePath}; Secure`,
  );
  if (ctx.userName) {
    // Jira opens a session even for token calls; a client that replays it is recorded as
    // "cookie sent", since a shared jar could run one user's request as another.
    const session = randomHex(16).toUpperCase();
    h.set("X-ASESSIONID", session.slice(0, 8).toLowerCase());
    h.append("Set-Cookie", `JSESSIONID=${session}; Path=${ctx.cookiePath}; Secure; HttpOnly`);
  }
  return h;
}

export function jiraJson(ctx: JiraReplyContext, status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: jiraHeaders(ctx, JSON_TYPE),
  });
}

export function jiraEmpty(ctx: JiraReplyContext, status: number): Response {
  return new Response(null, { status, headers: jiraHeaders(ctx) });
}

export function jiraText(ctx: JiraReplyContext, status: number, text: string): Response {
  return new Response(text, { status, headers: jiraHeaders(ctx, TEXT_TYPE) });
}

export function jiraHtml(
  ctx: JiraReplyContext,
  status: number,
  html: string,
  extra?: Record<string, string>,
): Response {
  const headers = jiraHeaders(ctx, HTML_TYPE);
  for (const [k, v] of Object.entries(extra ?? {})) headers.set(k, v);
  return new Response(html, { status, headers });
}

export function wwwAuthenticate(baseUrl: string): string {
  return `OAuth realm="${encodeURIComponent(baseUrl)}"`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Seraph's page for a failed login (ahungry/org-jira#224). */
export const UNAUTHORIZED_HTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Unauthorized (401)</title>
</head>
<body id="jira" class="aui-layout aui-style-default page-type-message">
<div class="aui-page-panel"><div class="aui-page-panel-inner"><section class="aui-page-panel-content">
<h1>Unauthorized (401)</h1>
<div class="aui-message aui-message-warning warning">
<p>Encountered a &quot;401 - Unauthorized&quot; error while loading this page.</p>
<p>Basic Authentication Failure - Reason : AUTHENTICATED_FAILED</p>
<p><a href="/secure/MyJiraHome.jspa">Go to Jira home</a></p>
</div>
</section></div></div>
</body>
</html>
`;

/** Jira's page for a path it does not serve. */
export function deadLinkHtml(): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Oops, you&#39;ve found a dead link. - Jira</title>
<meta name="application-name" content="JIRA" data-name="jira" data-version="9.12.2">
</head>
<body id="jira" class="aui-layout aui-style-default page-type-message">
<h1>Oops, you&#39;ve found a dead link.</h1>
<p><a href="/secure/MyJiraHome.jspa">Go to Jira home</a></p>
</body>
</html>
`;
}

/** Tomcat's page for a path outside any web application (e.g. a missing context path). */
export function tomcatNotFound(): Response {
  const html = `<!doctype html><html lang="en"><head><title>HTTP Status 404 – Not Found</title>` +
    `</head><body><h1>HTTP Status 404 – Not Found</h1><hr class="line" /><p><b>Type</b> Status ` +
    `Report</p><p><b>Description</b> The origin server did not find a current representation ` +
    `for the target resource or is not willing to disclose that one exists.</p>` +
    `<hr class="line" /><h3>Apache Tomcat/9.0.82</h3></body></html>`;
  return new Response(html, {
    status: 404,
    headers: { "Content-Type": "text/html;charset=utf-8" },
  });
}

/** Jira's 500 page; `detail` is the exception Jira shows in its technical details. */
export function oopsHtml(detail: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Oops - an error has occurred</title>
<meta name="application-name" content="JIRA" data-name="jira" data-version="9.12.2">
</head>
<body id="jira" class="aui-layout aui-style-default page-type-message">
<h1>System error</h1>
<div class="aui-message aui-message-error">
<p>Oops - an error has occurred</p>
</div>
<pre class="technical-details">${escapeHtml(detail)}</pre>
</body>
</html>
`;
}

/** The page Jira's login redirect ends on (Qytera-Gmbh/cypress-xray-plugin#511). */
export function loginPageHtml(): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Log in - Jira</title>
<meta name="application-name" content="JIRA" data-name="jira" data-version="9.12.2">
</head>
<body id="jira" class="aui-layout aui-style-default page-type-login">
<form id="login-form" method="post" action="/login.jsp" class="aui">
<input type="text" name="os_username" id="login-form-username">
<input type="password" name="os_password" id="login-form-password">
<input type="submit" id="login-form-submit" value="Log In">
</form>
</body>
</html>
`;
}

/** The Tomcat 429 page Jira DC's rate limiter sends (ahungry/org-jira#365). */
export const RATE_LIMITED_HTML = `<!doctype html><html lang="en"><head>` +
  `<title>HTTP Status 429 – Too Many Requests</title></head><body>` +
  `<h1>HTTP Status 429 – Too Many Requests</h1><hr class="line" /><p><b>Type</b> Status ` +
  `Report</p><p><b>Message</b> Rate limit exceeded</p><p><b>Description</b> The user has sent ` +
  `too many requests in a given amount of time (&quot;rate limiting&quot;).</p>` +
  `<hr class="line" /><h3>Apache Tomcat/9.0.82</h3></body></html>`;

/** The headers Jira DC's rate limiter adds (JIRA_FACTS A.7). */
export const RATE_LIMIT_HEADERS = {
  "Retry-After": "2",
  "X-RateLimit-Limit": "5",
  "X-RateLimit-Remaining": "0",
  "X-RateLimit-FillRate": "5",
  "X-RateLimit-Interval-Seconds": "1",
};

/** A gateway or proxy response: none of Jira's headers, because Jira never saw the request. */
function gateway(status: number, body: string, headers: Record<string, string>): Response {
  return new Response(body, { status, headers });
}

function nginxPage(status: string): string {
  return `<html>\r\n<head><title>${status}</title></head>\r\n<body>\r\n` +
    `<center><h1>${status}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

const NGINX_HEADERS = { "Content-Type": "text/html", Server: "nginx", Connection: "close" };

export function nginx413(): Response {
  return gateway(413, nginxPage("413 Request Entity Too Large"), NGINX_HEADERS);
}

export function nginx502(): Response {
  return gateway(502, nginxPage("502 Bad Gateway"), NGINX_HEADERS);
}

export function nginx503(): Response {
  return gateway(503, nginxPage("503 Service Temporarily Unavailable"), NGINX_HEADERS);
}

/** An SSO gateway bouncing the request to its identity provider. */
export function ssoRedirect(requestUrl: string): Response {
  const samlRequest = btoa(`<samlp:AuthnRequest ID="_${randomHex(16)}" Version="2.0"/>`);
  const location = `https://idp.example/sso?SAMLRequest=${encodeURIComponent(samlRequest)}` +
    `&RelayState=${encodeURIComponent(requestUrl)}`;
  return gateway(302, "", { Location: location, "Content-Length": "0" });
}

/** What a client that follows the SSO redirect ends on: an auto-posting SAML form. */
export function ssoSamlForm(requestUrl: string): Response {
  const samlRequest = btoa(`<samlp:AuthnRequest ID="_${randomHex(16)}" Version="2.0"/>`);
  const html = `<!DOCTYPE html>
<html>
<head><title>Redirecting...</title></head>
<body onload="document.forms[0].submit()">
<noscript><p>JavaScript is disabled. Click Continue to proceed.</p></noscript>
<form method="POST" action="https://idp.example/app/jira/sso/saml">
<input type="hidden" name="SAMLRequest" value="${samlRequest}"/>
<input type="hidden" name="RelayState" value="${escapeHtml(requestUrl)}"/>
<noscript><input type="submit" value="Continue"/></noscript>
</form>
</body>
</html>
`;
  return gateway(200, html, { "Content-Type": "text/html;charset=UTF-8" });
}
