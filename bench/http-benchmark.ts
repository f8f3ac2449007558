// The HTTP load benchmark behind `npm run benchmark` (and bench:scaling, bench:service): N
// closed-loop clients on an undici Pool of N keep-alive connections send /predict (batch size 1),
// /predict/batch (larger) or /v1/embed requests built from a seeded workload, and every batch size
// gets requests, sequences, residues, errors by status, rates and latency percentiles. With
// protocol grpc the requests are gRPC Embed calls instead (grpc-client.ts).
// Works against the seed's FastAPI service too: /v1/models and /metrics are optional.
import os from 'node:os';
import { Pool } from 'undici';
import { warmupThenMeasure, type Completion, type PointStats } from './load.js';
import { parsePrometheus, serverDelta, type Sample, type ServerDelta } from './prometheus.js';
import { buildWorkload, parseLengthsSpec, type Workload } from './workload.js';
import { GRPC_EMBED_PATH, grpcClient, grpcSender } from './grpc-client.js';

export type Endpoint = 'predict' | 'embed';

export interface BenchmarkOptions {
  /** Server origin, e.g. http://localhost:8000 (a path prefix is not supported). */
  url: string;
  batchSizes: number[];
  /** Measured requests per batch size (default 100; with `durationS`: a cap, default none). */
  requests?: number;
  /** Measure for this many seconds per batch size instead of a request count. */
  durationS?: number;
  concurrency: number;
  /** `lognormal`, `lognormal:MEDIAN`, `fixed:N` or `file:FASTA`. */
  lengths: string;
  endpoint: Endpoint;
  /** Warm-up requests per batch size, not measured (default: one per client). */
  warmup?: number;
  /** Warm-up seconds per batch size instead of (or capping) a request count. */
  warmupS?: number;
  seed: number;
  /** Distinct sequences generated for lognormal/fixed workloads (requests cycle through them). */
  poolSize?: number;
  /** Per-request limit, seconds: an answer later than this is an error ("timeout"). */
  timeoutS?: number;
  /** Longest a count-bounded phase runs, seconds. */
  timeLimitS?: number;
  apiKey?: string;
  /** `grpc`: the requests are esm2.v1.Esm2/Embed calls (mean) on one channel to `grpcAddress`; /v1/models and /metrics still over HTTP. */
  protocol?: 'http' | 'grpc';
  /** host:port of the server's GRPC_PORT. */
  grpcAddress?: string;
  /** Use these sequences instead of building them from `lengths` (callers that measure many points). */
  workload?: Workload;
  /** Read the server's /metrics around each measurement (esm2-serve only; skipped when absent). */
  serverMetrics?: boolean;
  log?: (line: string) => void;
}

export interface BatchSizeResult extends PointStats {
  batch_size: number;
  path: string;
  concurrency: number;
  warmup_requests: number;
  /** Keep-alive connections the pool held at the end. */
  connections: number;
  /** What the server counted meanwhile (warm-up excluded; null when /metrics is unavailable). */
  server: ServerDelta | null;
}

export interface MachineInfo {
  cpu_model: string;
  cores: number;
  memory_bytes: number;
  platform: string;
  release: string;
  node: string;
  hostname: string;
}

export interface ServerInfo {
  model: string | null;
  /** /health devices array length (the seed's /health has only gpu_count). */
  devices: number | null;
  gpu_count: number | null;
  health: Record<string, unknown>;
  /** /v1/models `settings` (null against a server without /v1/models). */
  settings: Record<string, unknown> | null;
  devices_description: string | null;
  max_sequence_length: number | null;
  max_batch_size: number | null;
}

export interface BenchmarkReport {
  tool: 'esm2-serve benchmark';
  format: 1;
  date: string;
  url: string;
  options: {
    endpoint: Endpoint;
    protocol: 'http' | 'grpc';
    grpc_address: string | null;
    batch_sizes: number[];
    requests: number;
    duration_s: number | null;
    concurrency: number;
    warmup: number | null;
    warmup_s: number | null;
    lengths: string;
    seed: number;
    pool_size: number;
    timeout_s: number;
  };
  machine: MachineInfo;
  server: ServerInfo;
  workload: { description: string; sequences: number; mean_length: number; median_length: number; skipped: number };
  results: BatchSizeResult[];
}

const DEFAULT_TIMEOUT_S = 300;
const DEFAULT_TIME_LIMIT_S = 1800;
/** Requests of a duration run are capped at this many per batch size as well. */
export const DURATION_REQUEST_CAP = 10_000_000;

export function machineInfo(): MachineInfo {
  return {
    cpu_model: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memory_bytes: os.totalmem(),
    platform: os.platform(),
    release: os.release(),
    node: process.version,
    hostname: os.hostname(),
  };
}

export function requestPath(endpoint: Endpoint, batchSize: number): string {
  if (endpoint === 'embed') return '/v1/embed';
  return batchSize === 1 ? '/predict' : '/predict/batch';
}

export function requestBody(endpoint: Endpoint, sequences: readonly string[]): string {
  if (endpoint === 'embed') return JSON.stringify({ sequences, include: ['mean'] });
  return sequences.length === 1 ? JSON.stringify({ sequence: sequences[0] }) : JSON.stringify({ sequences });
}

/** GET a JSON document; null on 404 (an older server), an Error for anything else unexpected. */
async function getJson(pool: Pool, path: string, headers: Record<string, string>, okStatuses = [200]): Promise<Record<string, unknown> | null> {
  const res = await pool.request({ path, method: 'GET', headers, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const text = await res.body.text();
  if (res.statusCode === 404) return null;
  if (!okStatuses.includes(res.statusCode)) throw new Error(`GET ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function scrapeMetrics(pool: Pool, headers: Record<string, string>): Promise<Sample[] | null> {
  try {
    const res = await pool.request({ path: '/metrics', method: 'GET', headers, headersTimeout: 30_000, bodyTimeout: 30_000 });
    const text = await res.body.text();
    if (res.statusCode !== 200) return null;
    const samples = parsePrometheus(text);
    return samples.some((s) => s.name === 'esm2_requests_total') ? samples : null;
  } catch {
    return null;
  }
}

/** What the server says about itself: model, devices, settings. */
export async function serverInfo(url: string, apiKey?: string): Promise<ServerInfo> {
  const pool = new Pool(new URL(url).origin, { connections: 1 });
  try {
    const headers = authHeaders(apiKey);
    // /health answers 503 while unhealthy; the document is still worth reading.
    const health = (await getJson(pool, '/health', headers, [200, 503])) ?? {};
    if (health.status !== undefined && health.status !== 'healthy') throw new Error(`${url}/health says "${String(health.status)}": ${String(health.message ?? '')}`);
    const models = await getJson(pool, '/v1/models', headers);
    const settings = (models?.settings as Record<string, unknown> | undefined) ?? null;
    const number = (v: unknown) => (typeof v === 'number' ? v : null);
    return {
      model: (models?.name as string | undefined) ?? (health.model_name as string | undefined) ?? null,
      devices: Array.isArray(health.devices) ? health.devices.length : null,
      gpu_count: number(health.gpu_count),
      health,
      settings,
      devices_description: (models?.devices_description as string | undefined) ?? null,
      max_sequence_length: number(models?.max_sequence_length) ?? number(settings?.MAX_SEQUENCE_LENGTH),
      max_batch_size: number(settings?.MAX_BATCH_SIZE),
    };
  } finally {
    await pool.close();
  }
}

function authHeaders(apiKey?: string): Record<string, string> {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

/** One POST; resolves (never rejects) with its completion. */
async function post(pool: Pool, path: string, body: string, sequences: number, residues: number, headers: Record<string, string>, timeoutMs: number): Promise<Completion> {
  const startedAt = performance.now();
  try {
    const res = await pool.request({
      path,
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const bytes = (await res.body.arrayBuffer()).byteLength;
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    return { startedAt, endedAt: performance.now(), ok, status: String(res.statusCode), sequences, residues, bytes, ...(ok ? {} : { detail: `HTTP ${res.statusCode}` }) };
  } catch (err) {
    const e = err as { name?: string; code?: string; message?: string };
    const timeout = e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
    return { startedAt, endedAt: performance.now(), ok: false, status: timeout ? 'timeout' : 'network', sequences, residues, detail: `${e.code ?? e.name ?? 'error'}: ${e.message ?? String(err)}` };
  }
}

/** A `send` for closedLoop: request `index` carries the next `batchSize` sequences of the workload. */
export function httpSender(pool: Pool, opts: { endpoint: Endpoint; batchSize: number; workload: Workload; apiKey?: string; timeoutMs: number }): (index: number) => Promise<Completion> {
  const path = requestPath(opts.endpoint, opts.batchSize);
  const headers = authHeaders(opts.apiKey);
  const all = opts.workload.sequences;
  return (index) => {
    const sequences = Array.from({ length: opts.batchSize }, (_, k) => all[(index * opts.batchSize + k) % all.length]);
    const residues = sequences.reduce((sum, s) => sum + s.length, 0);
    return post(pool, path, requestBody(opts.endpoint, sequences), sequences.length, residues, headers, opts.timeoutMs);
  };
}

export async function runBenchmark(o: BenchmarkOptions): Promise<BenchmarkReport> {
  const log = o.log ?? (() => undefined);
  const origin = new URL(o.url).origin;
  if (!(o.concurrency >= 1) || !Number.isInteger(o.concurrency)) throw new Error(`--concurrency must be a whole number ≥ 1, got ${o.concurrency}`);
  for (const b of o.batchSizes) if (!(Number.isInteger(b) && b >= 1)) throw new Error(`--batch-sizes must be whole numbers ≥ 1, got ${b}`);
  const requests = o.requests ?? (o.durationS !== undefined ? DURATION_REQUEST_CAP : 100);
  if (!(Number.isInteger(requests) && requests >= 1)) throw new Error(`--requests must be a whole number ≥ 1, got ${requests}`);
  if (o.durationS !== undefined && !(o.durationS > 0)) throw new Error(`--duration must be > 0 seconds, got ${o.durationS}`);
  const timeoutS = o.timeoutS ?? DEFAULT_TIMEOUT_S;
  const timeLimitS = o.timeLimitS ?? DEFAULT_TIME_LIMIT_S;
  const warmup = o.warmup ?? (o.warmupS !== undefined ? 0 : o.concurrency);
  const poolSize = o.poolSize ?? 2048;

  const server = await serverInfo(o.url, o.apiKey);
  const maxLength = server.max_sequence_length ?? 1022;
  const workload = o.workload ?? (await buildWorkload(parseLengthsSpec(o.lengths), { count: poolSize, seed: o.seed, maxLength }));
  const lengths = workload.sequences.map((s) => s.length).sort((a, b) => a - b);
  for (const b of o.batchSizes) {
    if (server.max_batch_size !== null && b > server.max_batch_size) log(`warning: batch size ${b} exceeds the server's MAX_BATCH_SIZE ${server.max_batch_size}: expect every request to fail`);
  }

  const pool = new Pool(origin, { connections: o.concurrency, pipelining: 1, keepAliveTimeout: 60_000, connect: { timeout: 30_000 } });
  const grpc = o.protocol === 'grpc' ? grpcClient(o.grpcAddress ?? `${new URL(o.url).hostname}:50051`) : undefined;
  const results: BatchSizeResult[] = [];
  try {
    for (const batchSize of o.batchSizes) {
      const timeoutMs = timeoutS * 1000;
      const send = grpc
        ? grpcSender(grpc, { batchSize, sequences: workload.sequences, timeoutMs, ...(o.apiKey ? { apiKey: o.apiKey } : {}) })
        : httpSender(pool, { endpoint: o.endpoint, batchSize, workload, apiKey: o.apiKey, timeoutMs });
      let before: Sample[] | null = null;
      const { warmup: warm, stats } = await warmupThenMeasure({
        concurrency: o.concurrency,
        send,
        warmupRequests: warmup,
        warmupS: o.warmupS,
        requests: Math.min(requests, DURATION_REQUEST_CAP),
        durationS: o.durationS,
        timeLimitS,
        beforeMeasured: async () => {
          if (o.serverMetrics !== false) before = await scrapeMetrics(pool, authHeaders(o.apiKey));
        },
      });
      const after = before ? await scrapeMetrics(pool, authHeaders(o.apiKey)) : null;
      const path = grpc ? GRPC_EMBED_PATH : requestPath(o.endpoint, batchSize);
      const result: BatchSizeResult = {
        batch_size: batchSize,
        path,
        concurrency: o.concurrency,
        warmup_requests: warm.completions.length,
        connections: grpc ? 1 : pool.stats.connected,
        ...stats,
        server: before && after ? serverDelta(before, after, [path]) : null,
      };
      results.push(result);
      log(
        `batch size ${batchSize} (${path}): ${result.requests} requests, ${result.seq_per_s.toFixed(1)} seq/s, ${Math.round(result.residues_per_s)} residues/s, ` +
          `p50 ${fmtMs(result.latency_ms?.p50)} ms, ${Object.values(result.errors).reduce((a, b) => a + b, 0)} errors` +
          (result.first_error ? ` (first: ${result.first_error})` : ''),
      );
    }
  } finally {
    grpc?.close();
    await pool.close();
  }

  return {
    tool: 'esm2-serve benchmark',
    format: 1,
    date: new Date().toISOString(),
    url: o.url,
    options: {
      endpoint: o.endpoint,
      protocol: o.protocol ?? 'http',
      grpc_address: grpc ? (o.grpcAddress ?? `${new URL(o.url).hostname}:50051`) : null,
      batch_sizes: o.batchSizes,
      requests,
      duration_s: o.durationS ?? null,
      concurrency: o.concurrency,
      warmup: o.warmupS !== undefined && o.warmup === undefined ? null : warmup,
      warmup_s: o.warmupS ?? null,
      lengths: o.lengths,
      seed: o.seed,
      pool_size: workload.sequences.length,
      timeout_s: timeoutS,
    },
    machine: machineInfo(),
    server,
    workload: {
      description: workload.description,
      sequences: workload.sequences.length,
      mean_length: lengths.reduce((a, b) => a + b, 0) / lengths.length,
      median_length: lengths[lengths.length >> 1],
      skipped: workload.skipped,
    },
    results,
  };
}

function fmtMs(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? '–' : v < 10 ? v.toFixed(1) : v.toFixed(0);
}

/** The stdout table: one row per batch size. */
export function resultTable(results: readonly BatchSizeResult[]): { headers: string[]; rows: string[][] } {
  const headers = ['batch', 'path', 'conc.', 'requests', 'sequences', 'residues', 'errors', 'seq/s', 'residues/s', 'min ms', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'];
  const rows = results.map((r) => [
    String(r.batch_size),
    r.path,
    String(r.concurrency),
    String(r.requests),
    String(r.sequences),
    String(r.residues),
    Object.keys(r.errors).length ? Object.entries(r.errors).map(([k, v]) => `${k}×${v}`).join(' ') : '0',
    r.seq_per_s.toFixed(1),
    Math.round(r.residues_per_s).toLocaleString('en-US'),
    fmtMs(r.latency_ms?.min),
    fmtMs(r.latency_ms?.p50),
    fmtMs(r.latency_ms?.p95),
    fmtMs(r.latency_ms?.p99),
    fmtMs(r.latency_ms?.max),
  ]);
  return { headers, rows };
}
