// Promise 2, a replica that dies is replaced and its work is not lost, on the real server with
// DEVICES=cpu:2 and real replica processes: SIGKILL one in the middle of a batch (held mid-batch
// by SIGSTOP, so the kill lands while the batch is in flight; its restart held by the test until
// /health has been seen "degraded", so that is not a race with the restart), or let one hang past
// REPLICA_RUN_TIMEOUT_MS: the batch is retried on the other replica and every caller gets the
// answer a lone request gets; the replica restarts after a backoff, /health says "degraded"
// (200) meanwhile, esm2_replica_restarts_total and esm2_batch_retries_total count it. A replica
// that keeps crashing ends 'failed', out of rotation and never restarted again, while the other
// serves, and liveness stays 200. (ORT errors split in halves: test/scheduler-recovery.test.ts; the
// last replica failing: test/server-replica-failed.test.ts.)
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { PoolReplicaInfo } from '../src/engine/pool.js';
import type { EngineTestHooks } from '../src/server/runtime.js';
import { metricSum, protein, scrape } from './helpers/load.js';
import { postJson, startTestServer, type TestServer } from './helpers/server.js';
import { sleep } from './helpers/cli-server.js';
import { until } from './helpers/hold.js';

const T = { timeout: 60_000 };

async function server(t: TestContext, env: Record<string, string>, engine?: EngineTestHooks): Promise<TestServer> {
  const s = await startTestServer({ DEVICES: 'cpu:2', BATCH_QUEUE_MAX_WAIT_MS: '0', ...env }, engine ? { engine } : {});
  t.after(() => s.close());
  return s;
}

function maxRelativeDifference(a: readonly number[], b: readonly number[]): number {
  assert.equal(a.length, b.length);
  const scale = Math.max(...b.map(Math.abs));
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]))) / scale;
}

/** Each sequence's embedding from a lone /predict (no batch company, no fault). */
async function loneEmbeddings(s: TestServer, sequences: string[]): Promise<number[][]> {
  const out: number[][] = [];
  for (const sequence of sequences) {
    const res = await postJson(`${s.url}/predict`, { sequence });
    assert.equal(res.status, 200);
    out.push(res.json.embedding as number[]);
  }
  return out;
}

async function health(s: TestServer): Promise<{ code: number; status: string; message: string }> {
  const res = await fetch(`${s.url}/health`);
  const body = (await res.json()) as { status: string; message: string };
  return { code: res.status, status: body.status, message: body.message };
}

const replica = (s: TestServer, index: number): PoolReplicaInfo => s.runtime.model!.pool.replicaInfo()[index];

test('SIGKILL of a replica in the middle of a batch: every caller gets the lone answer, the replica restarts with backoff, /health degraded meanwhile, counted', T, async (t) => {
  // The restart waits, after its backoff, until the test has seen /health while the replica is down.
  let releaseRestart!: () => void;
  const restartHeld = new Promise<void>((resolve) => (releaseRestart = resolve));
  t.after(() => releaseRestart());
  const s = await server(t, { DISTRIBUTION_STRATEGY: 'contiguous' }, { restart: { beforeRestart: () => restartHeld } });
  const sequences = Array.from({ length: 16 }, (_, i) => protein(20 + 5 * i, 7000 + i));
  const alone = await loneEmbeddings(s, sequences);
  const before = await scrape(s.url);
  const victim = replica(s, 0).pid!;
  const up = new Promise<number>((resolve) => s.runtime.model!.pool.once('replica-up', () => resolve(performance.now())));

  // Freeze replica 0, then give it a batch: sequences 0–7 are pinned to it (contiguous), 8–15 to
  // replica 1; a few lone requests join them. Replica 0's batch stays in flight while it is stopped.
  process.kill(victim, 'SIGSTOP');
  const batch = postJson(`${s.url}/predict/batch`, { sequences });
  const singles = [3, 11].map((i) => postJson(`${s.url}/predict`, { sequence: sequences[i] }));
  await until('replica 0 to be mid-batch', () => replica(s, 0).busy);
  process.kill(victim, 'SIGKILL');
  const killedAt = performance.now();

  // While it is down, /health is 200 "degraded" and names it.
  const degraded = await until('/health to say degraded', async () => {
    const h = await health(s);
    return h.status === 'degraded' && h;
  });
  assert.equal(degraded.code, 200);
  assert.match(degraded.message, /1 of 2 replicas down \(0: restarting\)/);
  releaseRestart();

  const res = await batch;
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const results = res.json.results as { embedding: number[]; gpu_id: number }[];
  let worst = 0;
  results.forEach((r, i) => (worst = Math.max(worst, maxRelativeDifference(r.embedding, alone[i]))));
  for (const [k, single] of singles.entries()) {
    const r = await single;
    assert.equal(r.status, 200);
    worst = Math.max(worst, maxRelativeDifference(r.json.embedding as number[], alone[[3, 11][k]]));
  }
  assert.ok(worst <= 1e-5, `every caller gets the lone answer (worst relative difference ${worst})`);

  // Restarted after a backoff (first delay 250 ms), as a new process, and serving again.
  const upAt = await up;
  const info = await until('replica 0 to serve again', () => replica(s, 0).state === 'ready' && replica(s, 0));
  assert.equal(info.restarts, 1);
  assert.notEqual(info.pid, victim);
  assert.ok(upAt - killedAt >= 250, `restarted ${(upAt - killedAt).toFixed(0)} ms after the kill (backoff ≥ 250 ms)`);
  const h = await health(s);
  assert.deepEqual([h.code, h.status], [200, 'healthy']);

  const after = await scrape(s.url);
  const delta = (name: string, labels: Record<string, string> = {}) => metricSum(after, name, labels) - metricSum(before, name, labels);
  assert.equal(delta('esm2_replica_restarts_total', { replica: '0' }), 1, 'esm2_replica_restarts_total{replica="0"}');
  assert.equal(delta('esm2_replica_restarts_total', { replica: '1' }), 0);
  assert.equal(metricSum(after, 'esm2_replica_up', { replica: '0' }), 1);
  const retriedBatches = delta('esm2_batch_retries_total', { reason: 'crashed' });
  const retriedSequences = delta('esm2_retried_sequences_total', { reason: 'crashed' });
  assert.equal(retriedBatches, 1, 'the one batch in flight was retried');
  assert.ok(retriedSequences >= 8 && retriedSequences <= 10, `its sequences were retried (${retriedSequences})`);
  assert.equal(delta('esm2_requests_total', { route: '/predict/batch', status: '500' }), 0);
  t.diagnostic(`retries after a replica kill: ${retriedBatches} batch, ${retriedSequences} sequences; restarted ${(upAt - killedAt).toFixed(0)} ms after the kill; worst relative difference ${worst.toExponential(2)}`);
});

test('a replica hung past REPLICA_RUN_TIMEOUT_MS is killed, its batch retried on the other; the caller gets the lone answer', T, async (t) => {
  const TIMEOUT = 1000;
  const s = await server(t, { REPLICA_RUN_TIMEOUT_MS: String(TIMEOUT) }, { faultInjection: { 0: 'hang-on-run' } });
  const sequence = protein(60, 7100);
  const before = await scrape(s.url);
  // Both replicas idle: the first batch goes to replica 0, whose first process hangs on it.
  const started = performance.now();
  const res = await postJson(`${s.url}/predict`, { sequence });
  const elapsed = performance.now() - started;
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.equal(res.json.gpu_id, 1, 'answered by the other replica, after the retry');
  assert.ok(elapsed >= TIMEOUT, `answered after the timeout, not before (${elapsed.toFixed(0)} ms)`);
  const [lone] = await loneEmbeddings(s, [sequence]);
  assert.ok(maxRelativeDifference(res.json.embedding as number[], lone) <= 1e-5);

  await until('replica 0 to be restarted', () => replica(s, 0).state === 'ready' && replica(s, 0).restarts === 1);
  const after = await scrape(s.url);
  assert.equal(metricSum(after, 'esm2_batch_retries_total', { reason: 'timeout' }) - metricSum(before, 'esm2_batch_retries_total', { reason: 'timeout' }), 1);
  assert.equal(metricSum(after, 'esm2_replica_restarts_total', { replica: '0' }), 1);
  t.diagnostic(`hung batch answered after ${elapsed.toFixed(0)} ms (REPLICA_RUN_TIMEOUT_MS=${TIMEOUT})`);
});

test('a replica that keeps crashing ends failed, out of rotation and not restarted again; the other serves; /health degraded', T, async (t) => {
  const MAX_ATTEMPTS = 3;
  const s = await server(t, {}, { restart: { maxAttempts: MAX_ATTEMPTS, baseDelayMs: 50, maxDelayMs: 200 } });
  const pool = s.runtime.model!.pool;
  const sequences = Array.from({ length: 6 }, (_, i) => protein(30 + i, 7200 + i));
  const alone = await loneEmbeddings(s, sequences);
  const kills: number[] = [];
  const kill = (info: PoolReplicaInfo) => {
    kills.push(info.pid!);
    process.kill(info.pid!, 'SIGKILL');
  };
  // Each time replica 0 comes back, it is killed again at once: it crashes MAX_ATTEMPTS + 1 times in a row.
  pool.on('replica-up', (index, info) => void (index === 0 && kill(info)));
  const failed = new Promise<void>((resolve) => pool.on('replica-down', (index, reason) => void (index === 0 && reason === 'failed' && resolve())));

  // Traffic throughout: every request is answered correctly.
  let stop = false;
  const statuses: number[] = [];
  let wrong = 0;
  const traffic = (async () => {
    for (let k = 0; !stop; k++) {
      const res = await postJson(`${s.url}/predict`, { sequence: sequences[k % sequences.length] });
      statuses.push(res.status);
      if (res.status === 200 && maxRelativeDifference(res.json.embedding as number[], alone[k % sequences.length]) > 1e-5) wrong += 1;
    }
  })();
  kill(replica(s, 0));
  await failed;
  assert.equal(replica(s, 0).state, 'failed');
  assert.equal(kills.length, MAX_ATTEMPTS + 1, `killed ${kills.length} times`);
  assert.equal(replica(s, 0).restarts, MAX_ATTEMPTS);

  // Out of rotation: no new process, no restart, the other replica answers everything.
  const restarts = replica(s, 0).restarts;
  await sleep(600);
  stop = true;
  await traffic;
  assert.equal(replica(s, 0).restarts, restarts, 'not restarted again');
  assert.equal(replica(s, 0).pid, undefined, 'no process');
  assert.deepEqual([...new Set(statuses)], [200], `every request during the crash loop is answered (${statuses.length} requests)`);
  assert.equal(wrong, 0, 'and answered correctly');
  for (const sequence of sequences.slice(0, 3)) {
    const res = await postJson(`${s.url}/predict`, { sequence });
    assert.equal(res.status, 200);
    assert.equal(res.json.gpu_id, 1);
  }
  const h = await health(s);
  assert.deepEqual([h.code, h.status], [200, 'degraded']);
  assert.match(h.message, /0: failed/);
  assert.equal((await fetch(`${s.url}/ready`)).status, 200, 'still ready: one replica serves');
  assert.equal((await fetch(`${s.url}/v1/health/live`)).status, 200, 'alive: one replica failed, another serves');
  const metrics = await scrape(s.url);
  assert.equal(metricSum(metrics, 'esm2_replica_up', { replica: '0' }), 0);
  assert.equal(metricSum(metrics, 'esm2_replica_restarts_total', { replica: '0' }), MAX_ATTEMPTS);
  t.diagnostic(`${statuses.length} requests during the crash loop, all 200; replica 0 failed after ${kills.length} crashes in a row`);
});
