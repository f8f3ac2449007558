// npm run bench:scaling — the service end to end under load, per device setting and batch-queue
// setting: starts `esm2 serve` as a child process on a random checkpoint of a published shape (or
// MODEL_NAME / --model), drives it with the HTTP benchmark at several concurrencies and batch sizes,
// measures the same workload through the engine alone (ReplicaPool + Scheduler, no HTTP), repeats
// everything (repeat loop outermost, so slow drifts of a shared machine spread over every setting)
// and writes <out-dir>/<date>-scaling.json, a Markdown report and SVG charts.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { writeRandomCheckpoint } from '../src/model/random-checkpoint.js';
import { loadSettings, type Settings } from '../src/server/settings.js';
import { DURATION_REQUEST_CAP, machineInfo, requestPath, runBenchmark, type BatchSizeResult, type ServerInfo } from './http-benchmark.js';
import { measureEngine, startEngine } from './engine-load.js';
import type { PointStats } from './load.js';
import { median } from './matmul.js';
import { startServerProcess } from './server-process.js';
import { lineChart, PALETTE, type Series } from './svg-chart.js';
import { markdownTable, textTable } from './tables.js';
import { buildWorkload, parseLengthsSpec } from './workload.js';

const whole = (min: number) => (value: string): number => {
  if (!/^\d+$/.test(value.trim()) || Number(value) < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}`);
  return Number(value);
};
const list = <T>(parse: (v: string) => T) => (value: string, previous: T[] | undefined): T[] => [...(previous ?? []), parse(value)];
const onOff = (value: string): boolean => {
  if (value !== 'on' && value !== 'off') throw new InvalidArgumentError('expected on or off');
  return value === 'on';
};
const seconds = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected seconds > 0');
  return n;
};
const keyValue = (value: string): [string, string] => {
  const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected VARIABLE=value');
  return [m[1], m[2]];
};

const program = new Command('bench:scaling')
  .description('End-to-end scaling of esm2-serve: device settings × batch queue × concurrency × batch size, with charts')
  .option('--preset <name>', 'random checkpoint shape (ignored with --model)', 'esm2_t6_8M_UR50D')
  .option('--model <dir>', 'checkpoint directory to serve instead of a random one (default: $MODEL_NAME)')
  .option('--devices <spec...>', 'DEVICES settings to compare (e.g. cpu:1 cpu:2, or auto)', list(String))
  .option('--queue <on|off...>', 'BATCH_QUEUE_ENABLED settings', list(onOff))
  .option('--concurrency <n...>', 'concurrent clients for the throughput curve', list(whole(1)))
  .option('--batch-sizes <n...>', 'sequences per request for the latency curve', list(whole(1)))
  .option('--latency-concurrency <n>', 'clients for the latency-vs-batch-size curve', whole(1), 1)
  .option('--throughput-batch-size <n>', 'sequences per request on the throughput curve', whole(1), 1)
  .option('--engine-concurrency <n>', 'clients for engine-only vs end-to-end (default: the largest --concurrency)', whole(1))
  .option('--no-engine', 'skip the engine-only measurement')
  .option('--duration <s>', 'measured seconds per point', seconds, 3)
  .option('--warmup <n>', 'unmeasured requests before each point (default: one per client)', whole(0))
  .option('--repeats <n>', 'repeats of everything (medians reported)', whole(1), 3)
  .option('--lengths <spec>', 'lognormal, lognormal:MEDIAN, fixed:N or file:FASTA', 'lognormal')
  .option('--seed <n>', 'workload seed', whole(0), 1)
  .option('--pool <n>', 'distinct random sequences', whole(1), 2048)
  .option('--server-env <VAR=value...>', 'extra settings for every server (e.g. MAX_QUEUED_TOKENS=1048576)', list(keyValue))
  .option('--out-dir <dir>', 'where the JSON, Markdown and SVG files go', join('bench', 'results'))
  .option('--name <prefix>', 'file name prefix (default: <date>-scaling)')
  .option('--cache <dir>', 'random checkpoints and compiled graphs', join('bench', '.cache'))
  .option('--start-timeout <s>', 'longest a server may take to become ready', seconds, 600)
  .parse();

const opts = program.opts<{
  preset: string;
  model?: string;
  devices?: string[];
  queue?: boolean[];
  concurrency?: number[];
  batchSizes?: number[];
  latencyConcurrency: number;
  throughputBatchSize: number;
  engineConcurrency?: number;
  engine: boolean;
  duration: number;
  warmup?: number;
  repeats: number;
  lengths: string;
  seed: number;
  pool: number;
  serverEnv?: [string, string][];
  outDir: string;
  name?: string;
  cache: string;
  startTimeout: number;
}>();

const devicesList = opts.devices ?? ['cpu:1', 'cpu:2'];
const queues = opts.queue ?? [true, false];
const concurrencies = [...new Set(opts.concurrency ?? [1, 8, 32, 64])].sort((a, b) => a - b);
const batchSizes = [...new Set(opts.batchSizes ?? [1, 8, 32])].sort((a, b) => a - b);
const engineConcurrency = opts.engineConcurrency ?? concurrencies[concurrencies.length - 1];
const tbs = opts.throughputBatchSize;
const serverEnv = Object.fromEntries(opts.serverEnv ?? []);
const cache = resolve(opts.cache);
const outDir = resolve(opts.outDir);
const date = new Date().toISOString().slice(0, 10);
const prefix = opts.name ?? `${date}-scaling`;
const log = (line: string) => console.error(line);
const startedAt = Date.now();
const loadAtStart = os.loadavg();

// ---- the model --------------------------------------------------------------------------------
const explicitModel = opts.model ?? process.env.MODEL_NAME;
const modelDir = explicitModel ? resolve(explicitModel) : join(cache, 'checkpoints', opts.preset);
if (!explicitModel && !existsSync(join(modelDir, 'config.json'))) {
  log(`writing a random ${opts.preset} checkpoint to ${modelDir}`);
  await writeRandomCheckpoint({ preset: opts.preset, outDir: modelDir, seed: 1 });
}
if (!existsSync(join(modelDir, 'config.json'))) throw new Error(`${modelDir}: no config.json (not a checkpoint directory)`);
const modelLabel = explicitModel ? modelDir : `${opts.preset} (random weights)`;
const shortModel = explicitModel ? basename(modelDir) : opts.preset;
// Parent (engine-only) and child servers share one compile cache: each shape is compiled once.
process.env.ESM2_COMPILE_CACHE ??= join(cache, 'compiled');

/** The settings a server of this configuration runs with (validated here, before anything starts). */
function envFor(devices: string, queue: boolean): Record<string, string> {
  return { ...serverEnv, MODEL_NAME: modelDir, DEVICES: devices, BATCH_QUEUE_ENABLED: String(queue), ESM2_COMPILE_CACHE: process.env.ESM2_COMPILE_CACHE! };
}
const settingsOf = (devices: string, queue: boolean): Settings => loadSettings({ ...envFor(devices, queue), HOST: '127.0.0.1', PORT: '0' });
for (const d of devicesList) for (const q of queues) settingsOf(d, q);

const maxLength = settingsOf(devicesList[0], queues[0]).maxSequenceLength;
const workload = await buildWorkload(parseLengthsSpec(opts.lengths), { count: opts.pool, seed: opts.seed, maxLength });
const warmupFor = (concurrency: number) => opts.warmup ?? concurrency;

// ---- the plan ---------------------------------------------------------------------------------
interface PointKey {
  concurrency: number;
  batchSize: number;
}
const pointKeys: PointKey[] = [];
const addPoint = (concurrency: number, batchSize: number) => {
  if (!pointKeys.some((p) => p.concurrency === concurrency && p.batchSize === batchSize)) pointKeys.push({ concurrency, batchSize });
};
for (const c of concurrencies) addPoint(c, tbs);
for (const b of batchSizes) addPoint(opts.latencyConcurrency, b);
if (opts.engine) addPoint(engineConcurrency, tbs);

const configs = devicesList.flatMap((devices) => queues.map((queue) => ({ devices, queue })));
// Per point: the window, plus warm-up and the requests still running at its end (measured on 2 cores: ≈ 2.5 s at 64 clients).
const perPoint = opts.duration + 2.5;
const estimateS = opts.repeats * (configs.length * (pointKeys.length * perPoint + 3) + (opts.engine ? configs.length * perPoint + devicesList.length * 1.5 : 0));
log(
  `bench:scaling: ${modelLabel}; ${configs.length} settings (${devicesList.join(', ')} × queue ${queues.map((q) => (q ? 'on' : 'off')).join('/')}) × ` +
    `${pointKeys.length} points × ${opts.repeats} repeats, ${opts.duration} s each${opts.engine ? ', plus engine-only' : ''}: roughly ${Math.ceil(estimateS / 60)} min`,
);
if (loadAtStart[0] > 0.5 * os.availableParallelism()) log(`warning: load average ${loadAtStart[0].toFixed(2)} on ${os.availableParallelism()} cores: the machine is busy, results will be noisy`);

// ---- measuring --------------------------------------------------------------------------------
interface Measured {
  repeat: number;
  devices: string;
  queue: boolean;
  concurrency: number;
  batch_size: number;
}
type HttpPoint = Measured & { result: BatchSizeResult };
type EnginePoint = Measured & { result: PointStats };
const httpPoints: HttpPoint[] = [];
const enginePoints: EnginePoint[] = [];
const servers = new Map<string, ServerInfo>();
const failures: string[] = [];
const configName = (devices: string, queue: boolean) => `${devices}, queue ${queue ? 'on' : 'off'}`;

for (let repeat = 1; repeat <= opts.repeats; repeat++) {
  for (const { devices, queue } of configs) {
    log(`[${repeat}/${opts.repeats}] ${configName(devices, queue)}: starting esm2 serve`);
    const server = await startServerProcess(envFor(devices, queue), { startTimeoutMs: opts.startTimeout * 1000 });
    try {
      for (const { concurrency, batchSize } of pointKeys) {
        // A point that fails outright (the server went away) is logged and left out; the run goes on.
        const report = await runBenchmark({
          url: server.url,
          batchSizes: [batchSize],
          durationS: opts.duration,
          requests: DURATION_REQUEST_CAP,
          concurrency,
          lengths: opts.lengths,
          endpoint: 'predict',
          warmup: warmupFor(concurrency),
          seed: opts.seed,
          workload,
          timeLimitS: 600,
        }).catch((err: unknown) => {
          failures.push(`${configName(devices, queue)}, concurrency ${concurrency}, batch ${batchSize}, repeat ${repeat}: ${err instanceof Error ? err.message : String(err)}`);
          log(`  concurrency ${concurrency}, batch ${batchSize}: FAILED: ${failures[failures.length - 1]}`);
          return undefined;
        });
        if (!report) continue;
        servers.set(configName(devices, queue), report.server);
        const result = report.results[0];
        httpPoints.push({ repeat, devices, queue, concurrency, batch_size: batchSize, result });
        log(`  concurrency ${concurrency}, batch ${batchSize}: ${pointLine(result)}`);
      }
    } finally {
      await server.stop();
    }
  }
  if (opts.engine) {
    for (const devices of devicesList) {
      log(`[${repeat}/${opts.repeats}] ${devices}: engine only (ReplicaPool + Scheduler, no HTTP)`);
      const engine = await startEngine(modelDir, settingsOf(devices, true));
      try {
        for (const queue of queues) {
          const result = await measureEngine(engine, settingsOf(devices, queue), {
            concurrency: engineConcurrency,
            batchSize: tbs,
            sequences: workload.sequences,
            warmupRequests: warmupFor(engineConcurrency),
            requests: DURATION_REQUEST_CAP,
            durationS: opts.duration,
            timeLimitS: 600,
            timeoutMs: 300_000,
          });
          enginePoints.push({ repeat, devices, queue, concurrency: engineConcurrency, batch_size: tbs, result });
          log(`  queue ${queue ? 'on' : 'off'}, concurrency ${engineConcurrency}, batch ${tbs}: ${pointLine(result)}`);
        }
      } finally {
        await engine.close();
      }
    }
  }
}

function pointLine(r: PointStats): string {
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  return `${r.requests} requests, ${r.seq_per_s.toFixed(1)} seq/s, ${Math.round(r.residues_per_s)} residues/s, p50 ${ms(r.latency_ms?.p50)} ms, p99 ${ms(r.latency_ms?.p99)} ms, ${errors} errors`;
}

// ---- medians ----------------------------------------------------------------------------------
interface Summary {
  devices: string;
  queue: boolean;
  concurrency: number;
  batch_size: number;
  path: string;
  repeats: number;
  requests: number;
  requests_per_s: number;
  seq_per_s: number;
  residues_per_s: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  /** Failed requests summed over the repeats. */
  errors: number;
  mean_batch_sequences: number | null;
  padding: number | null;
}

const med = (values: (number | null | undefined)[]): number => {
  const finite = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return finite.length ? median(finite) : NaN;
};
function summarizePoints(points: readonly (Measured & { result: PointStats & { server?: BatchSizeResult['server'] } })[]): Summary[] {
  const groups = new Map<string, typeof points>();
  for (const p of points) {
    const key = `${p.devices}|${p.queue}|${p.concurrency}|${p.batch_size}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  return [...groups.values()].map((g) => {
    const { devices, queue, concurrency, batch_size } = g[0];
    const r = g.map((p) => p.result);
    const mb = med(r.map((x) => x.server?.mean_batch_sequences));
    const pad = med(r.map((x) => x.server?.padding));
    return {
      devices,
      queue,
      concurrency,
      batch_size,
      path: requestPath('predict', batch_size),
      repeats: g.length,
      requests: med(r.map((x) => x.requests)),
      requests_per_s: med(r.map((x) => x.requests_per_s)),
      seq_per_s: med(r.map((x) => x.seq_per_s)),
      residues_per_s: med(r.map((x) => x.residues_per_s)),
      p50_ms: med(r.map((x) => x.latency_ms?.p50)),
      p95_ms: med(r.map((x) => x.latency_ms?.p95)),
      p99_ms: med(r.map((x) => x.latency_ms?.p99)),
      errors: r.reduce((sum, x) => sum + (x.requests - x.ok), 0),
      mean_batch_sequences: Number.isNaN(mb) ? null : mb,
      padding: Number.isNaN(pad) ? null : pad,
    };
  });
}
const httpSummary = summarizePoints(httpPoints);
const engineSummary = summarizePoints(enginePoints);
const find = (rows: readonly Summary[], devices: string, queue: boolean, concurrency: number, batchSize: number) =>
  rows.find((r) => r.devices === devices && r.queue === queue && r.concurrency === concurrency && r.batch_size === batchSize);

const overhead = opts.engine
  ? configs.map(({ devices, queue }) => {
      const engine = find(engineSummary, devices, queue, engineConcurrency, tbs);
      const e2e = find(httpSummary, devices, queue, engineConcurrency, tbs);
      const engineRate = engine?.residues_per_s ?? NaN;
      const e2eRate = e2e?.residues_per_s ?? NaN;
      return { devices, queue, concurrency: engineConcurrency, batch_size: tbs, engine_residues_per_s: engineRate, end_to_end_residues_per_s: e2eRate, http_overhead_pct: 100 * (1 - e2eRate / engineRate) };
    })
  : [];

// ---- output -----------------------------------------------------------------------------------
await mkdir(outDir, { recursive: true });
const machine = machineInfo();
const elapsedS = (Date.now() - startedAt) / 1000;
const files = {
  json: `${prefix}.json`,
  markdown: `${prefix}.md`,
  throughputChart: `${prefix}-throughput.svg`,
  latencyCharts: configs.map(({ devices, queue }) => ({ devices, queue, file: `${prefix}-latency-${slug(devices)}-queue-${queue ? 'on' : 'off'}.svg` })),
};

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}
function ms(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? '–' : v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
}
const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const one = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '–');
const pct = (v: number | null) => (v === null || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(0)}`);
const onoff = (q: boolean) => (q ? 'on' : 'off');

// Charts.
const deviceColor = (devices: string) => PALETTE[devicesList.indexOf(devices) % PALETTE.length];
const throughputSeries: Series[] = configs.map(({ devices, queue }, i) => ({
  label: configName(devices, queue),
  points: concurrencies.map((c) => ({ x: c, y: find(httpSummary, devices, queue, c, tbs)?.residues_per_s ?? NaN })),
  color: deviceColor(devices),
  dash: queue ? '' : '6 3',
  marker: (['circle', 'square', 'triangle', 'diamond', 'cross', 'plus'] as const)[i % 6],
}));
await writeFile(
  join(outDir, files.throughputChart),
  lineChart({
    title: `Throughput vs concurrency — ${shortModel}`,
    xLabel: `concurrent clients (batch size ${tbs}, ${requestPath('predict', tbs)})`,
    yLabel: 'residues / s (median)',
    xScale: 'log2',
    xTicks: concurrencies,
    series: throughputSeries,
    description: `Median residues per second against concurrent clients for ${configs.length} settings, ${machine.cores} × ${machine.cpu_model}, ${date}.`,
  }),
);
for (const { devices, queue, file } of files.latencyCharts) {
  const rows = batchSizes.map((b) => find(httpSummary, devices, queue, opts.latencyConcurrency, b));
  const series: Series[] = (['p50', 'p95', 'p99'] as const).map((p, i) => ({
    label: p,
    points: rows.map((r, k) => ({ x: batchSizes[k], y: r ? r[`${p}_ms`] : NaN })),
    color: PALETTE[i],
    dash: ['', '6 3', '2 3'][i],
    marker: (['circle', 'square', 'triangle'] as const)[i],
  }));
  await writeFile(
    join(outDir, file),
    lineChart({
      title: `Latency vs batch size — ${shortModel}, ${configName(devices, queue)}, ${opts.latencyConcurrency} client${opts.latencyConcurrency > 1 ? 's' : ''}`,
      xLabel: 'sequences per request (1: /predict, more: /predict/batch)',
      yLabel: 'latency, ms (median of repeats)',
      xScale: 'log2',
      xTicks: batchSizes,
      yScale: 'log10',
      series,
    }),
  );
}

// Markdown.
const md: string[] = [];
const cmd = `npm run bench:scaling${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
md.push(
  `# Scaling — ${modelLabel}, ${date}`,
  '',
  `- Machine: ${machine.cores} × ${machine.cpu_model}, ${(machine.memory_bytes / 2 ** 30).toFixed(1)} GiB, ${machine.platform} ${machine.release}, Node ${machine.node}; load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(' / ')}.`,
  `- Server: \`node bin/esm2.js serve\` as a child process per setting, on loopback; ${Object.keys(serverEnv).length ? `extra settings ${Object.entries(serverEnv).map(([k, v]) => `${k}=${v}`).join(', ')}; ` : ''}otherwise the defaults.`,
  `- Load: undici Pool with one keep-alive connection per client, closed loop; ${workload.description}; ${opts.duration} s measured per point after one warm-up request per client${opts.warmup !== undefined ? ` (here ${opts.warmup})` : ''}; rates count what was answered inside the window.`,
  `- ${opts.repeats} repeat${opts.repeats > 1 ? 's' : ''} (every setting once per repeat), medians; errors are summed over the repeats. Total time ${(elapsedS / 60).toFixed(1)} min.`,
  `- Command: \`${cmd}\``,
  ...(failures.length ? [`- **${failures.length} point(s) failed** and are missing: ${failures.join('; ')}`] : []),
  '',
  `## Throughput vs concurrency (batch size ${tbs}, \`${requestPath('predict', tbs)}\`)`,
  '',
  markdownTable(
    ['DEVICES', 'batch queue', 'clients', 'seq/s', 'residues/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'mean batch', 'padding %'],
    configs.flatMap(({ devices, queue }) =>
      concurrencies.map((c) => {
        const r = find(httpSummary, devices, queue, c, tbs);
        return r
          ? [devices, onoff(queue), String(c), one(r.seq_per_s), int(r.residues_per_s), ms(r.p50_ms), ms(r.p95_ms), ms(r.p99_ms), String(r.errors), r.mean_batch_sequences === null ? '–' : r.mean_batch_sequences.toFixed(2), pct(r.padding)]
          : [devices, onoff(queue), String(c), '–', '–', '–', '–', '–', '–', '–', '–'];
      }),
    ),
  ),
  '',
  `![Throughput vs concurrency](${files.throughputChart})`,
  '',
);
if (queues.length === 2) {
  md.push(
    '## Batch queue on vs off (residues/s)',
    '',
    markdownTable(
      ['DEVICES', 'clients', 'queue on', 'queue off', 'on / off'],
      devicesList.flatMap((devices) =>
        concurrencies.map((c) => {
          const on = find(httpSummary, devices, true, c, tbs)?.residues_per_s ?? NaN;
          const off = find(httpSummary, devices, false, c, tbs)?.residues_per_s ?? NaN;
          return [devices, String(c), int(on), int(off), Number.isFinite(on / off) ? (on / off).toFixed(2) : '–'];
        }),
      ),
    ),
    '',
  );
}
if (devicesList.length > 1) {
  md.push(
    `## ${devicesList.join(' vs ')} (residues/s)`,
    '',
    markdownTable(
      ['batch queue', 'clients', ...devicesList],
      queues.flatMap((queue) => concurrencies.map((c) => [onoff(queue), String(c), ...devicesList.map((d) => int(find(httpSummary, d, queue, c, tbs)?.residues_per_s ?? NaN))])),
    ),
    '',
  );
}
md.push(
  `## Latency vs batch size (${opts.latencyConcurrency} client${opts.latencyConcurrency > 1 ? 's' : ''})`,
  '',
  markdownTable(
    ['DEVICES', 'batch queue', 'batch size', 'route', 'requests/s', 'seq/s', 'residues/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors'],
    configs.flatMap(({ devices, queue }) =>
      batchSizes.map((b) => {
        const r = find(httpSummary, devices, queue, opts.latencyConcurrency, b);
        return r
          ? [devices, onoff(queue), String(b), r.path, one(r.requests_per_s), one(r.seq_per_s), int(r.residues_per_s), ms(r.p50_ms), ms(r.p95_ms), ms(r.p99_ms), String(r.errors)]
          : [devices, onoff(queue), String(b), requestPath('predict', b), '–', '–', '–', '–', '–', '–', '–'];
      }),
    ),
  ),
  '',
  ...files.latencyCharts.map(({ devices, queue, file }) => `![Latency vs batch size, ${configName(devices, queue)}](${file})`),
  '',
);
if (opts.engine) {
  md.push(
    `## Engine only vs end to end (${engineConcurrency} clients, batch size ${tbs})`,
    '',
    'Engine only: the same workload, clients and batch-queue settings through a ReplicaPool + Scheduler in the benchmark process (what the server builds, without HTTP, JSON and routes).',
    '',
    markdownTable(
      ['DEVICES', 'batch queue', 'engine residues/s', 'end-to-end residues/s', 'HTTP overhead %'],
      overhead.map((o) => [o.devices, onoff(o.queue), int(o.engine_residues_per_s), int(o.end_to_end_residues_per_s), Number.isFinite(o.http_overhead_pct) ? o.http_overhead_pct.toFixed(1) : '–']),
    ),
    '',
  );
}

const report = {
  tool: 'esm2-serve bench:scaling',
  format: 1,
  date: new Date().toISOString(),
  elapsed_s: elapsedS,
  command: cmd,
  machine: { ...machine, load_average_at_start: loadAtStart },
  model: { label: modelLabel, dir: modelDir, preset: explicitModel ? null : opts.preset },
  options: {
    devices: devicesList,
    queue: queues,
    concurrency: concurrencies,
    batch_sizes: batchSizes,
    latency_concurrency: opts.latencyConcurrency,
    throughput_batch_size: tbs,
    engine_concurrency: opts.engine ? engineConcurrency : null,
    duration_s: opts.duration,
    warmup: opts.warmup ?? 'one per client',
    repeats: opts.repeats,
    lengths: opts.lengths,
    seed: opts.seed,
    pool_size: workload.sequences.length,
    server_env: serverEnv,
  },
  workload: { description: workload.description, sequences: workload.sequences.length, mean_length: workload.sequences.reduce((s, q) => s + q.length, 0) / workload.sequences.length },
  servers: Object.fromEntries(servers),
  failures,
  summary: { end_to_end: httpSummary, engine_only: engineSummary, http_overhead: overhead },
  points: { end_to_end: httpPoints, engine_only: enginePoints },
  files,
};
await writeFile(join(outDir, files.json), JSON.stringify(report, null, 2) + '\n');
await writeFile(join(outDir, files.markdown), md.join('\n'));

console.log(
  textTable(
    ['DEVICES', 'queue', 'clients', 'batch', 'seq/s', 'residues/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors'],
    httpSummary.map((r) => [r.devices, onoff(r.queue), String(r.concurrency), String(r.batch_size), one(r.seq_per_s), int(r.residues_per_s), ms(r.p50_ms), ms(r.p95_ms), ms(r.p99_ms), String(r.errors)]),
  ),
);
if (overhead.length) {
  console.log();
  console.log(textTable(['DEVICES', 'queue', 'engine residues/s', 'end-to-end residues/s', 'HTTP overhead %'], overhead.map((o) => [o.devices, onoff(o.queue), int(o.engine_residues_per_s), int(o.end_to_end_residues_per_s), one(o.http_overhead_pct)])));
}
console.log(`\nwrote ${[files.json, files.markdown, files.throughputChart, ...files.latencyCharts.map((l) => l.file)].map((f) => join(outDir, f)).join('\n      ')}`);
console.log(`total ${(elapsedS / 60).toFixed(1)} min`);
if (failures.length) {
  console.log(`${failures.length} point(s) failed and are missing from the report:\n  ${failures.join('\n  ')}`);
  process.exitCode = 1;
}
