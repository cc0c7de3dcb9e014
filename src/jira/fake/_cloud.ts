// The fake Jira Cloud site (and the part of Atlassian's API gateway that fronts it), as a
// web-standard handler. It follows the Cloud facts recorded in the README's Jira section:
// serverInfo says deploymentType "Cloud"; Basic e-mail + API token only; accountIds, no user
// names; REST v3 (v2 answers too); `/_edge/tenant_info` gives the cloudId; scoped tokens work
// only through `/ex/jira/{cloudId}/…` and are refused on the site URL; the gateway refuses a
// route whose scope the token lacks; repeated failed logins put the account into a CAPTCHA
// state; 429s carry Retry-After and X-RateLimit-* headers. Change requests for the approval
// gate answer in Cloud's shapes (src/approval/JIRA_ENDPOINTS.md, "Jira Cloud"): changelog
// authors by accountId, a truncated embedded changelog with the paged `issue/{key}/changelog`,
// project role actors with `actorUser`/`actorGroup`, and `user/groups?accountId=`.

import { formatJiraDate } from "./_beans.ts";
import { formDataBoundary } from "./_multipart.ts";
import { readUpload } from "./_upload.ts";
import { guessMimeType } from "./_state.ts";
import type { FakeAttachment, RecordedRequest } from "./_types.ts";
import { type FakeChangeRequestInit, FakeCrData, type FakeRoleInit } from "./_cr.ts";

/** The scopes of a classic token's reach that sosvault's routes need (see the README). */
export const CLOUD_SCOPES = ["read:jira-user", "read:jira-work", "write:jira-work"] as const;

export interface FakeCloudOptions {
  /** The site's cloudId (a UUID). */
  cloudId?: string;
  /** attachment/meta's uploadLimit, enforced per part. Default 1 GiB + 1 MiB. */
  uploadLimit?: number;
  /**
   * Mock mode: any e-mail with a token of Atlassian shape (`ATATT3…`) is an account; a token
   * that contains `SCOPED` is a scoped token with every scope sosvault needs.
   */
  acceptAnyToken?: boolean;
  /** Failed logins of one account before it needs a CAPTCHA. Default 3. */
  failedLoginsBeforeCaptcha?: number;
  maxRecordedRequests?: number;
  redactRecordedAuthorization?: boolean;
  now?: () => Date;
  /** How many changelog histories an issue bean embeds before `total` says there are more. */
  changelogEmbedLimit?: number;
}

export interface FakeCloudTokenInit {
  /** A scoped token: refused on the site URL, accepted through the gateway. */
  scoped?: boolean;
  /** A scoped token's scopes; default all of CLOUD_SCOPES. */
  scopes?: string[];
}

export interface FakeCloudIssueInit {
  key: string;
  /** E-mails of the accounts that may browse it; default everyone. Others get 404. */
  browsers?: string[];
  /** E-mails of the accounts that may attach; default every browser. Others get 403. */
  attachers?: string[];
  /** Attachments already on the issue (any file name, as anyone in Jira could give it). */
  attachments?: Array<{ filename: string; size: number; author?: string }>;
}

export interface FakeJiraCloud {
  fetch(req: Request): Promise<Response>;
  readonly cloudId: string;
  /** Adds an Atlassian account; returns its accountId. */
  addAccount(a: { email: string; displayName: string; accountId?: string }): string;
  addToken(email: string, token: string, init?: FakeCloudTokenInit): void;
  revokeToken(token: string): void;
  addIssue(i: FakeCloudIssueInit): void;
  issue(key: string): { key: string; id: string; attachments: FakeAttachment[] } | undefined;
  /**
   * The next `count` authenticated requests (of `method` only, when given) answer 429 with
   * Retry-After `seconds`.
   */
  rateLimit(count: number, seconds: number, method?: string): void;
  /** Whether the account must pass a CAPTCHA in a browser before any API login works again. */
  captchaRequired(email: string): boolean;
  /** The person logged in once in a browser: API logins work again. */
  solveCaptcha(email: string): void;
  readonly requests: RecordedRequest[];
  clearRequests(): void;
  /** A change request (an issue with workflow status, labels, custom fields and a changelog). */
  addChangeRequest(init: FakeChangeRequestInit): void;
  /** A workflow transition by the account with this e-mail, recorded in the changelog. */
  transition(key: string, to: string, byEmail: string): void;
  setField(key: string, field: string, value: unknown): void;
  /** A project role; `users` are the e-mails of its user actors, `groups` group names. */
  addProjectRole(project: string, name: string, init: FakeRoleInit): void;
  addToGroup(group: string, email: string): void;
}

interface Account {
  accountId: string;
  email: string;
  displayName: string;
  failures: number;
  captcha: boolean;
}

interface Token {
  email: string;
  scoped: boolean;
  scopes: Set<string>;
}

interface Issue {
  key: string;
  id: string;
  browsers?: Set<string>;
  attachers?: Set<string>;
  attachments: FakeAttachment[];
}

interface Caller {
  account?: Account;
  token?: Token;
  /** Why there is no account: the answer to give. */
  refusal?: "captcha" | "failed";
}

const ISSUE_KEY = /^[A-Z][A-Z0-9_]{1,254}-[1-9][0-9]*$/;
const RATE_LIMIT = 350;

export function createFakeJiraCloud(options: FakeCloudOptions = {}): FakeJiraCloud {
  return new FakeCloud(options);
}

class FakeCloud implements FakeJiraCloud {
  readonly cloudId: string;
  readonly requests: RecordedRequest[] = [];
  #o: FakeCloudOptions;
  #accounts = new Map<string, Account>();
  // Security: tokens live only in this in-memory map; nothing serialises or logs it.
  #tokens = new Map<string, Token>();
  #revoked = new Set<string>();
  #issues = new Map<string, Issue>();
  #nextIssueId = 10001;
  #nextAttachmentId = 10400;
  #limited = 0;
  #limitSeconds = 0;
  #limitMethod: string | undefined;
  #cr = new FakeCrData();

  constructor(options: FakeCloudOptions) {
    this.#o = options;
    this.cloudId = options.cloudId ?? crypto.randomUUID();
  }

  addAccount(a: { email: string; displayName: string; accountId?: string }): string {
    const accountId = a.accountId ?? `712020:${crypto.randomUUID()}`;
    this.#accounts.set(a.email.toLowerCase(), {
      accountId,
      email: a.email,
      displayName: a.displayName,
      failures: 0,
      captcha: false,
    });
    return accountId;
  }

  addToken(email: string, token: string, init: FakeCloudTokenInit = {}): void {
    if (!this.#accounts.has(email.toLowerCase())) throw new Error(`no account ${email}`);
    this.#tokens.set(token, {
      email: email.toLowerCase(),
      scoped: init.scoped ?? false,
      scopes: new Set(init.scopes ?? CLOUD_SCOPES),
    });
    this.#revoked.delete(token);
  }

  revokeToken(token: string): void {
    this.#tokens.delete(token);
    this.#revoked.add(token);
  }

  addIssue(i: FakeCloudIssueInit): void {
    const lower = (xs?: string[]) => xs && new Set(xs.map((x) => x.toLowerCase()));
    this.#issues.set(i.key, {
      key: i.key,
      id: String(this.#nextIssueId++),
      browsers: lower(i.browsers),
      attachers: lower(i.attachers),
      attachments: (i.attachments ?? []).map((a) => ({
        id: String(this.#nextAttachmentId++),
        filename: a.filename,
        size: a.size,
        mimeType: guessMimeType(a.filename),
        created: formatJiraDate(this.#o.now?.() ?? new Date(), 0),
        author: a.author ?? "",
      })),
    });
  }

  issue(key: string) {
    const i = this.#issues.get(key);
    return i && { key: i.key, id: i.id, attachments: i.attachments.map((a) => ({ ...a })) };
  }

  rateLimit(count: number, seconds: number, method?: string): void {
    this.#limited = count;
    this.#limitSeconds = seconds;
    this.#limitMethod = method;
  }

  captchaRequired(email: string): boolean {
    return this.#accounts.get(email.toLowerCase())?.captcha ?? false;
  }

  solveCaptcha(email: string): void {
    const a = this.#accounts.get(email.toLowerCase());
    if (a) {
      a.captcha = false;
      a.failures = 0;
    }
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  addChangeRequest(init: FakeChangeRequestInit): void {
    this.addIssue({ key: init.key, browsers: init.browsers });
    this.#cr.add(init);
  }

  transition(key: string, to: string, byEmail: string): void {
    const at = formatJiraDate(this.#o.now?.() ?? new Date(), 0);
    this.#cr.transitionAs(key, to, this.#accountId(byEmail), at);
  }

  setField(key: string, field: string, value: unknown): void {
    this.#cr.setField(key, field, value);
  }

  addProjectRole(project: string, name: string, init: FakeRoleInit): void {
    this.#cr.addRole(project, name, {
      users: (init.users ?? []).map((e) => this.#accountId(e)),
      groups: init.groups,
    });
  }

  addToGroup(group: string, email: string): void {
    this.#cr.addToGroup(group, this.#accountId(email));
  }

  #accountId(email: string): string {
    const a = this.#accounts.get(email.toLowerCase());
    if (!a) throw new Error(`no account ${email}`);
    return a.accountId;
  }

  /** A changelog author or role actor as Cloud shows another account: no e-mail, no name. */
  #author(base: string): (accountId: string) => Record<string, unknown> {
    return (accountId) => {
      const a = [...this.#accounts.values()].find((x) => x.accountId === accountId);
      return a ? this.#user(base, a, false) : { accountId };
    };
  }

  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const rec = this.#record(req, url);
    let res: Response;
    try {
      res = await this.#handle(req, url, rec);
    } catch (e) {
      res = json(500, { errorMessages: [`Internal server error (${(e as Error).name})`] });
    }
    rec.status = res.status;
    return res;
  }

  #record(req: Request, url: URL): RecordedRequest {
    const headers: Record<string, string> = {};
    for (const [k, v] of req.headers) headers[k] = v;
    if (this.#o.redactRecordedAuthorization && headers.authorization) {
      headers.authorization = headers.authorization.replace(/^(\S+)\s.*$/, "$1 [redacted]");
    }
    const violations: string[] = [];
    if (headers.cookie) violations.push("cookie sent");
    if ((headers["user-agent"] ?? "").includes("Mozilla")) violations.push("browser user-agent");
    const rec: RecordedRequest = {
      at: (this.#o.now?.() ?? new Date()).toISOString(),
      method: req.method,
      path: url.pathname,
      query: url.search.replace(/^\?/, ""),
      headers,
      status: 0,
      violations,
    };
    this.requests.push(rec);
    const max = this.#o.maxRecordedRequests;
    if (max !== undefined && this.requests.length > max) {
      this.requests.splice(0, this.requests.length - max);
    }
    return rec;
  }

  async #handle(req: Request, url: URL, rec: RecordedRequest): Promise<Response> {
    let path = url.pathname;
    let viaGateway = false;
    const gw = /^\/ex\/jira\/([^/]+)(\/.*)?$/.exec(path);
    if (gw) {
      // The gateway routes by cloudId; an unknown one is no site at all.
      if (decodeURIComponent(gw[1]) !== this.cloudId) {
        return json(404, { code: 404, message: "Not Found" });
      }
      viaGateway = true;
      path = gw[2] ?? "/";
    }
    if (!viaGateway && req.method === "GET" && path === "/_edge/tenant_info") {
      return json(200, { cloudId: this.cloudId });
    }
    const api = /^\/rest\/api\/(2|3|latest)(\/.*)$/.exec(path);
    if (!api) return html(404, "<html><body>Page not found</body></html>");
    const route = api[2];
    const base = url.origin;
    if (req.method === "GET" && route === "/serverInfo") {
      return json(200, {
        baseUrl: base,
        displayUrl: base,
        version: "1001.0.0-SNAPSHOT",
        versionNumbers: [1001, 0, 0],
        deploymentType: "Cloud",
        buildNumber: 100280,
        serverTime: formatJiraDate(this.#o.now?.() ?? new Date(), 0),
        scmInfo: "0000000000000000000000000000000000000000",
        serverTitle: "Jira",
      });
    }
    const caller = this.#authenticate(req, viaGateway);
    rec.user = caller.account?.accountId;
    if (caller.refusal === "captcha") {
      // Atlassian's login throttle: even the right token fails until a browser login.
      return json(403, { errorMessages: ["CAPTCHA_CHALLENGE"] }, {
        "X-Seraph-LoginReason": "AUTHENTICATION_DENIED",
        "X-Authentication-Denied-Reason": `CAPTCHA_CHALLENGE; login-url=${base}/login.jsp`,
      });
    }
    if (!caller.account) {
      return json(
        401,
        { errorMessages: ["Client must be authenticated to access this resource."] },
        {
          "X-Seraph-LoginReason": caller.refusal === "failed" ? "AUTHENTICATED_FAILED" : "",
          "WWW-Authenticate": 'Basic realm="protected-area"',
        },
      );
    }
    const needed = scopeOf(req.method, route);
    if (viaGateway && caller.token?.scoped && needed && !caller.token.scopes.has(needed)) {
      // The gateway checks scopes before Jira sees the request.
      return json(401, { code: 401, message: "Unauthorized; scope does not match" });
    }
    if (this.#limited > 0 && (!this.#limitMethod || this.#limitMethod === req.method)) {
      this.#limited--;
      const reset = new Date((this.#o.now?.() ?? new Date()).getTime() + this.#limitSeconds * 1000);
      return json(429, { errorMessages: ["Rate limit exceeded."] }, {
        "Retry-After": String(this.#limitSeconds),
        "X-RateLimit-Limit": String(RATE_LIMIT),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": reset.toISOString().replace(/:\d\d\.\d{3}Z$/, "Z"),
        "RateLimit-Reason": "jira-burst-based",
      });
    }
    const account = caller.account;
    const m = (re: RegExp) => re.exec(route);
    if (req.method === "GET" && route === "/myself") return ok(this.#user(base, account, true));
    if (req.method === "GET" && route === "/attachment/meta") {
      return ok({ enabled: true, uploadLimit: this.#o.uploadLimit ?? 1024 ** 3 + 1024 ** 2 });
    }
    const issueGet = m(/^\/issue\/([^/]+)$/);
    if (req.method === "GET" && issueGet) {
      const issue = this.#find(decodeURIComponent(issueGet[1]), account);
      if (!issue) return notVisible();
      const bean: Record<string, unknown> = {
        id: issue.id,
        key: issue.key,
        self: `${base}/rest/api/3/issue/${issue.id}`,
        fields: { attachment: issue.attachments.map((a) => this.#bean(base, a)) },
      };
      this.#cr.decorateCloud(
        bean,
        issue.key,
        base,
        url.searchParams.get("fields"),
        url.searchParams.get("expand"),
        this.#author(base),
        this.#o.changelogEmbedLimit ?? 100,
      );
      return ok(bean);
    }
    const changelog = m(/^\/issue\/([^/]+)\/changelog$/);
    if (req.method === "GET" && changelog) {
      const issue = this.#find(decodeURIComponent(changelog[1]), account);
      if (!issue) return notVisible();
      const num = (name: string, fallback: number) => {
        const v = Number(url.searchParams.get(name) ?? fallback);
        return Number.isInteger(v) && v >= 0 ? v : fallback;
      };
      const page = this.#cr.changelogPage(
        issue.key,
        num("startAt", 0),
        num("maxResults", 100),
        base,
        this.#author(base),
      );
      return ok(
        page ?? { startAt: 0, maxResults: 100, total: 0, isLast: true, values: [] },
      );
    }
    const roles = m(/^\/project\/([^/]+)\/role$/);
    if (req.method === "GET" && roles) {
      const project = decodeURIComponent(roles[1]);
      const bean = this.#cr.rolesBean(project, base, "3");
      if (!bean) {
        return json(404, {
          errorMessages: [`No project could be found with key '${project}'.`],
          errors: {},
        });
      }
      return ok(bean);
    }
    const role = m(/^\/project\/([^/]+)\/role\/(\d+)$/);
    if (req.method === "GET" && role) {
      const author = this.#author(base);
      const bean = this.#cr.cloudRoleBean(
        decodeURIComponent(role[1]),
        role[2],
        base,
        (id) => String(author(id).displayName ?? id),
      );
      if (!bean) return json(404, { errorMessages: ["Can not find project role."], errors: {} });
      return ok(bean);
    }
    if (req.method === "GET" && route === "/user/groups") {
      const accountId = url.searchParams.get("accountId") ?? "";
      if (![...this.#accounts.values()].some((a) => a.accountId === accountId)) {
        return json(404, {
          errorMessages: [`User with accountId '${accountId}' does not exist`],
          errors: {},
        });
      }
      return ok(this.#cr.cloudGroupsOf(accountId, base));
    }
    const upload = m(/^\/issue\/([^/]+)\/attachments$/);
    if (req.method === "POST" && upload) {
      return await this.#upload(req, rec, base, decodeURIComponent(upload[1]), account);
    }
    return json(404, { errorMessages: ["null for uri"] });
  }

  #authenticate(req: Request, viaGateway: boolean): Caller {
    const header = req.headers.get("authorization");
    if (!header) return {};
    const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
    // Cloud takes no Bearer PAT: only Basic e-mail + API token (and OAuth, not modelled).
    if (!basic) return { refusal: "failed" };
    let pair: string;
    try {
      pair = new TextDecoder().decode(Uint8Array.from(atob(basic[1]), (c) => c.charCodeAt(0)));
    } catch {
      return { refusal: "failed" };
    }
    const colon = pair.indexOf(":");
    const email = pair.slice(0, colon).toLowerCase();
    const secret = pair.slice(colon + 1);
    const mockable = this.#o.acceptAnyToken && colon > 0 && !this.#revoked.has(secret) &&
      !this.#tokens.has(secret) && /^ATATT3[A-Za-z0-9_=-]{20,}$/.test(secret);
    if (mockable) {
      if (!this.#accounts.has(email)) {
        this.addAccount({ email, displayName: `Mock ${email.split("@")[0]}` });
      }
      this.addToken(email, secret, { scoped: secret.includes("SCOPED") });
    }
    const account = this.#accounts.get(email);
    if (colon < 1 || !account) return { refusal: "failed" };
    if (account.captcha) return { refusal: "captcha" };
    const token = this.#revoked.has(secret) ? undefined : this.#tokens.get(secret);
    // A scoped token on the site URL is refused like a bad one (it is not a site credential).
    if (!token || token.email !== email || (token.scoped && !viaGateway)) {
      if (!token || token.email !== email) {
        account.failures++;
        if (account.failures >= (this.#o.failedLoginsBeforeCaptcha ?? 3)) account.captcha = true;
      }
      return { refusal: "failed" };
    }
    account.failures = 0;
    return { account, token };
  }

  #find(keyOrId: string, account: Account): Issue | undefined {
    let issue = this.#issues.get(keyOrId) ??
      [...this.#issues.values()].find((i) => i.id === keyOrId);
    if (!issue && this.#o.acceptAnyToken && ISSUE_KEY.test(keyOrId)) {
      this.addIssue({ key: keyOrId, attachers: keyOrId === "DEMO-2" ? [] : undefined });
      issue = this.#issues.get(keyOrId);
    }
    if (!issue) return undefined;
    return !issue.browsers || issue.browsers.has(account.email.toLowerCase()) ? issue : undefined;
  }

  #user(base: string, a: Account, self: boolean): Record<string, unknown> {
    return {
      self: `${base}/rest/api/3/user?accountId=${encodeURIComponent(a.accountId)}`,
      accountId: a.accountId,
      accountType: "atlassian",
      // Cloud shows the e-mail only to the account itself (and admins), per profile visibility.
      ...(self ? { emailAddress: a.email } : {}),
      displayName: a.displayName,
      active: true,
      timeZone: "Etc/UTC",
    };
  }

  #bean(base: string, a: FakeAttachment): Record<string, unknown> {
    const author = [...this.#accounts.values()].find((x) => x.accountId === a.author);
    return {
      self: `${base}/rest/api/3/attachment/${a.id}`,
      id: a.id,
      filename: a.filename,
      author: author ? this.#user(base, author, false) : { accountId: a.author },
      created: a.created,
      size: a.size,
      mimeType: a.mimeType,
      content: `${base}/rest/api/3/attachment/content/${a.id}`,
    };
  }

  async #upload(
    req: Request,
    rec: RecordedRequest,
    base: string,
    keyOrId: string,
    account: Account,
  ): Promise<Response> {
    const length = req.headers.get("content-length");
    rec.contentLength = length === null ? null : Number(length);
    rec.transferEncoding = req.headers.get("transfer-encoding");
    if (req.headers.get("x-atlassian-token") !== "no-check") {
      rec.violations.push("missing X-Atlassian-Token");
      return new Response("XSRF check failed", { status: 403 });
    }
    const boundary = formDataBoundary(req.headers.get("content-type"));
    if (boundary === undefined) return new Response(null, { status: 415 });
    const issue = this.#find(keyOrId, account);
    if (!issue) return notVisible();
    if (issue.attachers && !issue.attachers.has(account.email.toLowerCase())) {
      return json(403, {
        errorMessages: ["You do not have permission to create attachments for this issue."],
        errors: {},
      });
    }
    const limit = this.#o.uploadLimit ?? 1024 ** 3 + 1024 ** 2;
    const result = await readUpload(req.body, boundary, { uploadLimit: limit }, rec);
    if (result.kind === "too_large") {
      return json(413, { errorMessages: ["The attachment is too large."], errors: {} });
    }
    if (result.kind !== "ok") {
      return json(400, { errorMessages: ["The upload could not be read."], errors: {} });
    }
    const created = result.files.map((f) => {
      const a: FakeAttachment = {
        id: String(this.#nextAttachmentId++),
        filename: f.filename ?? "",
        size: f.bytes,
        mimeType: guessMimeType(f.filename ?? ""),
        created: formatJiraDate(this.#o.now?.() ?? new Date(), 0),
        author: account.accountId,
        sha256: f.sha256,
      };
      issue.attachments.push(a);
      return a;
    });
    return ok(created.map((a) => this.#bean(base, a)));
  }
}

/** The classic scope each route sosvault calls needs (Jira Cloud REST v3 reference). */
function scopeOf(method: string, route: string): string | undefined {
  if (route === "/myself" || route === "/user/groups") return "read:jira-user";
  // Project roles take read:jira-work (or the granular read:project-role:jira set).
  if (method === "GET" && /^\/project\/[^/]+\/role(\/\d+)?$/.test(route)) return "read:jira-work";
  if (method === "POST" && /^\/issue\/[^/]+\/attachments$/.test(route)) return "write:jira-work";
  if (method === "GET" && (/^\/issue\//.test(route) || route === "/attachment/meta")) {
    return "read:jira-work";
  }
  return undefined;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  const h = new Headers({ "Content-Type": "application/json;charset=UTF-8", ...headers });
  for (const [k, v] of [...h]) if (v === "") h.delete(k);
  h.set("X-RateLimit-Limit", h.get("X-RateLimit-Limit") ?? String(RATE_LIMIT));
  return new Response(JSON.stringify(body), { status, headers: h });
}

function ok(body: unknown): Response {
  return json(200, body);
}

function html(status: number, body: string): Response {
  return new Response(body, { status, headers: { "Content-Type": "text/html;charset=UTF-8" } });
}

function notVisible(): Response {
  return json(404, {
    errorMessages: ["Issue does not exist or you do not have permission to see it."],
    errors: {},
  });
}
