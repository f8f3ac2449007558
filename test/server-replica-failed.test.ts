// When no replica is left to serve (every one `failed`: given up for good after its restarts),
// the process cannot recover by itself: /v1/health/live turns 503 so the orchestrator restarts it
// (Kubernetes' liveness probe, the images' HEALTHCHECK), every inference route answers 503
// `no_replica` at once, and work queued for the replica when it failed is answered 503 at once too
// — not left to REQUEST_TIMEOUT_MS (set to 10 minutes here, so only that can answer within the
// test). While a replica merely restarts (held by the test in restart.beforeRestart), liveness
// stays 200 and new work queues for it; so it does while the model loads and during a drain.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildApp } from '../src/server/app.js';
import { livenessVerdict } from '../src/server/health.js';
import { loadSettings } from '../src/server/settings.js';
import { metricSum, protein, scrape } from './helpers/load.js';
import { fixtureModelDir } from './helpers/paths.js';
import { postJson, startTestServer } from './helpers/server.js';
import { holdBatches, until } from './helpers/hold.js';

const T = { timeout: 60_000 };
const REQUEST_TIMEOUT_MS = 600_000;
const SEQ = protein(30, 7300);

/** A valid body for each inference route: the schema passes, so only the service's state can refuse it. */
const ROUTES: [string, unknown][] = [
  ['/predict', { sequence: SEQ }],
  ['/predict/batch', { sequences: [SEQ, SEQ.slice(5)] }],
  ['/v1/embed', { sequences: [SEQ] }],
  ['/v1/score', { sequence: SEQ, mutations: [`${SEQ[1]}2A`] }],
  ['/v1/score/stream', { sequence: SEQ }],
  ['/v1/pll', { sequences: [SEQ] }],
  ['/v1/fill-mask', { sequence: `${SEQ.slice(0, 4)}<mask>${SEQ.slice(5)}` }],
];

async function get(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

test('the last replica fails: work queued for it and every new request get 503 no_replica at once, liveness 503; while it only restarted, liveness 200', T, async (t) => {
  let releaseRestart!: () => void;
  const restartHeld = new Promise<void>((resolve) => (releaseRestart = resolve));
  // One replica; its first process crashes on its first batch; one restart allowed, held by the test.
  const s = await startTestServer(
    { DEVICES: 'cpu', BATCH_QUEUE_MAX_WAIT_MS: '0', REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) },
    { engine: { faultInjection: { 0: 'crash-on-run' }, restart: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10, beforeRestart: () => restartHeld } } },
  );
  // Teardown after a failed assertion: what still waits is ended first, so close() finds no request in flight.
  const requests: Promise<unknown>[] = [];
  t.after(async () => {
    releaseRestart();
    s.runtime.abortAll(new Error('the test ended'));
    await Promise.allSettled(requests);
    await s.close();
  });
  const pool = s.runtime.model!.pool;
  const scheduler = s.runtime.model!.scheduler;
  const started = performance.now();

  // The first request's batch crashes the replica; the batch goes back to the queue for the restart.
  const lost = postJson(`${s.url}/predict`, { sequence: SEQ });
  requests.push(lost);
  await until('the replica to be restarting with the lost batch queued', () => pool.replicaInfo()[0].state === 'restarting' && scheduler.stats().queuedSequences === 1);
  // Restarting is not dead: liveness 200, /health degraded, not ready, and new work queues for it.
  assert.deepEqual(await get(`${s.url}/v1/health/live`), { status: 200, json: { status: 'alive' } });
  const degraded = await get(`${s.url}/health`);
  assert.deepEqual([degraded.status, degraded.json.status], [200, 'degraded']);
  const notReady = await get(`${s.url}/ready`);
  assert.equal(notReady.status, 503);
  assert.match(String(notReady.json.detail), /no replica serves now \(0: restarting\)/);
  const queued = postJson(`${s.url}/predict`, { sequence: SEQ.slice(3) });
  requests.push(queued);
  await until('the new request to queue for the restart', () => scheduler.stats().queuedSequences === 2);

  // The restarted process dies as it comes up: a second failure in a row, past the policy: failed.
  pool.on('replica-up', (_index, info) => process.kill(info.pid!, 'SIGKILL'));
  const failed = new Promise<void>((resolve) => pool.on('replica-down', (_index, reason) => void (reason === 'failed' && resolve())));
  releaseRestart();
  await failed;
  assert.equal(pool.replicaInfo()[0].state, 'failed');

  for (const [what, pending] of [['the request whose batch was lost', lost], ['the request queued during the restart', queued]] as const) {
    const res = await pending;
    assert.equal(res.status, 503, `${what}: ${JSON.stringify(res.json)}`);
    assert.equal(res.json.error, 'no_replica', what);
    assert.match(String(res.json.detail), /^no replica can serve: every replica has failed \(0 \(cpu\): replica 0 \(cpu\) gave up after 2 failures in a row; the last: .*SIGKILL/, what);
    assert.equal(res.headers.get('retry-after'), '60', what);
  }
  assert.equal(scheduler.stats().queuedSequences, 0);

  // New work on every inference route: refused at once, whatever it is.
  for (const [route, body] of ROUTES) {
    const res = await postJson(`${s.url}${route}`, body);
    assert.deepEqual([res.status, res.json.error], [503, 'no_replica'], `${route}: ${JSON.stringify(res.json)}`);
    assert.match(String(res.json.detail), /every replica has failed/, route);
    assert.equal(res.headers.get('retry-after'), '60', route);
  }
  // Not a timeout: REQUEST_TIMEOUT_MS had not passed (a bound that only tells 504 from 503).
  assert.ok(performance.now() - started < REQUEST_TIMEOUT_MS);

  const live = await get(`${s.url}/v1/health/live`);
  assert.equal(live.status, 503);
  assert.equal(live.json.status, 'failed');
  assert.match(String(live.json.detail), /no replica can serve: every replica has failed .*only a restart of the process can help/);
  const ready = await get(`${s.url}/ready`);
  assert.equal(ready.status, 503);
  assert.match(String(ready.json.detail), /every replica has failed \(0 \(cpu\): replica 0 \(cpu\) gave up/);
  const health = await get(`${s.url}/health`);
  assert.deepEqual([health.status, health.json.status], [503, 'unhealthy']);
  const metrics = await scrape(s.url);
  assert.equal(metricSum(metrics, 'esm2_dropped_sequences_total', { reason: 'unavailable' }), 2, 'both queued sequences dropped as unavailable');
  assert.equal(metricSum(metrics, 'esm2_requests_total', { status: '504' }), 0);
  t.diagnostic(`queued work and ${ROUTES.length} routes answered 503 no_replica ${(performance.now() - started).toFixed(0)} ms after the first request`);
});

test('liveness stays 200 while the model loads and during a drain', T, async (t) => {
  // Start-up: the socket listens before the model loads; the probe must not kill a pod that is starting.
  const settings = loadSettings({ MODEL_NAME: fixtureModelDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', DEVICES: 'cpu' });
  const { app, runtime } = await buildApp(settings, { version: 'test', logger: false });
  t.after(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  assert.equal(runtime.state, 'initializing');
  assert.deepEqual(await get(`${url}/v1/health/live`), { status: 200, json: { status: 'alive' } });
  assert.equal((await fetch(`${url}/ready`)).status, 503);

  // Drain: accepted work (held mid-batch) still finishing, readiness 503, liveness 200.
  const s = await startTestServer({ DEVICES: 'cpu', BATCH_QUEUE_MAX_WAIT_MS: '0' });
  t.after(() => s.close());
  const hold = holdBatches(s);
  const accepted = postJson(`${s.url}/predict`, { sequence: SEQ });
  await until('the request to be held mid-batch', () => hold.batches === 1);
  const drained = s.runtime.drain();
  assert.equal(s.runtime.state, 'draining');
  assert.equal((await fetch(`${s.url}/ready`)).status, 503);
  assert.deepEqual(await get(`${s.url}/v1/health/live`), { status: 200, json: { status: 'alive' } });
  hold.release();
  assert.equal((await accepted).status, 200);
  await drained;
});

test('liveness verdicts: 503 only when every replica failed (or the model could not be loaded)', () => {
  const reason = 'every replica has failed (0 (cpu): gave up)';
  assert.equal(livenessVerdict('initializing', 'loading the model', undefined).code, 200);
  assert.equal(livenessVerdict('ready', 'model loaded', undefined).code, 200, 'serving, degraded or restarting');
  assert.equal(livenessVerdict('draining', 'shutting down', reason).code, 200, 'a drain finishes, whatever the replicas');
  assert.deepEqual(livenessVerdict('ready', 'model loaded', reason), { code: 503, body: { status: 'failed', detail: `no replica can serve: ${reason}; only a restart of the process can help` } });
  assert.equal(livenessVerdict('unhealthy', 'no replica could start', undefined).code, 503);
});
