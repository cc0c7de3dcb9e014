/**
 * Our thin Jira Server/Data Center REST v2 client (JIRA_FACTS.md section D). Bearer PAT only,
 * redirects never followed, no cookies, a non-browser User-Agent; every answer is classified
 * by status, headers and content type into the contract's error codes, never by parsing HTML.
 */
import { AppError } from "../errors.ts";
import type { JiraTransport } from "./transport.ts";
import { type JiraUser, myselfSchema } from "./schemas.ts";

export const USER_AGENT = "sosvault/0.1 (+jira-attachment-client)";

export interface JiraClientOptions {
  transport: JiraTransport;
  timeoutMs: number;
  /** Bounded retries for idempotent GETs only; uploads are never retried. */
  retries?: number;
  /** Longest Retry-After sosvault will wait inside one request before answering rate_limited. */
  maxRetryWaitMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const SSO_HINT =
  "Jira answered with a login or single sign-on page instead of its REST API: check that base_url is the Jira base URL that accepts personal access tokens (not an SSO gateway or a wrong context path)";

export class JiraClient {
  readonly #o: Required<JiraClientOptions>;

  constructor(options: JiraClientOptions) {
    this.#o = {
      retries: 2,
      maxRetryWaitMs: 5000,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      ...options,
    };
  }

  /** The PAT probe: `/myself` cannot be reached anonymously, so a 200 proves the token. */
  async myself(baseUrl: string, pat: string): Promise<JiraUser> {
    const body = await this.getJson(baseUrl, "/rest/api/2/myself", pat, {
      notFound:
        "Jira has no REST API at this base URL: check the context path (for example https://host/jira)",
    });
    const parsed = myselfSchema.safeParse(body);
    if (!parsed.success) {
      throw new AppError("upstream_unavailable", "Jira answered /myself with an unexpected body");
    }
    return parsed.data;
  }

  /**
   * GET with bounded retries on 429/502/503/504 and network failures. Aborting `signal` (a
   * revoke in flight) stops it at once, retries included.
   */
  async getJson(
    baseUrl: string,
    path: string,
    pat: string,
    messages: { notFound?: string; forbidden?: string } = {},
    signal?: AbortSignal,
  ): Promise<unknown> {
    for (let attempt = 0;; attempt++) {
      // Security: no request, first or retried, goes out with the PAT once the use is aborted.
      signal?.throwIfAborted();
      let res: Response;
      try {
        res = await this.send(baseUrl, path, pat, { method: "GET", signal });
      } catch (err) {
        if (attempt < this.#o.retries && !signal?.aborted) {
          await this.#o.sleep(backoff(attempt));
          continue;
        }
        throw err;
      }
      if (RETRYABLE.has(res.status) && attempt < this.#o.retries) {
        const wait = res.status === 429 ? retryAfterMs(res) ?? backoff(attempt) : backoff(attempt);
        if (wait <= this.#o.maxRetryWaitMs) {
          await res.body?.cancel();
          await this.#o.sleep(wait);
          continue;
        }
      }
      return await readJsonOrThrow(res, messages, pat);
    }
  }

  /** One request to `{baseUrl}{path}`. Throws upstream_unavailable on network/TLS/timeout. */
  async send(baseUrl: string, path: string, pat: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${pat}`);
    headers.set("Accept", "application/json");
    headers.set("User-Agent", USER_AGENT);
    // Jira's XSRF filter also guards bodyless mutations; harmless on GETs.
    headers.set("X-Atlassian-Token", "no-check");
    const signal = init.signal
      ? AbortSignal.any([init.signal, AbortSignal.timeout(this.#o.timeoutMs)])
      : AbortSignal.timeout(this.#o.timeoutMs);
    try {
      return await this.#o.transport(
        new Request(baseUrl + path, { ...init, headers, redirect: "manual", signal }),
      );
    } catch (err) {
      if (init.signal?.aborted) throw init.signal.reason;
      const timedOut = err instanceof DOMException && err.name === "TimeoutError";
      // The underlying error text can contain the URL but never headers; still, keep it in
      // `detail` (server log only) and give the client a fixed message.
      throw new AppError(
        "upstream_unavailable",
        timedOut
          ? "Jira did not answer in time: try again later, or ask the operator to raise JIRA_TIMEOUT_SECONDS"
          : "Jira could not be reached (network or TLS failure): check base_url, and that the Jira certificate is trusted (JIRA_CA_FILE)",
        { detail: { error: String((err as Error)?.message ?? err) } },
      );
    }
  }
}

const RETRYABLE = new Set([429, 502, 503, 504]);

function backoff(attempt: number): number {
  return 200 * 2 ** attempt + Math.floor(Math.random() * 100);
}

export function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get("retry-after");
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function isJson(res: Response): boolean {
  return /^application\/([a-z.+-]*\+)?json\b/i.test(res.headers.get("content-type") ?? "");
}

/**
 * Maps a Jira answer to JSON or to the contract's error. The body of an error is never copied
 * into a message: it may be an HTML page, and it may echo what we sent.
 */
export async function readJsonOrThrow(
  res: Response,
  messages: { notFound?: string; forbidden?: string } = {},
  pat?: string,
): Promise<unknown> {
  const status = res.status;
  const loginReason = (res.headers.get("x-seraph-loginreason") ?? "").toUpperCase();
  const anonymous = (res.headers.get("x-ausername") ?? "").toLowerCase() === "anonymous";
  if (status >= 200 && status < 300) {
    if (!isJson(res)) {
      await res.body?.cancel();
      throw new AppError("invalid_credentials", SSO_HINT);
    }
    if (anonymous || /AUTHENTICATED_FAILED|AUTHENTICATION_DENIED/.test(loginReason)) {
      await res.body?.cancel();
      throw new AppError(
        "invalid_credentials",
        "Jira did not accept the personal access token (it answered as an anonymous user): create a new token and reconnect",
      );
    }
    let text: string;
    try {
      text = await res.text();
    } catch {
      throw new AppError("upstream_unavailable", "Jira sent a malformed JSON answer");
    }
    // Security: Jira data (a display name, a file name) reaches answers and the model. An
    // answer that quotes the token it was sent is refused whole rather than passed on.
    if (pat && (text.includes(pat) || text.includes(pat.replaceAll("/", "\\/")))) {
      throw new AppError(
        "upstream_unavailable",
        "Jira's answer contained the personal access token itself, so sosvault did not use it: tell the Jira administrator",
      );
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new AppError("upstream_unavailable", "Jira sent a malformed JSON answer");
    }
  }
  await res.body?.cancel();
  if (status >= 300 && status < 400) throw new AppError("invalid_credentials", SSO_HINT);
  if (status === 401) {
    throw new AppError(
      "invalid_credentials",
      "Jira rejected the personal access token (invalid, expired or revoked): create a new token in Jira and reconnect",
    );
  }
  if (status === 403) {
    if (/AUTHENTICATION_DENIED|AUTHENTICATED_FAILED/.test(loginReason)) {
      throw new AppError(
        "invalid_credentials",
        "Jira refused the login (it may require a browser login or CAPTCHA first): log in to Jira in a browser, then reconnect",
      );
    }
    throw new AppError(
      "forbidden",
      messages.forbidden ?? "Jira denied this action for your account",
    );
  }
  if (status === 404) {
    throw new AppError(
      "not_found",
      messages.notFound ?? "Jira says this does not exist, or you may not see it",
    );
  }
  if (status === 429) {
    const wait = retryAfterMs(res);
    const seconds = Math.max(1, Math.ceil((wait ?? 5000) / 1000));
    throw new AppError(
      "rate_limited",
      `Jira is rate limiting this account: try again in ${seconds} seconds`,
      {
        retryAfter: seconds,
      },
    );
  }
  if (status === 413) {
    throw new AppError(
      "payload_too_large",
      "a proxy in front of Jira refused the request as too large",
    );
  }
  throw new AppError(
    "upstream_unavailable",
    `Jira answered with HTTP ${status}: try again later, or ask the Jira administrator`,
  );
}
