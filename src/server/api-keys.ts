// API_KEYS_FILE: the API keys, each with a name, a tier and its own rate limit, from a YAML or JSON
// file (JSON is YAML). Read at start (a bad file stops start-up) and on SIGHUP (a bad file keeps the
// keys in force). Keys are kept as SHA-256 digests only; the file may hold digests instead of keys.
//
//   keys:
//     - name: lab-a                    # unique; the per-key metrics' label
//       key: "a-long-random-secret"    # or key_sha256: <64 hex digits>
//       tier: 1                        # 1 is served first; default 1
//       rate_limit: { requests_per_minute: 600, burst: 50 }   # or requests_per_second; 0: none
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/** The largest tier a key may have (the scheduler's priority classes go to 1000). */
export const MAX_TIER = 1000;
/** The shortest key accepted in the file: a guessable key is no key. */
export const MIN_KEY_LENGTH = 16;

export interface ClientKey {
  name: string;
  /** 1 is served first. */
  tier: number;
  /** SHA-256 of the key. */
  digest: Buffer;
  /** Requests per minute (0: no limit) and the bucket's size. */
  perMinute: number;
  burst: number;
}

export class KeysFileError extends Error {
  constructor(path: string, why: string) {
    super(`API_KEYS_FILE ${path}: ${why}`);
    this.name = 'KeysFileError';
  }
}

/** SHA-256 of a secret: equal lengths whatever was sent, so a comparison leaks not even the key's length. */
export const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isWhole = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** The keys of a file's text; `defaultPerMinute`: a key without rate_limit gets RATE_LIMIT_PER_MINUTE. Throws KeysFileError naming the entry and field. */
export function parseKeys(text: string, path: string, defaultPerMinute: number): ClientKey[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new KeysFileError(path, `not YAML or JSON: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`);
  }
  if (!isObject(doc) || !Array.isArray(doc.keys)) throw new KeysFileError(path, 'expected an object with a list `keys`');
  const keys = doc.keys.map((entry: unknown, i: number) => parseEntry(entry, `keys[${i}]`, path, defaultPerMinute));
  const seen = new Map<string, string>();
  for (const key of keys) {
    if (seen.has(`name ${key.name}`)) throw new KeysFileError(path, `the name "${key.name}" is given twice`);
    const hex = key.digest.toString('hex');
    if (seen.has(hex)) throw new KeysFileError(path, `"${key.name}" has the same key as "${seen.get(hex)}"`);
    seen.set(`name ${key.name}`, key.name).set(hex, key.name);
  }
  return keys;
}

function parseEntry(entry: unknown, at: string, path: string, defaultPerMinute: number): ClientKey {
  const fail = (why: string) => new KeysFileError(path, `${at}: ${why}`);
  if (!isObject(entry)) throw fail('expected an object with name, key (or key_sha256), tier, rate_limit');
  const unknown = Object.keys(entry).filter((k) => !['name', 'key', 'key_sha256', 'tier', 'rate_limit'].includes(k));
  if (unknown.length > 0) throw fail(`unknown field ${unknown.join(', ')}`);
  const { name, key, key_sha256: sha, tier = 1, rate_limit: limit } = entry;
  if (typeof name !== 'string' || !/^[\w.@-]{1,64}$/.test(name)) throw fail('name: expected 1 to 64 letters, digits, _ . @ -');
  const where = `${at} (${name})`;
  const failed = (why: string) => new KeysFileError(path, `${where}: ${why}`);
  if ((key === undefined) === (sha === undefined)) throw failed('expected one of key or key_sha256');
  if (key !== undefined && (typeof key !== 'string' || key.length < MIN_KEY_LENGTH || /\s/.test(key))) throw failed(`key: expected at least ${MIN_KEY_LENGTH} characters, no spaces`);
  if (sha !== undefined && (typeof sha !== 'string' || !/^[0-9a-f]{64}$/i.test(sha))) throw failed('key_sha256: expected 64 hex digits (sha256sum of the key)');
  if (!isWhole(tier, 1, MAX_TIER)) throw failed(`tier: expected a whole number from 1 to ${MAX_TIER}`);
  let perMinute = defaultPerMinute;
  let burst: unknown;
  if (limit !== undefined) {
    if (!isObject(limit)) throw failed('rate_limit: expected { requests_per_minute or requests_per_second, burst }');
    const { requests_per_minute: perMin, requests_per_second: perSec, burst: b, ...rest } = limit;
    if (Object.keys(rest).length > 0) throw failed(`rate_limit: unknown field ${Object.keys(rest).join(', ')}`);
    if ((perMin === undefined) === (perSec === undefined)) throw failed('rate_limit: expected one of requests_per_minute or requests_per_second');
    const rate = perMin ?? perSec;
    if (typeof rate !== 'number' || !(rate >= 0) || !Number.isFinite(rate)) throw failed('rate_limit: expected a rate ≥ 0 (0: no limit)');
    perMinute = perMin === undefined ? rate * 60 : rate;
    burst = b;
  }
  if (burst !== undefined && !isWhole(burst, 1)) throw failed('rate_limit.burst: expected a whole number ≥ 1');
  return { name, tier, digest: sha === undefined ? digest(key as string) : Buffer.from(sha as string, 'hex'), perMinute, burst: (burst as number | undefined) ?? Math.max(1, Math.ceil(perMinute)) };
}

/** Reads and parses the file; a missing or unreadable file is a KeysFileError too. */
export function loadKeysFile(path: string, defaultPerMinute: number): ClientKey[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new KeysFileError(path, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  return parseKeys(text, path, defaultPerMinute);
}
