// The service under concurrent load, on real sockets and the real golden checkpoint: /predict/batch
// uses both replicas of DEVICES=cpu:2 under either distribution strategy; 200 concurrent /predict
// with mixed options each get exactly what they asked, batched with each other and unchanged by it;
// an overfull queue answers 429 with Retry-After (never 5xx) and recovers; a client that goes away
// has its queued work dropped; a request past REQUEST_TIMEOUT_MS gets 504 and the service goes on.
// Work that must pile up is held by the test (test/helpers/hold.ts: batches held until released, or
// a batch queue that waits for company far longer than any test runs), never left to the machine's speed.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { protein, scrape, type Sample } from './helpers/load.js';
import { holdBatches, until } from './helpers/hold.js';
import { postJson, startTestServer, type TestServer } from './helpers/server.js';

const T = { timeout: 60_000 };
const HIDDEN = 32;
const HEADS = 4;

async function server(t: TestContext, env: Record<string, string>): Promise<TestServer> {
  const s = await startTestServer(env);
  t.after(() => s.close());
  return s;
}


// ---- Prometheus samples -------------------------------------------------------------------

/** The sample of `name` whose labels include `labels` (0 when absent: counters start unseen). */
function metric(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value ?? 0;
}


function batchHistogram(samples: Sample[]): { count: number; single: number } {
  return {
    count: metric(samples, 'esm2_batch_sequences_count'),
    single: metric(samples, 'esm2_batch_sequences_bucket', { le: '1' }),
  };
}

// ---- distribution over replicas ------------------------------------------------------------

interface Prediction {
  sequence: string;
  sequence_length: number;
  embedding: number[] | null;
  embedding_dim: number;
  attention_shape: number[] | null;
  gpu_id: number;
}

interface BatchResponse {
  results: Prediction[];
  total_sequences: number;
  distribution_info: {
    total_sequences: number;
    num_gpus_used: number;
    sequences_per_gpu: Record<string, number>;
    gpu_assignments: Record<string, number[]>;
  };
}

/** results[i].gpu_id agrees with gpu_assignments, which partition 0 … n − 1. */
function checkAssignments(body: BatchResponse, n: number): void {
  const info = body.distribution_info;
  assert.equal(body.total_sequences, n);
  assert.equal(info.total_sequences, n);
  const seen = new Set<number>();
  for (const [gpu, indices] of Object.entries(info.gpu_assignments)) {
    assert.equal(info.sequences_per_gpu[gpu], indices.length, `sequences_per_gpu.${gpu}`);
    for (const i of indices) {
      assert.ok(!seen.has(i), `sequence ${i} assigned twice`);
      seen.add(i);
      assert.equal(`gpu_${body.results[i].gpu_id}`, gpu, `results[${i}].gpu_id vs gpu_assignments`);
    }
  }
  assert.equal(seen.size, n, 'every sequence is assigned');
  assert.deepEqual(Object.keys(info.sequences_per_gpu).sort(), Object.keys(info.gpu_assignments).sort());
}

test('DEVICES=cpu:2 contiguous: /predict/batch of 16 runs 0–7 on gpu_0 and 8–15 on gpu_1', T, async (t) => {
  const s = await server(t, { DEVICES: 'cpu:2', DISTRIBUTION_STRATEGY: 'contiguous' });
  const sequences = Array.from({ length: 16 }, (_, i) => protein(10 + 3 * i, i));
  const res = await postJson(`${s.url}/predict/batch`, { sequences });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const body = res.json as unknown as BatchResponse;
  assert.deepEqual(body.distribution_info, {
    total_sequences: 16,
    num_gpus_used: 2,
    sequences_per_gpu: { gpu_0: 8, gpu_1: 8 },
    gpu_assignments: { gpu_0: [0, 1, 2, 3, 4, 5, 6, 7], gpu_1: [8, 9, 10, 11, 12, 13, 14, 15] },
  });
  checkAssignments(body, 16);
  body.results.forEach((r, i) => assert.equal(r.sequence_length, sequences[i].length));
});

test('DEVICES=cpu:2 balanced: /predict/batch of 16 uses both replicas, split by tokens', T, async (t) => {
  const s = await server(t, { DEVICES: 'cpu:2', DISTRIBUTION_STRATEGY: 'balanced' });
  // One long sequence and fifteen short ones: balanced gives the long one a replica nearly to itself.
  const lengths = [200, ...Array.from({ length: 15 }, (_, i) => 10 + i)];
  const sequences = lengths.map((l, i) => protein(l, 100 + i));
  const res = await postJson(`${s.url}/predict/batch`, { sequences });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const body = res.json as unknown as BatchResponse;
  const info = body.distribution_info;
  assert.equal(info.num_gpus_used, 2);
  assert.deepEqual(Object.keys(info.gpu_assignments).sort(), ['gpu_0', 'gpu_1']);
  checkAssignments(body, 16);
  // Loads (tokens) differ by at most the longest sequence; the long one is not with eight others.
  const load = (gpu: string) => info.gpu_assignments[gpu].reduce((sum, i) => sum + lengths[i] + 2, 0);
  assert.ok(Math.abs(load('gpu_0') - load('gpu_1')) <= 202, `loads ${load('gpu_0')} vs ${load('gpu_1')}`);
  const longOn = body.results[0].gpu_id;
  assert.ok(info.sequences_per_gpu[`gpu_${longOn}`] < 8, `the 200-residue sequence shares gpu_${longOn} with ${info.sequences_per_gpu[`gpu_${longOn}`] - 1} others`);
});

// ---- 200 concurrent /predict ---------------------------------------------------------------

function maxRelativeDifference(a: readonly number[], b: readonly number[]): number {
  assert.equal(a.length, b.length);
  const scale = Math.max(...b.map(Math.abs));
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]))) / scale;
}

test('200 concurrent /predict with mixed options: all 200, each gets what it asked, batched, results unchanged', T, async (t) => {
  const s = await server(t, { BATCH_QUEUE_MAX_WAIT_MS: '20' });
  const distinct = Array.from({ length: 10 }, (_, k) => protein(8 + 9 * k, 500 + k)); // 8 … 89 residues
  // Reference embeddings: each sequence alone, one request at a time.
  const alone: number[][] = [];
  for (const sequence of distinct) {
    const res = await postJson(`${s.url}/predict`, { sequence });
    assert.equal(res.status, 200);
    alone.push(res.json.embedding as number[]);
  }
  const before = await scrape(s.url);

  // The batches are held until all 200 requests are in the scheduler (in the held batch or
  // queued behind it), so they are batched with each other however fast the replica is.
  const N = 200;
  const hold = holdBatches(s);
  const asks = Array.from({ length: N }, (_, i) => ({
    sequence: distinct[i % distinct.length],
    include_embeddings: i % 2 === 0,
    include_attention: i % 3 === 0,
  }));
  const answers = Promise.all(asks.map((body) => postJson(`${s.url}/predict`, body)));
  const scheduler = s.runtime.model!.scheduler;
  await until('all 200 requests to reach the scheduler', () => hold.sequences + scheduler.stats().queuedSequences === N);
  hold.release();
  const responses = await answers;

  const statuses = responses.map((r) => r.status);
  assert.deepEqual(statuses.filter((st) => st !== 200), [], 'every request succeeds');
  let worst = 0;
  responses.forEach((res, i) => {
    const ask = asks[i];
    const p = res.json as unknown as Prediction;
    const L = ask.sequence.length;
    assert.equal(p.sequence, ask.sequence, `request ${i}: sequence`);
    assert.equal(p.sequence_length, L, `request ${i}: sequence_length`);
    assert.equal(p.embedding_dim, HIDDEN);
    if (ask.include_embeddings) {
      assert.ok(Array.isArray(p.embedding) && p.embedding.length === HIDDEN, `request ${i}: an embedding of ${HIDDEN} numbers`);
      assert.ok(p.embedding.every((x) => typeof x === 'number' && Number.isFinite(x)));
      worst = Math.max(worst, maxRelativeDifference(p.embedding, alone[i % distinct.length]));
    } else {
      assert.equal(p.embedding, null, `request ${i}: no embedding asked, none given`);
    }
    if (ask.include_attention) assert.deepEqual(p.attention_shape, [HEADS, L, L], `request ${i}: attention_shape`);
    else assert.equal(p.attention_shape, null, `request ${i}: no attention asked, none given`);
    assert.equal(p.gpu_id, 0);
    assert.ok(Number(res.headers.get('x-queue-time')) >= 0 && Number(res.headers.get('x-inference-time')) > 0);
  });
  assert.ok(worst <= 1e-6, `batched embeddings equal the lone ones within 1e-6 relative (worst ${worst})`);

  // onResponse counts a request once its reply is sent: wait for the counter to catch up.
  const ok = (samples: Sample[]) => metric(samples, 'esm2_requests_total', { route: '/predict', status: '200' });
  const after = await until('esm2_requests_total to count the 200 answers', async () => {
    const samples = await scrape(s.url);
    return ok(samples) - ok(before) >= N && samples;
  });
  assert.equal(ok(after) - ok(before), N, 'esm2_requests_total{route="/predict",status="200"} rose by 200');
  const [b0, b1] = [batchHistogram(before), batchHistogram(after)];
  const batches = b1.count - b0.count;
  const singles = b1.single - b0.single;
  t.diagnostic(`200 requests in ${batches} batches, ${singles} of one sequence; worst relative difference ${worst.toExponential(2)}`);
  assert.ok(batches > 0 && batches < N, `the 200 requests ran in ${batches} batches`);
  assert.ok(singles < batches, `some batch held more than one sequence (${singles} of ${batches} batches had one)`);
  assert.equal(metric(after, 'esm2_batch_sequences_sum') - metric(before, 'esm2_batch_sequences_sum'), N, 'the batches held 200 sequences in all');
});

// ---- overload ------------------------------------------------------------------------------

test('overload: a small MAX_QUEUED_TOKENS gives 429 with Retry-After, no 5xx, and the service recovers', T, async (t) => {
  // One sequence per batch (BATCH_QUEUE_MAX_SIZE 1) and the batches held: the first request's
  // batch is taken and held, the next six (6 × 32 = 192 tokens) fill the queue to its 200-token
  // limit, and every other request is refused while they wait — exactly, on any machine.
  const s = await server(t, { MAX_QUEUED_TOKENS: '200', BATCH_QUEUE_MAX_SIZE: '1' });
  const scheduler = s.runtime.model!.scheduler;
  const hold = holdBatches(s);
  const N = 60;
  const QUEUED = 6;
  let refusedSoFar = 0;
  const answers = Promise.all(
    Array.from({ length: N }, (_, i) =>
      postJson(`${s.url}/predict`, { sequence: protein(30, 1000 + i) }).then((r) => {
        if (r.status === 429) refusedSoFar += 1;
        return r;
      }),
    ),
  );
  await until('every request to be held, queued or refused', () => hold.sequences + scheduler.stats().queuedSequences + refusedSoFar === N);
  assert.deepEqual([hold.sequences, scheduler.stats().queuedSequences, refusedSoFar], [1, QUEUED, N - 1 - QUEUED], 'held, queued, refused');
  assert.ok(scheduler.stats().queuedTokens <= 200, 'the queue stays within MAX_QUEUED_TOKENS');
  hold.release();
  const responses = await answers;
  const byStatus = new Map<number, number>();
  for (const r of responses) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
  const summary = JSON.stringify(Object.fromEntries(byStatus));
  t.diagnostic(`statuses: ${summary}`);
  assert.deepEqual(Object.fromEntries(byStatus), { 200: 1 + QUEUED, 429: N - 1 - QUEUED }, `the held and queued requests are served, every other one refused: ${summary}`);
  const refused = responses.filter((r) => r.status === 429);
  for (const r of refused) {
    const retryAfter = r.headers.get('retry-after');
    assert.match(retryAfter ?? '', /^\d+$/, 'Retry-After is a whole number of seconds');
    assert.ok(Number(retryAfter) >= 1);
    assert.equal(typeof r.json.detail, 'string');
    assert.match(r.json.detail as string, /queue/i);
  }
  for (const r of responses.filter((x) => x.status === 200)) assert.equal((r.json.embedding as number[]).length, HIDDEN);

  const health = await fetch(`${s.url}/health`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { status: string }).status, 'healthy');
  const again = await postJson(`${s.url}/predict`, { sequence: protein(30, 2000) });
  assert.equal(again.status, 200);
  assert.equal(scheduler.stats().queuedSequences, 0);
});

// ---- client disconnect ---------------------------------------------------------------------

/** Waits for company far longer than any test runs: only a full batch (BATCH_QUEUE_MAX_SIZE) or the client leaving ends a wait. */
const FOREVER_MS = '600000';

test('a client that disconnects while queued has its work dropped and counted (esm2_requests_cancelled_total); the service keeps serving', T, async (t) => {
  const FULL = 4;
  const s = await server(t, { BATCH_QUEUE_MAX_WAIT_MS: FOREVER_MS, BATCH_QUEUE_WAIT_WHEN_IDLE: 'true', BATCH_QUEUE_MAX_SIZE: String(FULL) });
  const scheduler = s.runtime.model!.scheduler;
  const batches: number[] = [];
  scheduler.on('batch', (report: { sequences: number }) => batches.push(report.sequences));
  const metricsBefore = await scrape(s.url);
  const residuesBefore = metric(metricsBefore, 'esm2_residues_total');
  const cancelled = (samples: Sample[]) => metric(samples, 'esm2_requests_cancelled_total', { route: '/predict' });
  const dropped = (samples: Sample[]) => metric(samples, 'esm2_dropped_sequences_total', { reason: 'cancelled' });

  const controller = new AbortController();
  const doomed = fetch(`${s.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sequence: protein(40, 3000) }),
    signal: controller.signal,
  });
  await until('the request to be queued', () => scheduler.stats().queuedSequences === 1);
  controller.abort();
  await assert.rejects(doomed, { name: 'AbortError' });
  // Its batch would wait 10 minutes for company: only the disconnect can take it out of the queue.
  await until('the queued work to be dropped', () => scheduler.stats().queuedSequences === 0);
  assert.deepEqual(batches, [], 'no batch ran');
  assert.equal(scheduler.stats().runningBatches, 0);
  const metricsAfter = await until('the cancellation to be counted', async () => {
    const samples = await scrape(s.url);
    return cancelled(samples) > cancelled(metricsBefore) && samples;
  });
  assert.equal(metric(metricsAfter, 'esm2_residues_total'), residuesBefore, 'esm2_residues_total unchanged');
  assert.equal(cancelled(metricsAfter) - cancelled(metricsBefore), 1, 'esm2_requests_cancelled_total{route="/predict"} rose by 1');
  assert.equal(dropped(metricsAfter) - dropped(metricsBefore), 1, 'esm2_dropped_sequences_total{reason="cancelled"} rose by 1');

  // The next requests are served: a full batch of them goes at once.
  const next = await Promise.all(Array.from({ length: FULL }, (_, k) => postJson(`${s.url}/predict`, { sequence: protein(40, 3001 + k) })));
  assert.deepEqual(next.map((r) => r.status), new Array<number>(FULL).fill(200));
  assert.deepEqual(batches, [FULL]);
  assert.equal(metric(await scrape(s.url), 'esm2_residues_total'), residuesBefore + FULL * 40);
});

// ---- request timeout -----------------------------------------------------------------------

test('REQUEST_TIMEOUT_MS: a request still queued gets 504 with a message, its work is dropped, the service keeps serving', T, async (t) => {
  // Its batch would wait 10 minutes for company: only the timeout can answer it. The timeout is
  // also every other request's limit: 3 s, so that the full batch below (4 × 20 residues on the
  // tiny model, milliseconds of work) is answered within it on any machine this runs on.
  const TIMEOUT = 3000;
  const s = await server(t, { REQUEST_TIMEOUT_MS: String(TIMEOUT), BATCH_QUEUE_MAX_WAIT_MS: FOREVER_MS, BATCH_QUEUE_WAIT_WHEN_IDLE: 'true', BATCH_QUEUE_MAX_SIZE: '4' });
  const scheduler = s.runtime.model!.scheduler;
  const batches: number[] = [];
  scheduler.on('batch', (report: { sequences: number }) => batches.push(report.sequences));

  const started = Date.now();
  const res = await postJson(`${s.url}/predict`, { sequence: protein(25, 4000) });
  const elapsed = Date.now() - started;
  assert.equal(res.status, 504);
  assert.equal(res.json.error, 'timeout');
  assert.match(res.json.detail as string, new RegExp(`timed out after ${TIMEOUT} ms`));
  assert.ok(!JSON.stringify(res.json).includes('    at '), 'no stack trace');
  assert.ok(elapsed >= TIMEOUT - 10, `answered at the timeout, not before (${elapsed} ms)`);
  assert.equal(scheduler.stats().queuedSequences, 0, 'its work left the queue');
  assert.deepEqual(batches, [], 'its work never ran');

  // A full batch (BATCH_QUEUE_MAX_SIZE sequences) does not wait for company: it is answered.
  const batch = await postJson(`${s.url}/predict/batch`, { sequences: [0, 1, 2, 3].map((k) => protein(20, 4100 + k)) });
  assert.equal(batch.status, 200, JSON.stringify(batch.json));
  assert.deepEqual(batches, [4]);
  const health = await fetch(`${s.url}/health`);
  assert.equal(health.status, 200);
  const metrics = await scrape(s.url);
  assert.equal(metric(metrics, 'esm2_requests_total', { route: '/predict', status: '504' }), 1);
});
