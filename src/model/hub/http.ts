// HTTP for the hub on node:http/https rather than fetch: fetch cannot bound the connect phase
// separately (its connect timeout lives in an undici dispatcher that Node does not expose) and
// we need to see redirects ourselves, both for the metadata HEAD (whose 302 carries the LFS
// headers) and to drop the token when a redirect leaves the hub's host, as huggingface_hub does.
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';

export interface HubResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered (after the redirects followed). */
  url: string;
  body: IncomingMessage;
}

export interface RequestOptions {
  method: 'HEAD' | 'GET';
  headers?: Record<string, string>;
  /** Sent only to this host (`host:port`); redirects elsewhere go without it. */
  token?: string;
  tokenHost?: string;
  /** Until response headers arrive: DNS, connect, TLS and the server's first byte. */
  timeoutMs: number;
  /** Longest silence while the body streams (defaults to timeoutMs). */
  idleTimeoutMs?: number;
  /** 'none': return 3xx as is; 'relative': follow only same-host redirects (huggingface_hub's HEAD); 'all'. */
  redirects: 'none' | 'relative' | 'all';
}

const agents = {
  // No keep-alive: a pull makes few requests, and idle sockets would hold the CLI open at exit.
  'http:': new http.Agent({ keepAlive: false }),
  'https:': new https.Agent({ keepAlive: false }),
};

export class TimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${(ms / 1000).toFixed(1)} s`);
  }
}

function requestOnce(url: URL, options: RequestOptions, withToken: boolean): Promise<HubResponse> {
  const headers: Record<string, string> = { 'user-agent': 'esm2-serve (node; huggingface_hub-compatible)', 'accept-encoding': 'identity', ...options.headers };
  if (withToken && options.token) headers.authorization = `Bearer ${options.token}`;
  const lib = url.protocol === 'https:' ? https : http;
  const agent = agents[url.protocol as 'http:' | 'https:'];
  return new Promise<HubResponse>((resolve, reject) => {
    const req = lib.request(url, { method: options.method, headers, agent });
    // One timer for everything up to the response headers, DNS included (a socket idle timeout
    // would not cover a resolver that hangs before the socket exists).
    const timer = setTimeout(() => req.destroy(new TimeoutError(`${options.method} ${url.host}`, options.timeoutMs)), options.timeoutMs);
    // `on`, not `once`: a socket can fail again after the response began (the body then sees it);
    // a second 'error' without a listener would crash the process.
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      clearTimeout(timer);
      const idle = options.idleTimeoutMs ?? options.timeoutMs;
      res.setTimeout(idle, () => res.destroy(new TimeoutError(`reading from ${url.host}`, idle)));
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url: url.toString(), body: res });
    });
    req.end();
  });
}

/** One request, following redirects as `options.redirects` says (at most 10 hops). */
export async function hubRequest(target: string, options: RequestOptions): Promise<HubResponse> {
  let url = new URL(target);
  // Once a redirect has left the hub's host the token stays dropped, as requests does.
  let withToken = options.tokenHost === undefined || url.host === options.tokenHost;
  for (let hop = 0; ; hop++) {
    const res = await requestOnce(url, options, withToken);
    const location = res.headers.location;
    if (res.status < 300 || res.status >= 400 || !location || options.redirects === 'none' || hop >= 10) return res;
    const next = new URL(location, url);
    // huggingface_hub follows a Location without a host (a renamed repo), not one to the CDN.
    if (options.redirects === 'relative' && /^([a-z][a-z0-9+.-]*:)?\/\//i.test(location)) return res;
    res.body.resume(); // discard the redirect's body
    if (next.host !== url.host) withToken = false;
    url = next;
  }
}

/** Consumes and discards a response body (so the socket is released). */
export function discard(res: HubResponse): void {
  res.body.resume();
}

/** One header's value (first of a repeated header). */
export function header(res: HubResponse, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
