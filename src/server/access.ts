// Who may call what, how often, and the headers every response carries: the API key (compared in
// constant time), the per-key / per-address rate limit (RATE_LIMIT_PER_MINUTE) and the security
// headers. CORS is @fastify/cors, registered in app.ts with CORS_ORIGINS.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError, unauthorized } from './errors.js';
import type { Settings } from './settings.js';

/**
 * The policy of responses that set none of their own: this server's own resources only (the API
 * docs at /docs load their scripts and styles from here), never framed. /ui sets a stricter one.
 */
export const DEFAULT_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Set on every response unless its route set the header itself (the web page's assets set their own cache policy and CSP). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // API answers are computed per request (and may be private): no cache keeps them.
  'cache-control': 'no-store',
  'content-security-policy': DEFAULT_CONTENT_SECURITY_POLICY,
};

const WINDOW_MS = 60_000;
/** Clients remembered by the rate limiter before idle ones are forgotten early. */
const MAX_TRACKED_CLIENTS = 100_000;

/**
 * A token bucket per client: `perMinute` requests in a burst, refilled at `perMinute` a minute.
 * A client whose bucket is full is forgotten (it is the same as a new one), so memory follows the
 * clients active in the last minute, and is capped besides.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perMs = perMinute / WINDOW_MS;
    this.sweeper = setInterval(() => this.sweep(), WINDOW_MS).unref();
  }

  /** Takes one request from `client`'s budget: 0 when allowed, else the milliseconds until it would be. */
  take(client: string): number {
    const now = this.now();
    const bucket = this.buckets.get(client);
    const tokens = bucket ? Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * this.perMs) : this.perMinute;
    if (tokens < 1) {
      if (bucket) Object.assign(bucket, { tokens, at: now });
      return (1 - tokens) / this.perMs;
    }
    if (bucket) {
      // Re-inserted so the map's order stays oldest-used first (see sweep).
      this.buckets.delete(client);
    } else if (this.buckets.size >= MAX_TRACKED_CLIENTS) {
      this.sweep();
    }
    this.buckets.set(client, { tokens: tokens - 1, at: now });
    return 0;
  }

  get trackedClients(): number {
    return this.buckets.size;
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /** Forgets full buckets; beyond the cap, the least recently used ones too. */
  private sweep(): void {
    const now = this.now();
    for (const [client, { tokens, at }] of this.buckets) {
      if (tokens + (now - at) * this.perMs >= this.perMinute) this.buckets.delete(client);
    }
    for (const client of this.buckets.keys()) {
      if (this.buckets.size < MAX_TRACKED_CLIENTS) break;
      this.buckets.delete(client);
    }
  }
}

export const rateLimited = (perMinute: number, waitMs: number) => {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new ApiError(429, 'rate_limited', `rate limit of ${perMinute} requests per minute exceeded; retry in ${seconds} s`, { 'retry-after': String(seconds) });
};

/** SHA-256 of a secret: equal lengths whatever was sent, so the comparison leaks not even the key's length. */
const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * The API key and rate limit of one call, whatever protocol carried it (HTTP below, gRPC in
 * grpc/server.ts): one limiter, so both protocols share a client's budget.
 */
export class AccessCheck {
  private readonly expected?: Buffer;
  private readonly limiter?: RateLimiter;

  constructor(private readonly settings: Settings) {
    this.expected = settings.apiKey === undefined ? undefined : digest(settings.apiKey);
    this.limiter = settings.rateLimitPerMinute > 0 ? new RateLimiter(settings.rateLimitPerMinute) : undefined;
  }

  /** Throws the 401 (missing or wrong key in `authorization`) or the 429 (rate limit) for a call from `address`. */
  check(authorization: string | undefined, address: string): void {
    const { expected, limiter } = this;
    if (expected) {
      const given = digest(/^Bearer (.+)$/i.exec(authorization ?? '')?.[1] ?? '');
      if (!timingSafeEqual(given, expected)) throw unauthorized();
    }
    if (limiter) {
      // With API_KEY every accepted request carries that key: its users share one budget. Without
      // it, a token proves nothing (a client could send a new one each time): the address counts.
      const wait = limiter.take(expected ? 'api-key' : `address ${address}`);
      if (wait > 0) throw rateLimited(this.settings.rateLimitPerMinute, wait);
    }
  }

  close(): void {
    this.limiter?.close();
  }
}

/**
 * Adds the hooks to `app` itself (not as an encapsulated plugin), so they cover every route
 * registered after, and the 404 handler. `openRoutes` are reached without key or rate limit.
 */
export function installAccessControl(app: FastifyInstance, settings: Settings, openRoutes: ReadonlySet<string>): AccessCheck {
  const access = new AccessCheck(settings);
  app.addHook('onClose', async () => access.close());

  app.addHook('onRequest', async (request) => {
    if (openRoutes.has(request.routeOptions.url ?? '')) return;
    access.check(request.headers.authorization, request.ip);
  });

  app.addHook('onSend', async (_request, reply) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) if (!reply.hasHeader(name)) void reply.header(name, value);
  });
  return access;
}
