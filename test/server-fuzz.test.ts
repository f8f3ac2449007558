// Hostile input: ≥ 1,000 generated bodies per endpoint (wrong types, missing and extra fields, huge
// numbers, deep nesting, invalid UTF-8, enormous strings, bad mutations and layers, NaN-like
// values). Every answer is < 500 with a message for 4xx; the process survives; a correct request
// afterwards gives exactly the result it gave before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededStream } from '../src/model/seeded-random.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const BODIES_PER_ENDPOINT = Number(process.env.ESM2_FUZZ_BODIES ?? 1000);
let server: TestServer;
before(async () => {
  // MAX_SEQUENCE_LENGTH 200: an enormous valid sequence is refused (422) rather than computed —
  // a /v1/pll of 1,000 residues is 1,000 forward passes, seconds each time, and the run would take
  // minutes; the length check is what hostile input should meet anyway.
  server = await startTestServer({ BATCH_QUEUE_MAX_WAIT_MS: '0', BODY_LIMIT_BYTES: '65536', MAX_BATCH_SIZE: '8', MAX_SEQUENCE_LENGTH: '200' });
});
after(() => server.close());

class Random {
  private readonly buffer = new Float32Array(4096);
  private next = this.buffer.length;
  constructor(private readonly stream: SeededStream) {}
  float(): number {
    if (this.next === this.buffer.length) {
      this.stream.fillUniform(this.buffer, 0.5, 0.5);
      this.next = 0;
    }
    return this.buffer[this.next++];
  }
  int(n: number): number {
    return Math.min(n - 1, Math.floor(this.float() * n));
  }
  pick<T>(values: readonly T[]): T {
    return values[this.int(values.length)];
  }
}

const WEIRD_VALUES: unknown[] = [
  null, true, false, 0, -1, 1e308, -1e308, 2 ** 53 + 1, 1.5, 'NaN', 'Infinity', '-Infinity', '', ' ', '\u0000', '\ud800',
  'MKT\u00e9V', 'M'.repeat(5000), 'mkt<mask>v', '<mask>', '<MASK><mask>', '<foo>', 'K2A', 'A2G', '2A', 'K0A', 'K99999999999A', 'K2Z:K2A',
  [], [null], ['MK'], ['MK', 5], Array.from({ length: 9 }, () => 'MK'), {}, { a: 1 }, [[['MK']]], -0, 1e-320,
];
const FIELDS = ['sequence', 'sequences', 'include_embeddings', 'include_attention', 'include', 'repr_layers', 'mutations', 'scan', 'method', 'top_k', 'truncation', '__proto__', 'constructor'];

/** A structurally broken or semantically wrong body for any endpoint, as raw bytes. */
function hostileBody(r: Random): Buffer {
  switch (r.int(6)) {
    case 0: // wrong raw bytes: invalid UTF-8, truncated JSON, NaN literals
      return r.pick([Buffer.from([0xff, 0xfe, 0x7b, 0x22]), Buffer.from('{"sequence": "MK'), Buffer.from('NaN'), Buffer.from('{"sequence": NaN}'), Buffer.from('[1,2'), Buffer.from(''), Buffer.from('"MK"'), Buffer.from('{"sequence":"M\\uD800K"}')]);
    case 1: { // deep nesting
      const depth = 10 + r.int(5000);
      return Buffer.from(`{"sequence":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    }
    case 2: { // an enormous string (within or beyond the body limit)
      return Buffer.from(JSON.stringify({ sequence: 'A'.repeat(1000 + r.int(100_000)), sequences: ['A'.repeat(r.int(3000))] }));
    }
    default: { // random fields with random values
      const body: Record<string, unknown> = {};
      const n = r.int(5);
      for (let i = 0; i < n; i++) body[r.pick(FIELDS)] = r.pick(WEIRD_VALUES);
      return Buffer.from(JSON.stringify(body));
    }
  }
}

const ENDPOINTS = ['/predict', '/predict/batch', '/v1/embed', '/v1/score', '/v1/pll', '/v1/fill-mask'];
const CORRECT: Record<string, unknown> = {
  '/predict': { sequence: 'MKTVRQERLKSIVRILERSKEPVSGAQL' },
  '/v1/score': { sequence: 'MKTVRQERLKSIVRILERSKEPVSGAQL', mutations: ['K2A', 'K2A:V4G'] },
  '/v1/embed': { sequences: ['MKTVRQERLK'], include: ['mean', 'logits'] },
};

async function correctAnswers(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [url, body] of Object.entries(CORRECT)) {
    const res = await server.app.inject({ method: 'POST', url, payload: body as object });
    assert.equal(res.statusCode, 200, url);
    const json = res.json() as Record<string, unknown>;
    delete json.inference_time_ms;
    out[url] = JSON.stringify(json);
  }
  return out;
}

test(`${BODIES_PER_ENDPOINT} hostile bodies per endpoint: never a 5xx, always a message`, async () => {
  const before = await correctAnswers();
  const statuses = new Map<number, number>();
  for (const url of ENDPOINTS) {
    const r = new Random(new SeededStream(7, url));
    for (let i = 0; i < BODIES_PER_ENDPOINT; i++) {
      const payload = hostileBody(r);
      const res = await server.app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      assert.ok(res.statusCode < 500, `${url} #${i}: ${res.statusCode} ${res.body.slice(0, 200)} for ${payload.subarray(0, 120).toString('latin1')}`);
      if (res.statusCode >= 400) {
        const detail = (res.json() as { detail?: unknown }).detail;
        assert.ok(typeof detail === 'string' && detail.length > 0 && !detail.includes('    at '), `${url} #${i}: message`);
      }
    }
  }
  console.log(`fuzz statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
  assert.deepEqual(await correctAnswers(), before, 'correct requests give the same results as before');
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});
