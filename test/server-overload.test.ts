// Promise 1, overload is refused, never dropped: the real server in its own process is measured
// (closed loop, ~2 s), then offered 4× that rate open-loop (arrivals on a clock, whatever the
// answers) for a sustained period with a small MAX_QUEUED_TOKENS. Every request gets exactly one
// answer, a 2xx or a 429 with Retry-After; no 5xx, no reset; the accepted requests' p99 stays
// within what a full queue explains; the server is healthy right after.
// ESM2_OVERLOAD_SECONDS (default 8) sets the overload period; ESM2_OVERLOAD_FACTOR (default 4) its rate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCliServer, sleep } from './helpers/cli-server.js';
import { metricSum, protein, quantile, scrape, type Sample } from './helpers/load.js';

const MEASURE_MS = 2000;
const OVERLOAD_MS = 1000 * Number(process.env.ESM2_OVERLOAD_SECONDS ?? 8);
const FACTOR = Number(process.env.ESM2_OVERLOAD_FACTOR ?? 4);
/** Long sequences, so that inference (not HTTP) is what the server runs out of. */
const RESIDUES = 1000;
const TOKENS = RESIDUES + 2;
/** The queue holds about 16 requests' worth of tokens beyond the running batch. */
const QUEUED_REQUESTS = 16;
const MAX_BATCH_TOKENS = 4096;
const MAX_WAIT_MS = 50;
/** Requests outstanding while capacity is measured (enough to keep batches full; fewer than the queue holds). */
const CLOSED_LOOP_CLIENTS = 12;
/** Hard bound on the requests sent, whatever the measured capacity. */
const MAX_REQUESTS = 20_000;
/** Past this an unanswered request counts as lost. */
const ANSWER_WITHIN_MS = 30_000;

interface Outcome {
  status: number | 'error';
  ms: number;
  retryAfter: string | null;
  error?: string;
}

const sequences = Array.from({ length: 8 }, (_, k) => protein(RESIDUES, 9000 + k));

async function predict(url: string, k: number): Promise<Outcome> {
  const started = performance.now();
  try {
    const res = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sequence: sequences[k % sequences.length] }),
      signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
    });
    const body = (await res.json()) as { embedding?: unknown[]; detail?: string };
    if (res.status === 200) assert.equal(body.embedding?.length, 32);
    return { status: res.status, ms: performance.now() - started, retryAfter: res.headers.get('retry-after') };
  } catch (err) {
    return { status: 'error', ms: performance.now() - started, retryAfter: null, error: `${(err as Error).name}: ${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? '')}` };
  }
}

test(`overload at ${FACTOR}× measured capacity for ${OVERLOAD_MS / 1000} s: only 2xx or 429 with Retry-After, nothing lost, bounded p99, healthy after`, { timeout: 120_000 }, async (t) => {
  const s = await startCliServer(t, {
    MAX_QUEUED_TOKENS: String(QUEUED_REQUESTS * TOKENS),
    MAX_BATCH_TOKENS: String(MAX_BATCH_TOKENS),
    BATCH_QUEUE_MAX_WAIT_MS: String(MAX_WAIT_MS),
    LOG_LEVEL: 'error',
  });
  // Warm-up: the first runs of a fresh ORT session are slower.
  for (let k = 0; k < 8; k++) assert.equal((await predict(s.url, k)).status, 200);

  // 1. Capacity: closed loop, each client sends its next request when the last is answered.
  const measureStart = performance.now();
  let served = 0;
  await Promise.all(
    Array.from({ length: CLOSED_LOOP_CLIENTS }, async (_, c) => {
      for (let k = c; performance.now() - measureStart < MEASURE_MS; k += CLOSED_LOOP_CLIENTS) {
        const o = await predict(s.url, k);
        assert.equal(o.status, 200, `capacity run: ${JSON.stringify(o)}`);
        served += 1;
      }
    }),
  );
  const capacity = served / ((performance.now() - measureStart) / 1000);
  const rate = FACTOR * capacity;
  t.diagnostic(`capacity ${capacity.toFixed(1)} req/s (${RESIDUES} residues each); offering ${rate.toFixed(1)} req/s for ${OVERLOAD_MS} ms`);

  // 2. Open loop: arrivals at `rate`, each sent when due whatever happened to the others.
  const before = await scrape(s.url);
  const pending: Promise<Outcome>[] = [];
  const started = performance.now();
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed >= OVERLOAD_MS || pending.length >= MAX_REQUESTS) break;
    const due = Math.min(MAX_REQUESTS, Math.floor((elapsed / 1000) * rate) + 1);
    while (pending.length < due) pending.push(predict(s.url, pending.length));
    await sleep(1);
  }
  const sendingMs = performance.now() - started;
  const outcomes = await Promise.all(pending);

  // Every request has exactly one answer (Promise.all: one outcome each); none is an error.
  const byStatus: Record<string, number> = {};
  for (const o of outcomes) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
  const errors = outcomes.filter((o) => o.status === 'error');
  assert.deepEqual(errors.slice(0, 3), [], `no connection reset, no lost request (${errors.length} failed): ${JSON.stringify(byStatus)}`);
  const unexpected = outcomes.filter((o) => o.status !== 200 && o.status !== 429);
  assert.deepEqual(unexpected.slice(0, 3), [], `only 200 and 429: ${JSON.stringify(byStatus)}`);
  const refused = outcomes.filter((o) => o.status === 429);
  for (const o of refused) assert.match(o.retryAfter ?? '', /^[1-9]\d*$/, 'every 429 carries Retry-After in whole seconds');
  assert.ok(refused.length > 0, `backpressure engaged: ${JSON.stringify(byStatus)}`);

  // The server's own count agrees: as many answers as requests, none 5xx.
  const answered = (samples: Sample[]) => metricSum(samples, 'esm2_requests_total', { route: '/predict' });
  const fivexx = (samples: Sample[]) => samples.filter((x) => x.name === 'esm2_requests_total' && x.labels.route === '/predict' && /^5/.test(x.labels.status)).reduce((sum, x) => sum + x.value, 0);
  for (const deadline = Date.now() + 2000; answered(await scrape(s.url)) - answered(before) < outcomes.length && Date.now() < deadline; ) await sleep(20);
  const final = await scrape(s.url);
  assert.equal(answered(final) - answered(before), outcomes.length, 'the server answered each request once');
  assert.equal(fivexx(final), 0, 'no 5xx in esm2_requests_total{route="/predict"}');

  // Accepted requests: bounded latency. One accepted waits at most for a full queue
  // (MAX_QUEUED_TOKENS) plus the batch running ahead of it, plus one batching wait.
  const accepted = outcomes.filter((o) => o.status === 200).map((o) => o.ms);
  const p50 = quantile(accepted, 0.5);
  const p99 = quantile(accepted, 0.99);
  const acceptedRate = accepted.length / (sendingMs / 1000);
  const requestsPerBatch = Math.floor(MAX_BATCH_TOKENS / TOKENS);
  const fullQueueMs = ((QUEUED_REQUESTS + requestsPerBatch) / capacity) * 1000 + MAX_WAIT_MS;
  // Allowance: under overload the server's event loop answers FACTOR − 1 refusals per accepted
  // request on the same two cores as the replica and this load generator, so inference runs
  // slower than measured; 3× and 500 ms of scheduling noise cover it on a 2-core CI machine.
  const bound = 3 * fullQueueMs + 500;
  const share = refused.length / outcomes.length;
  t.diagnostic(
    `${outcomes.length} requests in ${sendingMs.toFixed(0)} ms (${(outcomes.length / (sendingMs / 1000)).toFixed(1)}/s): ${JSON.stringify(byStatus)}; ` +
      `429 share ${(100 * share).toFixed(1)} %; accepted ${acceptedRate.toFixed(1)}/s, p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${Math.max(...accepted).toFixed(0)} ms; ` +
      `full-queue wait ${fullQueueMs.toFixed(0)} ms, bound ${bound.toFixed(0)} ms; ` +
      `Retry-After ${Math.min(...refused.map((o) => Number(o.retryAfter)))}–${Math.max(...refused.map((o) => Number(o.retryAfter)))} s`,
  );
  assert.ok(accepted.length > 0, 'some requests are served during the overload');
  assert.ok(p99 <= bound, `p99 of accepted ${p99.toFixed(0)} ms ≤ ${bound.toFixed(0)} ms`);

  // Healthy right after: probes, a fresh request, an empty queue.
  const health = await fetch(`${s.url}/health`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { status: string }).status, 'healthy');
  assert.equal((await fetch(`${s.url}/ready`)).status, 200);
  assert.equal((await predict(s.url, 0)).status, 200);
  assert.equal(metricSum(await scrape(s.url), 'esm2_queue_depth_sequences'), 0);
  assert.equal(s.child.exitCode, null, 'the server is still running');
});
