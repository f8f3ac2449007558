// Who is calling: the API key check as a function of the Authorization header's value and the
// client's address (HTTP's hook in access.ts; gRPC may call it too), answering the client's name
// and tier or throwing the 401/429 to send. Each key has its own rate-limit bucket; without keys,
// each address has one. Failed authentication is throttled per address: past
// AUTH_FAILURES_PER_MINUTE failures, the address gets 429 without its key being looked at.
import { timingSafeEqual } from 'node:crypto';
import { ApiError, unauthorized } from './errors.js';
import { RateLimiter, rateLimited } from './rate-limit.js';
import { digest, loadKeysFile, type ClientKey } from './api-keys.js';
import type { Settings } from './settings.js';

export interface Client {
  /** The key's name (API_KEYS_FILE, or "API_KEY"); undefined without keys. */
  name?: string;
  /** 1 is served first (the scheduler's priority). */
  tier: number;
}

const ANONYMOUS: Client = { tier: 1 };

interface Entry {
  key: ClientKey;
  limiter?: RateLimiter;
}

export const authThrottled = (perMinute: number, waitMs: number) => {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new ApiError(429, 'auth_throttled', `more than ${perMinute} failed authentications a minute from this address; retry in ${seconds} s`, { 'retry-after': String(seconds) });
};

export class ClientAccess {
  private entries: Entry[] | undefined;
  private readonly byAddress: RateLimiter | undefined;
  private readonly failures: RateLimiter | undefined;

  constructor(private readonly settings: Settings) {
    this.entries = this.load()?.map((key) => this.entry(key));
    this.byAddress = settings.rateLimitPerMinute > 0 ? new RateLimiter(settings.rateLimitPerMinute) : undefined;
    this.failures = settings.authFailuresPerMinute > 0 ? new RateLimiter(settings.authFailuresPerMinute) : undefined;
  }

  /** Whether requests need a key. */
  get keyed(): boolean {
    return this.entries !== undefined;
  }

  /** The keys' names and tiers (never the keys). */
  get keys(): { name: string; tier: number }[] {
    return (this.entries ?? []).map(({ key }) => ({ name: key.name, tier: key.tier }));
  }

  /**
   * The caller of `authorization` (the header's value) from `address`, or the ApiError to answer:
   * 429 auth_throttled (too many failures from the address: the key is not looked at), 401, or 429
   * rate_limited (its key's, or without keys its address's, bucket is empty).
   */
  check(authorization: string | undefined, address: string): Client {
    if (!this.entries) {
      const wait = this.byAddress?.take(`address ${address}`) ?? 0;
      if (wait > 0) throw rateLimited(this.settings.rateLimitPerMinute, wait);
      return ANONYMOUS;
    }
    const throttled = this.failures?.wait(address) ?? 0;
    if (throttled > 0) throw authThrottled(this.settings.authFailuresPerMinute, throttled);
    const given = digest(/^Bearer (.+)$/i.exec(authorization ?? '')?.[1] ?? '');
    // Every key is compared, in constant time each: the time taken says nothing of which matched.
    let found: Entry | undefined;
    for (const entry of this.entries) if (timingSafeEqual(given, entry.key.digest) && !found) found = entry;
    if (!found) {
      this.failures?.take(address);
      throw unauthorized();
    }
    const wait = found.limiter?.take('key') ?? 0;
    if (wait > 0) throw rateLimited(found.key.perMinute, wait);
    return { name: found.key.name, tier: found.key.tier };
  }

  /**
   * Reads API_KEYS_FILE again (SIGHUP). A bad file keeps the keys in force and throws its
   * KeysFileError. A key whose name and limit are unchanged keeps its bucket.
   */
  reload(): { keys: number } {
    const keys = this.load();
    const old = new Map((this.entries ?? []).map((e) => [e.key.name, e]));
    const entries = keys?.map((key) => {
      const was = old.get(key.name);
      if (was && was.key.perMinute === key.perMinute && was.key.burst === key.burst) {
        old.delete(key.name);
        return { key, limiter: was.limiter };
      }
      return this.entry(key);
    });
    for (const e of old.values()) e.limiter?.close();
    this.entries = entries;
    return { keys: entries?.length ?? 0 };
  }

  close(): void {
    for (const e of this.entries ?? []) e.limiter?.close();
    this.byAddress?.close();
    this.failures?.close();
  }

  /** API_KEY (tier 1, RATE_LIMIT_PER_MINUTE) and API_KEYS_FILE's keys; undefined when neither is set. */
  private load(): ClientKey[] | undefined {
    const { apiKey, apiKeysFile, rateLimitPerMinute } = this.settings;
    if (apiKey === undefined && apiKeysFile === undefined) return undefined;
    const keys = apiKeysFile === undefined ? [] : loadKeysFile(apiKeysFile, rateLimitPerMinute);
    if (apiKey !== undefined) keys.unshift({ name: 'API_KEY', tier: 1, digest: digest(apiKey), perMinute: rateLimitPerMinute, burst: Math.max(1, rateLimitPerMinute) });
    return keys;
  }

  private entry(key: ClientKey): Entry {
    return { key, ...(key.perMinute > 0 ? { limiter: new RateLimiter(key.perMinute, undefined, key.burst) } : {}) };
  }
}
