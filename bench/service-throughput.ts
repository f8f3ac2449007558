// npm run bench:service — end-to-end service throughput with the server in this process: the real
// HTTP server (replicas in their child processes) on a random-weight checkpoint of the t6 shape,
// driven by the HTTP benchmark (bench/http-benchmark.ts: N closed-loop clients on keep-alive
// connections, single-sequence /predict, lognormal lengths). One row per configuration: batch
// queue on/off × DEVICES. Mean batch and padding come from the server's /metrics.
// Note: the load generator shares this process (and its event loop) with the server; for the
// honest end-to-end measure with the server in its own process, see bench:scaling.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { writeRandomCheckpoint } from '../src/model/random-checkpoint.js';
import { buildApp } from '../src/server/app.js';
import { loadSettings } from '../src/server/settings.js';
import { runBenchmark, type BatchSizeResult } from './http-benchmark.js';
import { buildWorkload, parseLengthsSpec } from './workload.js';
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
const durationS = positive('duration', opts.duration);
const warmupS = Number(opts.warmup);
const repeats = Math.round(positive('repeats', opts.repeats));

const modelDir = join(opts.cache, 'checkpoints', opts.preset);
if (!existsSync(join(modelDir, 'config.json'))) {
  console.log(`writing a random ${opts.preset} checkpoint to ${modelDir}`);
  await writeRandomCheckpoint({ preset: opts.preset, outDir: modelDir, seed: 1 });
}
process.env.ESM2_COMPILE_CACHE ??= join(opts.cache, 'compiled');

const workload = await buildWorkload(parseLengthsSpec('lognormal'), { count: Math.round(positive('pool', opts.pool)), seed: 1, maxLength: 1022 });
const meanLength = workload.sequences.reduce((a, s) => a + s.length, 0) / workload.sequences.length;

async function runConfiguration(queue: boolean, devices: string): Promise<Record<string, string | number>> {
  const env: Record<string, string> = { MODEL_NAME: modelDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', DEVICES: devices, BATCH_QUEUE_ENABLED: String(queue) };
  if (opts.maxWaitMs !== undefined) env.BATCH_QUEUE_MAX_WAIT_MS = opts.maxWaitMs;
  const settings = loadSettings(env);
  const { app, runtime } = await buildApp(settings, { version: 'bench', logger: false });
  await app.listen({ host: settings.host, port: 0 });
  try {
    await runtime.start();
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const windows: BatchSizeResult[] = [];
    for (let r = 0; r < repeats; r++) {
      const report = await runBenchmark({
        url: `http://127.0.0.1:${port}`,
        batchSizes: [1],
        durationS,
        concurrency: clients,
        lengths: 'lognormal',
        endpoint: 'predict',
        warmupS: warmupS > 0 ? warmupS : undefined,
        warmup: warmupS > 0 ? undefined : 0,
        seed: 1,
        workload,
        timeoutS: 60,
      });
      const w = report.results[0];
      windows.push(w);
      console.log(
        `  queue ${queue ? 'on' : 'off'}, ${runtime.model!.devicesDescription}, repeat ${r + 1}/${repeats}: ` +
          `${w.requests} requests, ${w.seq_per_s.toFixed(1)} seq/s, p50 ${w.latency_ms?.p50.toFixed(0)} ms, mean batch ${w.server?.mean_batch_sequences?.toFixed(2)}, ${w.requests - w.ok} errors` +
          (w.first_error ? ` (first: ${w.first_error})` : ''),
      );
    }
    const med = (pick: (w: BatchSizeResult) => number | null | undefined) => median(windows.map((w) => pick(w) ?? NaN));
    return {
      queue: queue ? 'on' : 'off',
      DEVICES: devices,
      requests: Math.round(med((w) => w.requests)),
      'seq/s': med((w) => w.seq_per_s).toFixed(1),
      'residues/s': Math.round(med((w) => w.residues_per_s)),
      'p50 ms': med((w) => w.latency_ms?.p50).toFixed(0),
      'p95 ms': med((w) => w.latency_ms?.p95).toFixed(0),
      'p99 ms': med((w) => w.latency_ms?.p99).toFixed(0),
      errors: Math.round(med((w) => w.requests - w.ok)),
      'mean batch': med((w) => w.server?.mean_batch_sequences).toFixed(2),
      'padding %': (100 * med((w) => w.server?.padding)).toFixed(0),
    };
  } finally {
    await app.close();
    await runtime.drain();
  }
}

console.log(
  `service throughput: ${opts.preset} (random weights), ${clients} keep-alive clients, one sequence per /predict, ` +
    `lognormal lengths (median 250, 30–1022; pool of ${workload.sequences.length}, mean ${meanLength.toFixed(0)}), ` +
    `${warmupS} s warm-up + ${durationS} s measured × ${repeats}, ${availableParallelism()} cores, ` +
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
