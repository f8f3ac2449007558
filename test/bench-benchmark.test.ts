// `npm run benchmark` against a real server on the golden tiny checkpoint: the JSON it writes has
// every field, consistent counts and ordered latencies, and its request count equals what the
// server's own esm2_requests_total counted meanwhile — it measures real traffic. Plus the pieces:
// the closed loop is bounded in count and time, the window statistics, the --lengths grammar.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { runBenchmark, type BenchmarkReport } from '../bench/http-benchmark.js';
import { closedLoop, summarize, type Completion } from '../bench/load.js';
import { parsePrometheus, sumOf } from '../bench/prometheus.js';
import { buildWorkload, parseLengthsSpec } from '../bench/workload.js';
import { simulatedClock } from './helpers/clock.js';
import { startTestServer } from './helpers/server.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

const run = promisify(execFile);
const T = { timeout: 60_000 };
const ROUTES = ['/predict', '/predict/batch'];

async function requestsTotal(url: string, routes = ROUTES): Promise<number> {
  const res = await fetch(`${url}/metrics`);
  return sumOf(parsePrometheus(await res.text()), 'esm2_requests_total', { route: routes });
}

function checkLatencies(r: { latency_ms: { min: number; p50: number; p95: number; p99: number; max: number } | null }): void {
  const l = r.latency_ms;
  assert.ok(l, 'latencies present');
  assert.ok(l.min > 0, `min ${l.min} > 0`);
  assert.ok(l.min <= l.p50 && l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max, `ordered: ${JSON.stringify(l)}`);
}

test('npm run benchmark: JSON fields and counts, and the server counted exactly its requests', T, async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const dir = await tempDir(t);
  const output = path.join(dir, 'out', 'bench.json');
  const before = await requestsTotal(server.url);

  const { stdout } = await run(
    process.execPath,
    [path.join(repoRoot, 'dist/bench/benchmark.js'), '--url', server.url, '--requests', '6', '--batch-sizes', '1', '2', '--concurrency', '2', '--warmup', '1', '--output', output],
    { timeout: 45_000 },
  );
  const after = await requestsTotal(server.url);
  const report = JSON.parse(await readFile(output, 'utf8')) as BenchmarkReport;

  // The table went to stdout.
  assert.match(stdout, /residues\/s/);
  assert.match(stdout, /\/predict\/batch/);
  // Top-level fields.
  assert.equal(report.tool, 'esm2-serve benchmark');
  assert.equal(report.url, server.url);
  assert.ok(!Number.isNaN(Date.parse(report.date)));
  assert.deepEqual(report.options.batch_sizes, [1, 2]);
  assert.equal(report.options.concurrency, 2);
  assert.equal(report.options.requests, 6);
  assert.equal(report.options.lengths, 'lognormal');
  assert.ok(report.machine.cpu_model.length > 0);
  assert.ok(report.machine.cores >= 1 && report.machine.memory_bytes > 0);
  assert.equal(report.server.devices, 1);
  assert.equal(report.server.gpu_count, 0);
  assert.equal(report.server.model, server.runtime.modelName);
  assert.equal(report.server.settings?.DEVICES, 'cpu');
  assert.equal(report.server.settings?.BATCH_QUEUE_ENABLED, true);

  // Per batch size: counts, rates, latencies, what the server saw.
  const workload = await buildWorkload(parseLengthsSpec('lognormal'), { count: 2048, seed: 1, maxLength: 1022 });
  assert.deepEqual(report.results.map((r) => [r.batch_size, r.path]), [[1, '/predict'], [2, '/predict/batch']]);
  for (const r of report.results) {
    assert.equal(r.requests, 6);
    assert.equal(r.ok, 6);
    assert.deepEqual(r.errors, {});
    assert.equal(r.warmup_requests, 1);
    assert.equal(r.sequences, 6 * r.batch_size);
    // Request k (0 = the warm-up) carries sequences k·B … k·B + B − 1 of the seeded workload.
    const expected = workload.sequences.slice(r.batch_size, 7 * r.batch_size).reduce((sum, s) => sum + s.length, 0);
    assert.equal(r.residues, expected);
    assert.ok(r.seq_per_s > 0 && r.residues_per_s > 0);
    assert.ok(Math.abs(r.residues_per_s - r.residues / r.window_s) < 1e-6 * r.residues_per_s, 'count run: every request is in the window');
    assert.ok(r.connections >= 1 && r.connections <= 2, `keep-alive connections: ${r.connections}`);
    checkLatencies(r);
    assert.ok(r.server, 'server metrics read');
    assert.equal(r.server.requests[r.path], 6, 'the server counted the measured requests');
    assert.equal(r.server.residues, r.residues, 'and processed exactly their residues');
  }
  // Measured + warm-up requests, summed over batch sizes, is what the server counted.
  const sent = report.results.reduce((sum, r) => sum + r.requests + r.warmup_requests, 0);
  assert.equal(sent, 14);
  assert.equal(after - before, sent);
});

test('a duration run on /v1/embed: bounded by time, rates over the window, errors counted by status', T, async (t) => {
  const server = await startTestServer({ MAX_BATCH_SIZE: '2' });
  t.after(() => server.close());
  const before = await requestsTotal(server.url, ['/v1/embed']);
  const report = await runBenchmark({
    url: server.url,
    batchSizes: [2, 3],
    durationS: 0.4,
    concurrency: 3,
    lengths: 'fixed:30',
    endpoint: 'embed',
    warmup: 0,
    seed: 2,
  });
  // Bounded by its duration: the window is exactly 0.4 s (asserted below), not the request cap.
  const [ok, tooMany] = report.results;
  assert.equal(ok.path, '/v1/embed');
  assert.ok(ok.requests >= 3, `${ok.requests} requests in 0.4 s: each of the 3 clients sends one as the window opens`);
  assert.deepEqual(ok.errors, {});
  assert.ok(Math.abs(ok.window_s - 0.4) < 1e-6, `window ${ok.window_s}`);
  assert.equal(ok.residues, 30 * ok.sequences);
  checkLatencies(ok);
  // Three sequences exceed MAX_BATCH_SIZE 2: every request fails, and is reported by its status.
  assert.equal(tooMany.ok, 0);
  assert.equal(tooMany.latency_ms, null);
  assert.deepEqual(Object.keys(tooMany.errors).sort(), Object.keys(tooMany.errors).filter((k) => /^4\d\d$/.test(k)).sort());
  assert.equal(Object.values(tooMany.errors).reduce((a, b) => a + b, 0), tooMany.requests);
  const after = await requestsTotal(server.url, ['/v1/embed']);
  assert.equal(after - before, ok.requests + tooMany.requests);
});

test('--protocol grpc: Embed calls on one channel, counted as the HTTP ones are', T, async (t) => {
  const server = await startTestServer({ GRPC_PORT: '0' });
  t.after(() => server.close());
  const report = await runBenchmark({
    url: server.url,
    protocol: 'grpc',
    grpcAddress: `127.0.0.1:${server.grpcPort}`,
    batchSizes: [1, 2],
    requests: 4,
    concurrency: 2,
    lengths: 'fixed:30',
    endpoint: 'predict',
    warmup: 1,
    seed: 3,
  });
  assert.equal(report.options.protocol, 'grpc');
  for (const r of report.results) {
    assert.equal(r.path, 'esm2.v1.Esm2/Embed');
    assert.deepEqual([r.requests, r.ok, r.errors], [4, 4, {}]);
    assert.equal(r.sequences, 4 * r.batch_size);
    assert.equal(r.connections, 1);
    checkLatencies(r);
  }
  // The server ran exactly those sequences (warm-up excluded), though no HTTP route counted them.
  assert.equal(report.results[1].server?.residues, 30 * 8);
});

test('the closed loop stops at its count and at its deadline', async (t) => {
  // On a simulated clock each send takes exactly 5 ms, so the counts are exact on any machine.
  const clock = simulatedClock(t);
  const send = async (): Promise<Completion> => {
    const startedAt = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    return { startedAt, endedAt: performance.now(), ok: true, status: '200', sequences: 1, residues: 10 };
  };
  const whileRunning = async <T>(run: Promise<T>): Promise<T> => {
    let done = false;
    void run.then(() => (done = true), () => (done = true));
    while (!done) await clock.advance(1);
    return run;
  };
  const counted = await whileRunning(closedLoop({ concurrency: 4, maxRequests: 10, deadline: performance.now() + 10_000, send }));
  assert.equal(counted.completions.length, 10);
  assert.equal(counted.stoppedByDeadline, false);
  assert.equal(clock.now(), 15, 'ten 5-ms requests on four clients: three rounds');

  const started = performance.now();
  const deadline = started + 60;
  const timed = await whileRunning(closedLoop({ concurrency: 2, maxRequests: 1_000_000, deadline, send }));
  assert.ok(timed.stoppedByDeadline);
  assert.equal(timed.completions.length, 24, 'two clients, one 5-ms request after another, for 60 ms');
  assert.ok(timed.completions.every((c) => c.startedAt < deadline), 'nothing is sent at or after the deadline');
  assert.equal(performance.now(), deadline, 'the last requests, sent before the deadline, end at it');
  // A send that throws is recorded as an error, and the loop goes on.
  const failing = await closedLoop({ concurrency: 1, maxRequests: 3, deadline: performance.now() + 1000, send: () => Promise.reject(new Error('boom')) });
  assert.deepEqual(failing.completions.map((c) => [c.ok, c.status, c.detail]), Array(3).fill([false, 'error', 'boom']));
});

test('window statistics: only answers inside the window count toward the rates', () => {
  const c = (start: number, end: number, ok = true, status = '200'): Completion => ({ startedAt: start, endedAt: end, ok, status, sequences: 2, residues: 100 });
  const run = { startedAt: 0, stoppedByDeadline: true, completions: [c(0, 400), c(0, 900), c(400, 1500), c(900, 1000, false, '429')] };
  const s = summarize(run, 1000);
  assert.equal(s.requests, 4);
  assert.equal(s.ok, 3);
  assert.deepEqual(s.errors, { '429': 1 });
  assert.equal(s.window_s, 1);
  assert.equal(s.elapsed_s, 1.5);
  assert.equal(s.seq_per_s, 4, 'two answers inside the first second, two sequences each');
  assert.equal(s.residues_per_s, 200);
  assert.equal(s.residues, 300, 'the late answer still counts as done work');
  assert.deepEqual(s.latency_ms && [s.latency_ms.min, s.latency_ms.p50, s.latency_ms.max], [400, 900, 1100]);
  const all = summarize(run);
  assert.equal(all.window_s, 1.5);
  assert.equal(all.seq_per_s, 4);
});

test('--lengths grammar and workloads', async (t) => {
  assert.deepEqual(parseLengthsSpec('lognormal'), { kind: 'lognormal', median: 250 });
  assert.deepEqual(parseLengthsSpec('lognormal:100'), { kind: 'lognormal', median: 100 });
  assert.deepEqual(parseLengthsSpec('fixed:64'), { kind: 'fixed', length: 64 });
  assert.deepEqual(parseLengthsSpec('file:/x/y.fasta'), { kind: 'file', path: '/x/y.fasta' });
  for (const bad of ['fixed:0', 'fixed', 'uniform', 'file:']) assert.throws(() => parseLengthsSpec(bad), /--lengths/);

  const lognormal = await buildWorkload(parseLengthsSpec('lognormal'), { count: 500, seed: 1, maxLength: 1022 });
  const lengths = lognormal.sequences.map((s) => s.length).sort((a, b) => a - b);
  assert.ok(lengths[0] >= 30 && lengths[lengths.length - 1] <= 1022);
  assert.ok(Math.abs(lengths[250] - 250) < 40, `median ${lengths[250]}`);
  assert.deepEqual((await buildWorkload(parseLengthsSpec('lognormal'), { count: 500, seed: 1, maxLength: 1022 })).sequences, lognormal.sequences, 'seeded');

  const dir = await tempDir(t);
  const fasta = path.join(dir, 'w.fasta');
  await writeFile(fasta, '>a\nMKTAYIAK\n>b\nMKTAYIAKQRQISFVKSHFSRQ\n>c\nACDE\n');
  const fromFile = await buildWorkload(parseLengthsSpec(`file:${fasta}`), { count: 10, seed: 1, maxLength: 10 });
  assert.deepEqual(fromFile.sequences, ['MKTAYIAK', 'ACDE']);
  assert.equal(fromFile.skipped, 1);
});
