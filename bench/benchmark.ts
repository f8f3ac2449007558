// npm run benchmark -- --url URL --batch-sizes 1 8 32 [options]: load a running esm2-serve (or the
// FastAPI service it descends from) with N concurrent keep-alive clients, per batch size; a table on
// stdout and every figure, with machine, model and server settings, in --output FILE.json.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { resultTable, runBenchmark, type Endpoint } from './http-benchmark.js';
import { textTable } from './tables.js';

const whole = (min: number) => (value: string): number => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}`);
  return n;
};
const seconds = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected seconds > 0');
  return n;
};

const program = new Command('benchmark')
  .description('Load benchmark of an esm2-serve (or seed FastAPI) server')
  .option('--url <url>', 'server URL', 'http://localhost:8000')
  .option('--batch-sizes <n...>', 'sequences per request: 1 uses /predict, larger /predict/batch', (v: string, prev: number[] | undefined) => [...(prev ?? []), whole(1)(v)])
  .option('--requests <n>', 'measured requests per batch size (default 100; with --duration a cap)', whole(1))
  .option('--output <file>', 'write every figure as JSON here')
  .option('--concurrency <n>', 'parallel clients, each on its own keep-alive connection', whole(1), 1)
  .option('--duration <s>', 'measure for this many seconds per batch size instead of a request count', seconds)
  .option('--lengths <spec>', 'sequence lengths: lognormal (median 250, clipped 30–1022), lognormal:MEDIAN, fixed:N, file:FASTA', 'lognormal')
  .addOption(new Option('--protocol <protocol>', 'http, or grpc: esm2.v1.Esm2/Embed (mean of the last layer, the sequences of --batch-sizes) on one channel to --grpc').choices(['http', 'grpc']).default('http'))
  .option('--grpc <host:port>', 'the server\'s GRPC_PORT (default: the --url host, port 50051)')
  .addOption(new Option('--endpoint <kind>', 'predict: /predict and /predict/batch; embed: /v1/embed').choices(['predict', 'embed']).default('predict'))
  .option('--warmup <n>', 'unmeasured requests per batch size first (default: one per client)', whole(0))
  .option('--seed <n>', 'workload seed', whole(0), 1)
  .option('--pool <n>', 'distinct random sequences the requests cycle through', whole(1), 2048)
  .option('--timeout <s>', 'per-request limit; later answers count as errors ("timeout")', seconds, 300)
  .option('--time-limit <s>', 'longest a count-bounded batch size may run', seconds, 1800)
  .option('--api-key <key>', 'sent as Authorization: Bearer (servers with API_KEY set)')
  .option('--no-server-metrics', 'do not read the server\'s /metrics around each measurement')
  .parse();

const opts = program.opts<{
  url: string;
  batchSizes?: number[];
  requests?: number;
  output?: string;
  concurrency: number;
  duration?: number;
  lengths: string;
  endpoint: Endpoint;
  protocol: 'http' | 'grpc';
  grpc?: string;
  warmup?: number;
  seed: number;
  pool: number;
  timeout: number;
  timeLimit: number;
  apiKey?: string;
  serverMetrics: boolean;
}>();

const batchSizes = opts.batchSizes ?? [1, 8, 32, 64];
const log = (line: string) => console.error(line);
try {
  const report = await runBenchmark({
    url: opts.url,
    batchSizes,
    requests: opts.requests,
    durationS: opts.duration,
    concurrency: opts.concurrency,
    lengths: opts.lengths,
    endpoint: opts.endpoint,
    protocol: opts.protocol,
    ...(opts.grpc ? { grpcAddress: opts.grpc } : {}),
    warmup: opts.warmup,
    seed: opts.seed,
    poolSize: opts.pool,
    timeoutS: opts.timeout,
    timeLimitS: opts.timeLimit,
    apiKey: opts.apiKey,
    serverMetrics: opts.serverMetrics,
    log,
  });
  const s = report.server;
  console.log(
    `${report.url}: ${s.model ?? 'unknown model'}; ${s.devices ?? '?'} device(s), ${s.gpu_count ?? '?'} GPU(s)` +
      (s.devices_description ? ` (${s.devices_description})` : '') +
      (s.settings ? `; batch queue ${s.settings.BATCH_QUEUE_ENABLED ? 'on' : 'off'}` : ''),
  );
  console.log(
    `${report.workload.description}; mean ${report.workload.mean_length.toFixed(0)} residues; ` +
      `${opts.concurrency} client(s), ${opts.duration !== undefined ? `${opts.duration} s` : `${report.options.requests} requests`} per batch size after ${report.options.warmup ?? 0} warm-up; ` +
      `${report.machine.cores} × ${report.machine.cpu_model}`,
  );
  const { headers, rows } = resultTable(report.results);
  console.log(textTable(headers, rows));
  if (opts.output) {
    await mkdir(dirname(opts.output), { recursive: true });
    await writeFile(opts.output, JSON.stringify(report, null, 2) + '\n');
    console.log(`wrote ${opts.output}`);
  }
  const failed = report.results.reduce((sum, r) => sum + r.requests - r.ok, 0);
  if (failed > 0) log(`warning: ${failed} request(s) failed (see "errors")`);
} catch (err) {
  console.error(`benchmark: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
