// Issue 13: every request has a cost known before work starts, runs as one request-scoped
// inference, and all of its work ends when it ends. Batches are held (test/helpers/hold.ts) so
// that nothing here depends on the machine's speed; "computed" is counted from the scheduler's
// batch reports, the batches the replicas actually ran.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { holdBatches, until } from './helpers/hold.js';
import { protein } from './helpers/load.js';
import { postJson, startTestServer, type TestServer } from './helpers/server.js';
import type { BatchReport } from '../src/scheduler/types.js';

/** Short windows and batches, so that a PLL of 100 residues is many parts. */
const SMALL = { MAX_SEQUENCE_LENGTH: '100', MAX_BATCH_TOKENS: '256', BATCH_QUEUE_MAX_WAIT_MS: '0' };

async function server(t: TestContext, env: Record<string, string>): Promise<TestServer & { computed: () => { batches: number; sequences: number } }> {
  const s = await startTestServer({ ...SMALL, ...env });
  t.after(() => s.close());
  let batches = 0;
  let sequences = 0;
  s.runtime.model!.scheduler.on('batch', (r: BatchReport) => {
    batches += 1;
    sequences += r.sequences;
  });
  return Object.assign(s, { computed: () => ({ batches, sequences }) });
}

const idle = (s: TestServer) => until('the scheduler is idle', () => s.runtime.model!.scheduler.stats().runningBatches === 0 && s.runtime.model!.scheduler.stats().queuedSequences === 0);

test('a client that disconnects mid-PLL: its queued work is dropped, nothing of it runs after the batch already running', async (t) => {
  const s = await server(t, {});
  const hold = holdBatches(s);
  const client = new AbortController();
  const answer = fetch(`${s.url}/v1/pll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sequences: [protein(100, 1)] }), signal: client.signal }).catch((e: Error) => e);
  await until('a batch of the PLL reaches the replica', () => hold.batches >= 1);
  const dispatched = hold.batches;
  client.abort();
  assert.ok((await answer) instanceof Error);
  await until('its queued work is dropped', () => s.runtime.model!.scheduler.stats().queuedSequences === 0);
  hold.release();
  await idle(s);
  assert.equal(s.computed().batches, dispatched, 'only the batch running at the disconnect ran');
  assert.ok(s.computed().sequences < 100, `${s.computed().sequences} of 100 masked copies computed`);
});

test('one deadline for the whole request: a PLL past REQUEST_TIMEOUT_MS gets 504 and none of its work runs after', async (t) => {
  const s = await server(t, { REQUEST_TIMEOUT_MS: '400' });
  const hold = holdBatches(s);
  const answer = postJson(`${s.url}/v1/pll`, { sequences: [protein(100, 2), protein(100, 3)] });
  await until('a batch reaches the replica', () => hold.batches >= 1);
  // The replica still holds its first batch: a per-submission timer would not have fired for later parts.
  const { status, json } = await answer;
  assert.equal(status, 504, JSON.stringify(json));
  assert.equal(json.error, 'timeout');
  const dispatched = hold.batches;
  hold.release();
  await idle(s);
  assert.equal(s.computed().batches, dispatched);
});

test('a request larger than MAX_QUEUED_TOKENS on an idle server runs in parts and answers 200', async (t) => {
  const s = await server(t, { MAX_QUEUED_TOKENS: '600' });
  let maxQueued = 0;
  const scheduler = s.runtime.model!.scheduler;
  scheduler.on('batch', () => (maxQueued = Math.max(maxQueued, scheduler.stats().queuedTokens)));
  // 2 × 100 masked copies of 102 tokens: 20,400 tokens, 34 × the queue limit.
  const { status, json } = await postJson(`${s.url}/v1/pll`, { sequences: [protein(100, 4), protein(100, 5)] });
  assert.equal(status, 200, JSON.stringify(json));
  const results = json.results as { pseudo_log_likelihood: number; length: number }[];
  assert.deepEqual(results.map((r) => r.length), [100, 100]);
  assert.ok(results.every((r) => Number.isFinite(r.pseudo_log_likelihood) && r.pseudo_log_likelihood < 0));
  assert.equal(s.computed().sequences, 200, 'each masked copy once');
  // At most its in-flight allowance (2 batches of 256 tokens per replica) waits at once.
  assert.ok(maxQueued <= 2 * 256, `queue held ${maxQueued} tokens`);
});

test('backpressure refuses a new request whole: a PLL arriving at a full queue gets 429 and queues nothing', async (t) => {
  const s = await server(t, { MAX_QUEUED_TOKENS: '300' });
  const hold = holdBatches(s);
  const scheduler = s.runtime.model!.scheduler;
  const first = postJson(`${s.url}/predict/batch`, { sequences: [protein(100, 6), protein(100, 7), protein(100, 8), protein(100, 9), protein(100, 10)] });
  await until('the first request fills the queue', () => hold.batches >= 1 && scheduler.stats().queuedTokens > 0);
  const queuedBefore = scheduler.stats().queuedTokens;
  const pll = await postJson(`${s.url}/v1/pll`, { sequences: [protein(100, 11)] });
  assert.equal(pll.status, 429, JSON.stringify(pll.json));
  assert.ok(Number(pll.headers.get('retry-after')) >= 1);
  assert.equal(scheduler.stats().queuedTokens, queuedBefore, 'nothing of the refused request was queued');
  hold.release();
  assert.equal((await first).status, 200);
  await idle(s);
  assert.equal(s.computed().sequences, 5, 'only the first request ran');
});

test('admission by cost: refused with 413 before any work, naming the figure and what to do', async (t) => {
  const s = await server(t, { MAX_JSON_RESPONSE_BYTES: '1000000', MAX_REQUEST_TOKENS: '50000' });
  // 20,000 residues in window mode with contacts: a 20,000² matrix (1.6 GB) — the attack that aborted the server.
  const huge = await postJson(`${s.url}/v1/embed`, { sequences: [protein(20_000, 12)], truncation: 'window', include: ['contacts'] });
  assert.equal(huge.status, 413, JSON.stringify(huge.json));
  assert.equal(huge.json.error, 'too_costly');
  assert.match(String(huge.json.detail), /contacts of 20,000 residues/);
  assert.match(String(huge.json.detail), /MAX_REQUEST_RESULT_BYTES/);

  // Large JSON: refused with the pointer to safetensors, which then answers.
  const body = { sequences: Array.from({ length: 8 }, (_, k) => protein(100, 20 + k)), include: ['per_residue', 'logits'], repr_layers: [0, 1, 2] };
  const json = await postJson(`${s.url}/v1/embed`, body);
  assert.equal(json.status, 413, JSON.stringify(json.json));
  assert.match(String(json.json.detail), /MAX_JSON_RESPONSE_BYTES.*application\/octet-stream/);
  const binary = await fetch(`${s.url}/v1/embed`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/octet-stream' }, body: JSON.stringify(body) });
  assert.equal(binary.status, 200);
  await binary.arrayBuffer();

  // Tokens: a PLL of 3 × 100 residues is 30,600 tokens; 6 × 100 is over 50,000.
  const pll = await postJson(`${s.url}/v1/pll`, { sequences: Array.from({ length: 6 }, (_, k) => protein(100, 30 + k)) });
  assert.equal(pll.status, 413, JSON.stringify(pll.json));
  assert.match(String(pll.json.detail), /61,200 tokens .* MAX_REQUEST_TOKENS = 50,000/);
  assert.equal(s.computed().sequences, 8, 'only the safetensors request ran');
});

test("the server's result memory is shared: a request that does not fit beside those in flight gets 429, and fits once they are done", async (t) => {
  // One 100-residue per_residue embed of the tiny model holds ~13 KB of results; the budget takes one.
  const s = await server(t, { MAX_RESULT_BYTES_IN_FLIGHT: '20000' });
  const hold = holdBatches(s);
  const body = { sequences: [protein(100, 40)], include: ['per_residue'] };
  const first = postJson(`${s.url}/v1/embed`, body);
  await until('the first request runs', () => hold.batches >= 1);
  const second = await postJson(`${s.url}/v1/embed`, body);
  assert.equal(second.status, 429, JSON.stringify(second.json));
  assert.match(String(second.json.detail), /MAX_RESULT_BYTES_IN_FLIGHT/);
  hold.release();
  assert.equal((await first).status, 200);
  await until('the first reply has given its memory back', () => s.runtime.model!.resultMemory.heldBytes === 0);
  assert.equal((await postJson(`${s.url}/v1/embed`, body)).status, 200);
});

test('concurrent requests for the same protein share the masked passes in flight', async (t) => {
  const s = await server(t, {});
  const hold = holdBatches(s);
  const sequence = protein(60, 50);
  const a = postJson(`${s.url}/v1/pll`, { sequences: [sequence] });
  await until('the first PLL runs', () => hold.batches >= 1);
  const heldByA = s.runtime.model!.resultMemory.heldBytes;
  const b = postJson(`${s.url}/v1/score`, { sequence, scan: true });
  // Admitted (its memory reserved) while every row of the first is still in flight.
  await until('the second request is admitted', () => s.runtime.model!.resultMemory.heldBytes > heldByA);
  await new Promise((resolve) => setImmediate(resolve));
  hold.release();
  const [ra, rb] = await Promise.all([a, b]);
  assert.equal(ra.status, 200);
  assert.equal(rb.status, 200);
  await idle(s);
  assert.equal(s.computed().sequences, 60, 'each masked copy computed once for both requests');
});
