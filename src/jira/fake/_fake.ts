// The fake Jira Server/Data Center as a web-standard request handler.

import {
  attachmentBean,
  errorCollection,
  formatJiraDate,
  issueBean,
  myselfBean,
  serverInfoBean,
  statusEntity,
} from "./_beans.ts";
import { formDataBoundary } from "./_multipart.ts";
import {
  deadLinkHtml,
  jiraEmpty,
  jiraHtml,
  jiraJson,
  type JiraReplyContext,
  jiraText,
  loginPageHtml,
  nginx413,
  nginx502,
  nginx503,
  oopsHtml,
  RATE_LIMIT_HEADERS,
  RATE_LIMITED_HTML,
  ssoRedirect,
  ssoSamlForm,
  tomcatNotFound,
  UNAUTHORIZED_HTML,
  wwwAuthenticate,
} from "./_responses.ts";
import { FakeJiraState, guessMimeType, type IssueRecord, type UserRecord } from "./_state.ts";
import type {
  FakeIssueInit,
  FakeIssueView,
  FakeJira,
  FakeJiraMode,
  FakeJiraSettings,
  FakeUserInit,
  RecordedRequest,
} from "./_types.ts";
import { readSome, readUpload } from "./_upload.ts";
import {
  type FakeChangeRequestInit,
  FakeCrData,
  type FakeRoleInit,
  type FakeWebhookOptions,
} from "./_cr.ts";

/** The demo issue every mock-mode user can attach to. */
export const MOCK_ATTACHABLE_ISSUE = "DEMO-1";
/** The demo issue mock-mode users can see but not attach to. */
export const MOCK_READ_ONLY_ISSUE = "DEMO-2";

/** What mock mode creates for a key it has not seen yet. */
function mockIssue(key: string): FakeIssueInit {
  return {
    key,
    summary: key === MOCK_READ_ONLY_ISSUE
      ? "Demo issue without Create Attachments permission"
      : `Mock issue ${key}`,
    attachers: key === MOCK_READ_ONLY_ISSUE ? [] : undefined,
  };
}

const DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024;
const DEFAULT_FAIL_AFTER_BYTES = 64 * 1024;

interface Auth {
  user?: UserRecord;
  /** An Authorization header was sent, valid or not. */
  attempted: boolean;
}

/** One request on its way through the fake. */
interface Exchange {
  req: Request;
  url: URL;
  /** The path below the context path. */
  path: string;
  rec: RecordedRequest;
  auth: Auth;
  reply: JiraReplyContext;
  base: string;
}

type Handler = (x: Exchange, match: RegExpExecArray) => Promise<Response> | Response;

/** Creates an empty fake Jira: add users, PATs and issues before use. */
export function createFakeJira(settings: FakeJiraSettings = {}): FakeJira {
  return new FakeJiraServer(settings);
}

class FakeJiraServer implements FakeJira {
  #settings: FakeJiraSettings;
  #state = new FakeJiraState();
  #cr = new FakeCrData();
  #mode: FakeJiraMode = "normal";
  #requests: RecordedRequest[] = [];
  #requestSeq = 0;
  #routes: Array<[method: string, path: RegExp, handler: Handler]> = [
    ["GET", /^\/rest\/api\/2\/myself$/, (x) => this.#myself(x)],
    ["GET", /^\/rest\/api\/2\/serverInfo$/, (x) => this.#serverInfo(x)],
    ["GET", /^\/rest\/api\/2\/attachment\/meta$/, (x) => this.#attachmentMeta(x)],
    ["GET", /^\/rest\/api\/2\/attachment\/([^/]+)$/, (x, m) => this.#getAttachment(x, m[1])],
    ["DELETE", /^\/rest\/api\/2\/attachment\/([^/]+)$/, (x, m) => this.#deleteAttachment(x, m[1])],
    ["GET", /^\/rest\/api\/2\/issue\/([^/]+)$/, (x, m) => this.#getIssue(x, m[1])],
    ["POST", /^\/rest\/api\/2\/issue\/([^/]+)\/attachments$/, (x, m) => this.#upload(x, m[1])],
    ["GET", /^\/rest\/api\/2\/project\/([^/]+)\/role$/, (x, m) => this.#roles(x, m[1])],
    ["GET", /^\/rest\/api\/2\/project\/([^/]+)\/role\/(\d+)$/, (x, m) => this.#role(x, m[1], m[2])],
    ["GET", /^\/rest\/api\/2\/user$/, (x) => this.#user(x)],
  ];

  constructor(settings: FakeJiraSettings) {
    this.#settings = { ...settings };
  }

  get requests(): RecordedRequest[] {
    return this.#requests;
  }

  get mode(): FakeJiraMode {
    return this.#mode;
  }

  clearRequests(): void {
    this.#requests.length = 0;
  }

  setMode(mode: FakeJiraMode): void {
    this.#mode = mode;
  }

  setOptions(patch: Partial<FakeJiraSettings>): void {
    this.#settings = { ...this.#settings, ...patch };
  }

  addUser(u: FakeUserInit): void {
    this.#state.addUser(u);
  }

  addPat(userName: string, pat: string): void {
    this.#state.addPat(userName, pat);
  }

  revokePat(pat: string): void {
    this.#state.revokePat(pat);
  }

  addIssue(i: FakeIssueInit): void {
    this.#state.addIssue(i, () => this.#jiraNow());
  }

  addChangeRequest(init: FakeChangeRequestInit): void {
    this.addIssue({ key: init.key, summary: `Change ${init.key}`, browsers: init.browsers });
    this.#cr.add(init);
  }

  transition(key: string, to: string, by: string): void {
    const user = this.#state.users.get(by);
    if (!user) throw new Error(`Fake Jira has no user named ${by}`);
    this.#cr.transition(key, to, user, this.#jiraNow());
  }

  setField(key: string, field: string, value: unknown): void {
    this.#cr.setField(key, field, value);
  }

  addProjectRole(project: string, name: string, init: FakeRoleInit): void {
    this.#cr.addRole(project, name, init);
  }

  addToGroup(group: string, user: string): void {
    this.#cr.addToGroup(group, user);
  }

  sendWebhook(url: string, options?: FakeWebhookOptions): Promise<Response> {
    return this.#cr.sendWebhook(url, options);
  }

  issue(keyOrId: string): FakeIssueView | undefined {
    const issue = this.#state.findIssue(keyOrId, () => this.#jiraNow());
    if (!issue) return undefined;
    return { key: issue.key, id: issue.id, attachments: issue.attachments.map((a) => ({ ...a })) };
  }

  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const rec = this.#record(req, url);
    let res: Response;
    try {
      res = await this.#handle(req, url, rec);
    } catch (e) {
      // A bug in the fake should look like Jira's own 500, not take the test server down.
      // Security: only the error's class is shown, never its message, which could hold input.
      res = new Response(oopsHtml(e instanceof Error ? e.name : "Error"), {
        status: 500,
        headers: { "Content-Type": "text/html;charset=UTF-8" },
      });
    }
    rec.status = res.type === "error" ? 0 : res.status;
    const latency = this.#settings.latencyMs ?? 0;
    if (latency > 0) await new Promise((r) => setTimeout(r, latency));
    return res;
  }

  #now(): Date {
    return this.#settings.now?.() ?? new Date();
  }

  #jiraNow(): string {
    return formatJiraDate(this.#now(), this.#settings.utcOffsetMinutes ?? -420);
  }

  #contextPath(): string {
    const raw = this.#settings.contextPath ?? "";
    const trimmed = raw.replace(/\/+$/, "");
    return trimmed === "" ? "" : trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
  }

  #record(req: Request, url: URL): RecordedRequest {
    const headers: Record<string, string> = {};
    for (const [k, v] of req.headers) headers[k] = v;
    if (this.#settings.redactRecordedAuthorization && headers.authorization) {
      const scheme = /^(\S+)\s/.exec(headers.authorization);
      headers.authorization = scheme ? `${scheme[1]} [redacted]` : "[redacted]";
    }
    const rec: RecordedRequest = {
      at: this.#now().toISOString(),
      method: req.method,
      path: url.pathname,
      query: url.search.replace(/^\?/, ""),
      headers,
      status: 0,
      violations: clientViolations(req),
    };
    this.#requests.push(rec);
    const max = this.#settings.maxRecordedRequests;
    if (max !== undefined && this.#requests.length > max) {
      this.#requests.splice(0, this.#requests.length - max);
    }
    return rec;
  }

  async #handle(req: Request, url: URL, rec: RecordedRequest): Promise<Response> {
    const ctx = this.#contextPath();
    if (ctx && url.pathname !== ctx && !url.pathname.startsWith(`${ctx}/`)) {
      return tomcatNotFound();
    }
    const path = url.pathname.slice(ctx.length) || "/";
    const isPost = req.method === "POST";
    const failAfter = this.#settings.failAfterBytes ?? DEFAULT_FAIL_AFTER_BYTES;

    // Gateways in front of Jira answer before Jira sees the request.
    switch (this.#mode) {
      case "sso_redirect":
        return ssoRedirect(req.url);
      case "sso_saml_form":
        return ssoSamlForm(req.url);
      case "unavailable":
        return nginx503();
      case "proxy_413":
        if (isPost) return nginx413();
        break;
      case "reset_mid_upload":
        if (isPost) {
          rec.bodyBytes = await readSome(req.body, failAfter);
          return Response.error();
        }
        break;
      case "bad_gateway_mid_upload":
        if (isPost) {
          rec.bodyBytes = await readSome(req.body, failAfter);
          return nginx502();
        }
        break;
    }

    const auth = this.#authenticate(req);
    rec.user = auth.user?.name;
    const base = (this.#settings.advertisedBaseUrl ?? `${url.origin}${ctx}`).replace(/\/+$/, "");
    const reply: JiraReplyContext = {
      requestId: this.#requestId(),
      userName: auth.user?.name,
      loginReason: auth.attempted ? (auth.user ? "OK" : "AUTHENTICATED_FAILED") : undefined,
      cookiePath: ctx || "/",
      baseUrl: base,
    };
    const x: Exchange = { req, url, path, rec, auth, reply, base };

    switch (this.#mode) {
      case "login_page":
        return jiraHtml(reply, 200, loginPageHtml());
      case "server_error":
        return jiraHtml(reply, 500, oopsHtml("java.lang.NullPointerException"));
      case "rate_limited":
        return jiraHtml(reply, 429, RATE_LIMITED_HTML, RATE_LIMIT_HEADERS);
    }

    let pathMatched = false;
    for (const [method, pattern, handler] of this.#routes) {
      const m = pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (method === req.method) return await handler(x, m);
    }
    if (pathMatched) {
      return jiraJson(reply, 405, statusEntity(405, "Method Not Allowed"));
    }
    if (path.startsWith("/rest/")) {
      // Jersey's answer for a path no REST resource matches.
      return jiraJson(reply, 404, statusEntity(404, `null for uri: ${req.url}`));
    }
    return jiraHtml(reply, 404, deadLinkHtml());
  }

  #authenticate(req: Request): Auth {
    const header = req.headers.get("authorization");
    if (header === null) return { attempted: false };
    const bearer = /^Bearer +(\S+) *$/i.exec(header);
    // Basic user:PAT is not the documented path and fails on many versions (JIRA_FACTS A.2).
    if (!bearer) return { attempted: true };
    const user = this.#state.userForPat(bearer[1], this.#settings.acceptAnyDcPat ?? false);
    return { user, attempted: true };
  }

  #requestId(): string {
    const now = this.#now();
    const minuteOfDay = now.getUTCHours() * 60 + now.getUTCMinutes();
    return `${minuteOfDay}x${++this.#requestSeq}x1`;
  }

  /** 401 for a request that needs a user: Seraph's answer if a PAT failed, else Jersey's. */
  #unauthorized(x: Exchange): Response {
    const extra = { "WWW-Authenticate": wwwAuthenticate(x.base) };
    if (x.auth.attempted && this.#settings.unauthorizedBody !== "json") {
      return jiraHtml(x.reply, 401, UNAUTHORIZED_HTML, extra);
    }
    const res = jiraJson(
      x.reply,
      401,
      statusEntity(401, "Client must be authenticated to access this resource."),
    );
    res.headers.set("WWW-Authenticate", extra["WWW-Authenticate"]);
    return res;
  }

  /** Jira's XSRF filter for mutations (JIRA_FACTS A.5). */
  #xsrfFailed(x: Exchange): Response | undefined {
    const token = x.req.headers.get("x-atlassian-token");
    if (token === "nocheck") x.rec.violations.push("deprecated X-Atlassian-Token nocheck");
    const userAgent = x.req.headers.get("user-agent") ?? "";
    // A browser-like User-Agent fails the check even with no-check (Atlassian KB).
    const ok = (token === "no-check" || token === "nocheck") && !userAgent.includes("Mozilla");
    return ok ? undefined : jiraText(x.reply, 403, "XSRF check failed");
  }

  #issueNotFound(x: Exchange): Response {
    return jiraJson(x.reply, 404, errorCollection("Issue Does Not Exist"));
  }

  #findIssue(x: Exchange, keyOrId: string): IssueRecord | undefined {
    const autoCreate = x.auth.user && this.#settings.acceptAnyDcPat ? mockIssue : undefined;
    return this.#state.findIssue(decodeSegment(keyOrId), () => this.#jiraNow(), autoCreate);
  }

  #myself(x: Exchange): Response {
    if (!x.auth.user) return this.#unauthorized(x);
    return jiraJson(x.reply, 200, myselfBean(x.base, x.auth.user));
  }

  #serverInfo(x: Exchange): Response {
    return jiraJson(x.reply, 200, serverInfoBean(x.base, this.#jiraNow()));
  }

  #attachmentMeta(x: Exchange): Response {
    if (!x.auth.user) return this.#unauthorized(x);
    return jiraJson(x.reply, 200, {
      enabled: this.#settings.attachmentsEnabled ?? true,
      uploadLimit: this.#settings.uploadLimit ?? DEFAULT_UPLOAD_LIMIT,
    });
  }

  #getIssue(x: Exchange, keyOrId: string): Response {
    // The trap of JIRA_FACTS A.2: with anonymous browse on, a dead PAT still gets a 200.
    const anonymousBrowse = this.#mode === "anonymous_ok";
    if (!x.auth.user && !anonymousBrowse) return this.#unauthorized(x);
    const issue = this.#findIssue(x, keyOrId);
    const visible = issue &&
      (x.auth.user ? this.#state.canBrowse(issue, x.auth.user) : anonymousBrowse);
    if (!issue || !visible) return this.#issueNotFound(x);
    const enabled = this.#settings.attachmentsEnabled ?? true;
    const fields = x.url.searchParams.get("fields");
    const bean = issueBean(x.base, issue, fields, enabled, this.#state.users);
    const expand = x.url.searchParams.get("expand");
    this.#cr.decorate(bean, issue.key, x.base, fields, expand, this.#state.users);
    return jiraJson(x.reply, 200, bean);
  }

  #roles(x: Exchange, project: string): Response {
    if (!x.auth.user) return this.#unauthorized(x);
    const bean = this.#cr.rolesBean(decodeSegment(project), x.base);
    if (!bean) {
      return jiraJson(
        x.reply,
        404,
        errorCollection(`No project could be found with key '${decodeSegment(project)}'.`),
      );
    }
    return jiraJson(x.reply, 200, bean);
  }

  #role(x: Exchange, project: string, id: string): Response {
    if (!x.auth.user) return this.#unauthorized(x);
    const bean = this.#cr.roleBean(decodeSegment(project), id, x.base, this.#state.users);
    if (!bean) return jiraJson(x.reply, 404, errorCollection("Can not find project role."));
    return jiraJson(x.reply, 200, bean);
  }

  /** GET user?username=…&expand=groups (UserBean with its groups). */
  #user(x: Exchange): Response {
    if (!x.auth.user) return this.#unauthorized(x);
    const name = x.url.searchParams.get("username") ?? "";
    const u = this.#state.users.get(name);
    if (!u) {
      return jiraJson(x.reply, 404, errorCollection(`The user named '${name}' does not exist`));
    }
    const bean = myselfBean(x.base, u);
    const groups = this.#cr.groupsOf(u.name);
    bean.groups = {
      size: groups.length,
      items: groups.map((g) => ({
        name: g,
        self: `${x.base}/rest/api/2/group?groupname=${encodeURIComponent(g)}`,
      })),
    };
    return jiraJson(x.reply, 200, bean);
  }

  #getAttachment(x: Exchange, id: string): Response {
    if (!x.auth.user) return this.#unauthorized(x);
    const found = this.#state.findAttachment(decodeSegment(id));
    if (!found || !(this.#settings.attachmentsEnabled ?? true)) {
      return jiraJson(
        x.reply,
        404,
        errorCollection(`The attachment with id '${decodeSegment(id)}' does not exist`),
      );
    }
    if (!this.#state.canBrowse(found.issue, x.auth.user)) {
      return jiraJson(
        x.reply,
        403,
        errorCollection(
          `You do not have permission to view attachment with id: ${found.attachment.id}`,
        ),
      );
    }
    const author = this.#state.users.get(found.attachment.author);
    return jiraJson(x.reply, 200, attachmentBean(x.base, found.attachment, author));
  }

  #deleteAttachment(x: Exchange, id: string): Response {
    if (!x.auth.user) return this.#unauthorized(x);
    const xsrf = this.#xsrfFailed(x);
    if (xsrf) return xsrf;
    const found = this.#state.findAttachment(decodeSegment(id));
    if (!found || !(this.#settings.attachmentsEnabled ?? true)) {
      return jiraJson(
        x.reply,
        404,
        errorCollection(`The attachment with id '${decodeSegment(id)}' does not exist`),
      );
    }
    // Only "Delete Own Attachments" is modelled: authors may delete what they uploaded.
    if (found.attachment.author !== x.auth.user.name) {
      return jiraJson(
        x.reply,
        403,
        errorCollection(
          "You do not have permission to delete attachment with id: " + found.attachment.id,
        ),
      );
    }
    this.#state.deleteAttachment(found.attachment.id);
    return jiraEmpty(x.reply, 204);
  }

  /** POST attachments, checked in the order Jira's filters and resource apply (A.5). */
  async #upload(x: Exchange, keyOrId: string): Promise<Response> {
    const { req, rec } = x;
    const length = req.headers.get("content-length");
    rec.contentLength = length === null ? null : Number(length);
    rec.transferEncoding = req.headers.get("transfer-encoding");
    if (!x.auth.user) return this.#unauthorized(x);
    const xsrf = this.#xsrfFailed(x);
    if (xsrf) return xsrf;
    const boundary = formDataBoundary(req.headers.get("content-type"));
    // Jersey refuses other media types before the resource runs, with an empty body.
    if (boundary === undefined) return jiraEmpty(x.reply, 415);
    const issue = this.#findIssue(x, keyOrId);
    if (!issue || !this.#state.canBrowse(issue, x.auth.user)) return this.#issueNotFound(x);
    if (!(this.#settings.attachmentsEnabled ?? true)) {
      return jiraJson(
        x.reply,
        403,
        errorCollection("Attachments have been disabled for this instance of JIRA."),
      );
    }
    if (!this.#state.canAttach(issue, x.auth.user)) {
      return jiraJson(
        x.reply,
        403,
        errorCollection("You do not have permission to create attachments for this issue."),
      );
    }
    if (!issue.editable) {
      return jiraJson(
        x.reply,
        403,
        errorCollection(
          "You can not create attachments as the issue is in a non-editable workflow state.",
        ),
      );
    }
    const uploadLimit = this.#settings.uploadLimit ?? DEFAULT_UPLOAD_LIMIT;
    const result = await readUpload(req.body, boundary, {
      uploadLimit,
      bytesPerSecond: this.#settings.uploadBytesPerSecond,
    }, rec);
    switch (result.kind) {
      case "too_large":
        // Jira lets commons-fileupload's message through as a 404 (bobcarroll/jira-client#119).
        return jiraText(
          x.reply,
          404,
          `The field ${result.field} exceeds its maximum permitted size of ${result.limit} bytes.`,
        );
      case "no_filename":
        return jiraHtml(
          x.reply,
          500,
          oopsHtml(
            "java.lang.NullPointerException: Cannot create attachment without a filename - inline content?",
          ),
        );
      case "malformed":
        return jiraHtml(
          x.reply,
          500,
          oopsHtml(`org.apache.commons.fileupload.FileUploadException: ${result.message}`),
        );
      case "aborted":
        return jiraText(x.reply, 400, "Client aborted the upload");
      case "ok": {
        const user = x.auth.user;
        const created = result.files.map((f) =>
          this.#state.addAttachment(issue, {
            filename: f.filename ?? "",
            size: f.bytes,
            mimeType: partMimeType(f.contentType, f.filename ?? ""),
            author: user.name,
            created: this.#jiraNow(),
            sha256: f.sha256,
          })
        );
        return jiraJson(x.reply, 200, created.map((a) => attachmentBean(x.base, a, user)));
      }
    }
  }
}

/** Mistakes a real Jira or a proxy in front of it may punish (JIRA_FACTS A.11 item 9). */
function clientViolations(req: Request): string[] {
  const v: string[] = [];
  const h = req.headers;
  const auth = h.get("authorization");
  if (auth === null) v.push("missing Authorization");
  else if (!/^Bearer /.test(auth)) v.push("Authorization is not Bearer");
  if (h.has("cookie")) v.push("cookie sent");
  if (h.has("origin")) v.push("origin sent");
  if (h.has("referer")) v.push("referer sent");
  if ((h.get("user-agent") ?? "").includes("Mozilla")) v.push("browser user-agent");
  if (req.method !== "GET" && req.method !== "HEAD") {
    const token = h.get("x-atlassian-token");
    if (token === null) v.push("missing X-Atlassian-Token");
    else if (token !== "no-check" && token !== "nocheck") {
      v.push("X-Atlassian-Token is not no-check");
    }
  }
  return v;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Jira keeps the part's declared type unless it is the generic octet-stream. */
function partMimeType(contentType: string | undefined, filename: string): string {
  const declared = contentType?.split(";")[0].trim().toLowerCase();
  if (declared && declared !== "application/octet-stream") return declared;
  return guessMimeType(filename);
}
