// npm run bench:service — end-to-end service throughput: the real HTTP server (in this process,
// replicas in their child processes) on a random-weight checkpoint of the t6 shape, driven by N
// concurrent single-sequence /predict clients over keep-alive loopback connections, with
// lognormal sequence lengths. One row per configuration: batch queue on/off × DEVICES.
// Note: the load generator shares this process (and its event loop) with the server.
import http from 'node:http';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { writeRandomCheckpoint } from '../src/model/random-checkpoint.js';
import { buildApp } from '../src/server/app.js';
import { loadSettings } from '../src/server/settings.js';
import type { BatchReport } from '../src/scheduler/types.js';
import { lognormalLengths, randomProteins } from './workload.js';
import { median } from './matmul.js';

const program = new Command('bench:service')
  .option('--preset <name>', 'random checkpoint shape', 'esm2_t6_8M_UR50D')
  .option('--clients <n>', 'concurrent single-sequence clients', '64')
  .option('--duration <s>', 'measured seconds per repeat', '20')
  .option('--warmup <s>', 'seconds of load before each measured window', '5')
  .option('--repeats <n>', 'measured windows per configuration (medians reported)', '1')
  .option('--queue <list>', 'batch queue settings to run: on,off', 'on,off')
  .option('--devices <list>', 'DEVICES values to run (";"-separated)', 'cpu:1;cpu:2')
  .option('--max-wait-ms <ms>', 'BATCH_QUEUE_MAX_WAIT_MS (default: the service default)')
  .option('--pool <n>', 'distinct sequences the clients cycle through', '2048')
  .option('--cache <dir>', 'where the random checkpoint and compiled graphs go', join(process.cwd(), 'bench', '.cache'))
  .option('--json', 'also print the rows as JSON')
  .parse();
const opts = program.opts<{
  preset: string;
  clients: string;
  duration: string;
  warmup: string;
  repeats: string;
  queue: string;
  devices: string;
  maxWaitMs?: string;
  pool: string;
  cache: string;
  json?: boolean;
}>();

const positive = (name: string, value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${value}`);
  return n;
};
const clients = Math.round(positive('clients', opts.clients));
const durationMs = positive('duration', opts.duration) * 1000;
const warmupMs = Number(opts.warmup) * 1000;
const repeats = Math.round(positive('repeats', opts.repeats));
/** A request unanswered after this counts as an error (and the load loop cannot hang on it). */
const REQUEST_TIMEOUT_MS = 60_000;
/** After the window closes, in-flight requests get this long before their sockets are destroyed. */
const SETTLE_MS = 30_000;

const modelDir = join(opts.cache, 'checkpoints', opts.preset);
if (!existsSync(join(modelDir, 'config.json'))) {
  console.log(`writing a random ${opts.preset} checkpoint to ${modelDir}`);
  await writeRandomCheckpoint({ preset: opts.preset, outDir: modelDir, seed: 1 });
}
process.env.ESM2_COMPILE_CACHE ??= join(opts.cache, 'compiled');

const lengths = lognormalLengths(Math.round(positive('pool', opts.pool)), 1);
const proteins = randomProteins(lengths, 1);
const bodies = proteins.map((sequence) => JSON.stringify({ sequence, include_embeddings: true }));
const meanLength = lengths.reduce((a, b) => a + b, 0) / lengths.length;

interface Completion {
  at: number;
  latencyMs: number;
  residues: number;
  ok: boolean;
  error?: string;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** One POST /predict; resolves (never rejects) with its completion. */
function predict(agent: http.Agent, port: number, index: number): Promise<Completion> {
  const started = performance.now();
  const body = bodies[index];
  return new Promise((resolve) => {
    const done = (ok: boolean, error?: string) =>
      resolve({ at: performance.now(), latencyMs: performance.now() - started, residues: lengths[index], ok, error });
    const req = http.request(
      { host: '127.0.0.1', port, path: '/predict', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => (res.statusCode === 200 ? done(true) : done(false, `${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 200)}`)));
        res.on('error', (err) => done(false, err.message));
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', (err) => done(false, err.message));
    req.end(body);
  });
}

interface WindowResult {
  requests: number;
  seqPerS: number;
  residuesPerS: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  meanBatch: number;
  padding: number;
  firstError?: string;
}

type TimedBatch = BatchReport & { at: number };

/** `clients` closed-loop clients for warm-up + window; statistics of what completed in the window. */
async function measure(port: number, batches: readonly TimedBatch[], next: () => number): Promise<WindowResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const start = performance.now();
  const windowStart = start + warmupMs;
  const windowEnd = windowStart + durationMs;
  const completions: Completion[] = [];
  const batchesBefore = batches.length;
  let stop = false;
  const client = async () => {
    while (!stop && performance.now() < windowEnd) completions.push(await predict(agent, port, next()));
  };
  const running = Promise.all(Array.from({ length: clients }, client));
  const settleTimer = setTimeout(() => {
    stop = true;
    agent.destroy(); // in-flight requests fail; bounded whatever the server does
  }, windowEnd - start + SETTLE_MS);
  await running;
  clearTimeout(settleTimer);
  agent.destroy();

  const seconds = durationMs / 1000;
  const inWindow = completions.filter((c) => c.at >= windowStart && c.at < windowEnd);
  const ok = inWindow.filter((c) => c.ok);
  const latencies = ok.map((c) => c.latencyMs).sort((a, b) => a - b);
  const windowBatches = batches.slice(batchesBefore).filter((b) => b.at >= windowStart && b.at < windowEnd);
  const sequences = windowBatches.reduce((sum, b) => sum + b.sequences, 0);
  const padded = windowBatches.reduce((sum, b) => sum + b.paddedTokens, 0);
  const real = windowBatches.reduce((sum, b) => sum + b.tokens, 0);
  return {
    requests: ok.length,
    seqPerS: ok.length / seconds,
    residuesPerS: ok.reduce((sum, c) => sum + c.residues, 0) / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    errors: inWindow.length - ok.length,
    meanBatch: windowBatches.length ? sequences / windowBatches.length : NaN,
    padding: padded ? 1 - real / padded : NaN,
    firstError: inWindow.find((c) => !c.ok)?.error,
  };
}

async function runConfiguration(queue: boolean, devices: string): Promise<Record<string, string | number>> {
  const env: Record<string, string> = {
    MODEL_NAME: modelDir,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DEVICES: devices,
    BATCH_QUEUE_ENABLED: String(queue),
  };
  if (opts.maxWaitMs !== undefined) env.BATCH_QUEUE_MAX_WAIT_MS = opts.maxWaitMs;
  const settings = loadSettings(env);
  const { app, runtime } = await buildApp(settings, { version: 'bench', logger: false });
  await app.listen({ host: settings.host, port: 0 });
  try {
    await runtime.start();
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const batches: TimedBatch[] = [];
    runtime.model!.scheduler.on('batch', (report: BatchReport) => batches.push({ ...report, at: performance.now() }));
    let cursor = 0;
    const next = () => cursor++ % bodies.length;
    const windows: WindowResult[] = [];
    for (let r = 0; r < repeats; r++) {
      const w = await measure(port, batches, next);
      windows.push(w);
      console.log(
        `  queue ${queue ? 'on' : 'off'}, ${runtime.model!.devicesDescription}, repeat ${r + 1}/${repeats}: ` +
          `${w.requests} requests, ${w.seqPerS.toFixed(1)} seq/s, p50 ${w.p50.toFixed(0)} ms, mean batch ${w.meanBatch.toFixed(2)}, ${w.errors} errors` +
          (w.firstError ? ` (first: ${w.firstError})` : ''),
      );
    }
    const med = (pick: (w: WindowResult) => number) => median(windows.map(pick));
    return {
      queue: queue ? 'on' : 'off',
      DEVICES: devices,
      requests: Math.round(med((w) => w.requests)),
      'seq/s': med((w) => w.seqPerS).toFixed(1),
      'residues/s': Math.round(med((w) => w.residuesPerS)),
      'p50 ms': med((w) => w.p50).toFixed(0),
      'p95 ms': med((w) => w.p95).toFixed(0),
      'p99 ms': med((w) => w.p99).toFixed(0),
      errors: Math.round(med((w) => w.errors)),
      'mean batch': med((w) => w.meanBatch).toFixed(2),
      'padding %': (100 * med((w) => w.padding)).toFixed(0),
    };
  } finally {
    await app.close();
    await runtime.drain();
  }
}

console.log(
  `service throughput: ${opts.preset} (random weights), ${clients} keep-alive clients, one sequence per /predict, ` +
    `lognormal lengths (median 250, 30–1022; pool of ${lengths.length}, mean ${meanLength.toFixed(0)}), ` +
    `${warmupMs / 1000} s warm-up + ${durationMs / 1000} s measured × ${repeats}, ${availableParallelism()} cores, ` +
    `BATCH_QUEUE_MAX_WAIT_MS ${opts.maxWaitMs ?? 'default'}`,
);
const rows: Record<string, string | number>[] = [];
for (const devices of opts.devices.split(';').map((d) => d.trim()).filter(Boolean)) {
  for (const q of opts.queue.split(',').map((x) => x.trim())) {
    if (q !== 'on' && q !== 'off') throw new Error(`--queue takes on and/or off, got ${q}`);
    rows.push(await runConfiguration(q === 'on', devices));
  }
}
console.log();
console.table(rows);
if (opts.json) console.log(JSON.stringify(rows, null, 2));
