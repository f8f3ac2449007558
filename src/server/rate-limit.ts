// A token bucket per client, for RATE_LIMIT_PER_MINUTE, each API key's own limit and the failed
// authentications of an address (server/clients.ts).
import { ApiError } from './errors.js';

const WINDOW_MS = 60_000;
/** Clients remembered by the rate limiter before idle ones are forgotten early. */
const MAX_TRACKED_CLIENTS = 100_000;

/**
 * A token bucket per client: `burst` requests at once (default `perMinute`), refilled at `perMinute` a minute.
 * A client whose bucket is full is forgotten (it is the same as a new one), so memory follows the
 * clients active in the last minute, and is capped besides.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;
  private readonly sweeper: NodeJS.Timeout;

  private readonly burst: number;

  constructor(
    perMinute: number,
    private readonly now: () => number = () => performance.now(),
    burst: number = perMinute,
  ) {
    this.burst = burst;
    this.perMs = perMinute / WINDOW_MS;
    this.sweeper = setInterval(() => this.sweep(), WINDOW_MS).unref();
  }

  /** Takes one request from `client`'s budget: 0 when allowed, else the milliseconds until it would be. */
  take(client: string): number {
    const now = this.now();
    const bucket = this.buckets.get(client);
    const tokens = bucket ? Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.perMs) : this.burst;
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

  /** The milliseconds until `client` may take one (0: now), taking nothing. */
  wait(client: string): number {
    const bucket = this.buckets.get(client);
    if (!bucket) return 0;
    const tokens = Math.min(this.burst, bucket.tokens + (this.now() - bucket.at) * this.perMs);
    return tokens >= 1 ? 0 : (1 - tokens) / this.perMs;
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
      if (tokens + (now - at) * this.perMs >= this.burst) this.buckets.delete(client);
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
