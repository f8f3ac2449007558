// npm run bench:attack — the attack table, rerun against the real server (`esm2 serve` as a child
// process, bench/server-process.ts) on a random-weight checkpoint of the t6 shape with DEVICES=cpu:2.
// Each row sends one attack made of small valid requests, on a fresh server (with the row's extra
// settings), while another client sends a small /predict every ~500 ms and the RSS of the server and
// of its replicas (its child processes) is sampled every ~250 ms. Prints a markdown table and writes
// the same as JSON to bench/results/attack-<date>.json.
// node dist/bench/attack.js [--dir <checkpoint dir>] [--rows a20k,a10k,b-json,...] [--out <file>]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { postHead, StalledUpload } from '../test/helpers/stalled-upload.js';
import { protein } from '../test/helpers/load.js';
import { parsePrometheus, sumOf, type Sample } from './prometheus.js';
import { ESM2_BIN, startServerProcess, type ServerProcess } from './server-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PRESET = 'esm2_t6_8M_UR50D';
const CLIENT_TIMEOUT = 180_000; // every request of an attack
const ROW_LIMIT = 200_000; // a row still running after this is reported as such
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

const program = new Command('bench:attack')
  .option('--dir <dir>', 'random checkpoint directory (made when it has no config.json; default: a temp dir, removed after)')
  .option('--rows <list>', 'rows to run (comma-separated ids; default: all)')
  .option('--out <file>', 'JSON results file (default: bench/results/attack-<date>.json)')
  .parse();
const opts = program.opts<{ dir?: string; rows?: string; out?: string }>();

/** The `{error, detail}` of an error body (detail cut to 200 characters), or the raw text as detail. */
function errorBody(json: string): { error?: string; detail: string } {
  try {
    const parsed = JSON.parse(json) as { error?: unknown; detail?: unknown };
    return { error: String(parsed.error), detail: String(parsed.detail).slice(0, 200) };
  } catch {
    return { detail: json.slice(0, 200) };
  }
}
const proteins = (n: number, length: number, seed: number) => Array.from({ length: n }, (_, i) => protein(length, seed + i));

// ---------------------------------------------------------------------------------------------
// HTTP client (node:http: its own timeouts, source address and agents; bodies counted, not kept)

interface HttpResult {
  status: number | null; // null: no answer (error says why)
  headersMs: number | null;
  totalMs: number;
  bytes: number;
  error?: string; // the JSON body's `error`, or a client-side failure
  detail?: string; // first ~200 chars of the JSON body's `detail`
  clientError?: string;
  head?: string; // first bytes of a 2xx body
  tail?: string; // last bytes of a 2xx body
}

interface RequestOptions {
  port: number;
  method?: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  agent?: Agent | false;
  localAddress?: string;
  timeoutMs?: number;
}

function request(o: RequestOptions): Promise<HttpResult> {
  const started = now();
  return new Promise((resolve) => {
    let done = false;
    let headersMs: number | null = null;
    let status: number | null = null;
    let bytes = 0;
    let head = Buffer.alloc(0);
    let tail = Buffer.alloc(0);
    const finish = (clientError?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const r: HttpResult = { status, headersMs, totalMs: now() - started, bytes };
      if (clientError) r.clientError = clientError;
      if (status !== null && (status < 200 || status >= 300)) {
        const text = head.toString('utf8');
        try {
          const json = JSON.parse(text) as { error?: unknown; detail?: unknown };
          r.error = String(json.error);
          r.detail = (typeof json.detail === 'string' ? json.detail : JSON.stringify(json.detail)).slice(0, 200);
        } catch {
          r.detail = text.slice(0, 200);
        }
      } else if (status !== null) {
        r.head = head.subarray(0, 160).toString('utf8');
        r.tail = tail.toString('utf8');
      }
      resolve(r);
    };
    const body = o.body === undefined ? undefined : Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body);
    const headers: Record<string, string> = { ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}), ...o.headers };
    const req = httpRequest({ host: '127.0.0.1', port: o.port, method: o.method ?? (body ? 'POST' : 'GET'), path: o.path, headers, agent: o.agent ?? false, localAddress: o.localAddress }, (res) => {
      headersMs = now() - started;
      status = res.statusCode ?? null;
      const keepAll = status !== null && (status < 200 || status >= 300);
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (keepAll ? head.length < 65536 : head.length < 160) head = Buffer.concat([head, chunk]);
        tail = Buffer.concat([tail, chunk]);
        if (tail.length > 200) tail = tail.subarray(tail.length - 200);
      });
      res.on('end', () => finish());
      res.on('error', (err) => finish(err.message));
      res.on('close', () => finish(res.complete ? undefined : 'response cut before its end'));
    });
    const timer = setTimeout(() => req.destroy(new Error(`client timeout ${o.timeoutMs ?? CLIENT_TIMEOUT} ms`)), o.timeoutMs ?? CLIENT_TIMEOUT);
    req.on('error', (err: NodeJS.ErrnoException) => finish(err.code ? `${err.code}: ${err.message}` : err.message));
    req.end(body);
  });
}
const postJson = (port: number, path: string, value: unknown, extra: Partial<RequestOptions> = {}) => request({ port, path, body: JSON.stringify(value), ...extra });

async function scrape(port: number): Promise<Sample[] | null> {
  const r = await new Promise<{ status: number; text: string } | null>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', () => resolve(null));
    });
    req.setTimeout(10_000, () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
  return r && r.status === 200 ? parsePrometheus(r.text) : null;
}

// ---------------------------------------------------------------------------------------------
// Processes: the server's pid, its children (the replicas), VmRSS

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        out.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number));
      } catch {
        // task gone
      }
    }
  } catch {
    // process gone
  }
  return [...new Set(out)].sort((a, b) => a - b);
}
function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}
interface RssSample {
  server: number | null;
  replicas: Record<number, number | null>;
}
function sampleRss(serverPid: number): RssSample {
  const replicas: Record<number, number | null> = {};
  for (const pid of childrenOf(serverPid)) replicas[pid] = rssMiB(pid);
  return { server: rssMiB(serverPid), replicas };
}
const maxReplica = (s: RssSample) => Math.max(0, ...Object.values(s.replicas).map((v) => v ?? 0));

// ---------------------------------------------------------------------------------------------
// What runs around every row: the prober (small /predict every 500 ms) and the RSS sampler

interface Monitor {
  stop(): Promise<{ probes: { ms: number; ok: boolean; status: number | null; error?: string }[]; serverMax: number; replicaMax: number; samples: number }>;
}
function startMonitor(server: ServerProcess): Monitor {
  const pid = server.child.pid!;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const probes: { ms: number; ok: boolean; status: number | null; error?: string }[] = [];
  const pending = new Set<Promise<void>>();
  let serverMax = 0;
  let replicaMax = 0;
  let samples = 0;
  let n = 0;
  const sample = () => {
    const s = sampleRss(pid);
    samples++;
    serverMax = Math.max(serverMax, s.server ?? 0);
    replicaMax = Math.max(replicaMax, maxReplica(s));
  };
  sample();
  const sampler = setInterval(sample, 250);
  const started = now();
  const probe = () => {
    const p = postJson(server.port, '/predict', { sequence: protein(10, 1000 + n++) }, { agent, timeoutMs: 30_000 }).then((r) => {
      const ok = r.status === 200 && !r.clientError;
      probes.push({ ms: r.totalMs, ok, status: r.status, ...(ok ? {} : { error: r.clientError ?? r.error ?? `status ${r.status}` }) });
    });
    pending.add(p);
    void p.then(() => pending.delete(p));
  };
  probe();
  const prober = setInterval(probe, 500);
  return {
    async stop() {
      // A row answered at once still gets a few probes and samples (at least 2 s of them).
      await sleep(Math.max(0, 2000 - (now() - started)));
      clearInterval(prober);
      await Promise.race([Promise.all(pending), sleep(31_000)]);
      clearInterval(sampler);
      sample();
      agent.destroy();
      return { probes, serverMax, replicaMax, samples };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Rows

interface Answer {
  status: number | string; // a number, or 'no answer' / a note
  ms: number | null;
  error?: string;
  detail?: string;
}
interface RowContext {
  server: ServerProcess;
  port: number;
  notes: Record<string, unknown>;
}
interface Row {
  id: string;
  title: string;
  env?: Record<string, string>;
  run(ctx: RowContext): Promise<Answer[]>;
}

const fromHttp = (r: HttpResult): Answer => ({
  status: r.status ?? `no answer (${r.clientError})`,
  ms: r.totalMs,
  ...(r.error ? { error: r.error } : {}),
  ...(r.detail ? { detail: r.detail } : {}),
  ...(r.status !== null && r.clientError ? { error: `client: ${r.clientError}` } : {}),
});

const embedOne = (residues: number): Row => ({
  id: `a${residues / 1000}k`,
  title: `a. 1 × /v1/embed 1 × ${residues} residues, truncation window, contacts`,
  async run({ port, notes }) {
    const r = await postJson(port, '/v1/embed', { sequences: [protein(residues, 1)], truncation: 'window', include: ['contacts'] });
    notes.bytes = r.bytes;
    notes.headers_ms = r.headersMs;
    if (r.tail) notes.body_tail = r.tail.slice(-120);
    return [fromHttp(r)];
  },
});

/** `clients` raw sockets each send the request and then never read; destroyed after `holdMs`. */
const neverRead = (id: string, clients: number, accept: string | null): Row => ({
  id,
  title: `b. ${clients} clients /v1/embed 4 × 1022, per_residue+logits, repr_layers 0-6${accept ? `, Accept: ${accept}` : ''}, never read (40 s), RESPONSE_WRITE_TIMEOUT_MS=5000`,
  env: { RESPONSE_WRITE_TIMEOUT_MS: '5000' },
  async run({ port, notes }) {
    const holdMs = 40_000;
    const body = JSON.stringify({ sequences: proteins(4, 1022, 10), include: ['per_residue', 'logits'], repr_layers: [0, 1, 2, 3, 4, 5, 6] });
    const head = `POST /v1/embed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${accept ? `Accept: ${accept}\r\n` : ''}\r\n`;
    const started = now();
    const sockets = Array.from({ length: clients }, () => {
      const s = { socket: connect(port, '127.0.0.1'), closedAt: null as number | null, error: null as string | null };
      s.socket.on('error', (err: NodeJS.ErrnoException) => (s.error = err.code ?? err.message));
      s.socket.on('close', () => (s.closedAt = now() - started));
      s.socket.write(head + body);
      // No 'data' listener, no resume(): the socket stays paused; Node takes at most its highWaterMark.
      return s;
    });
    await sleep(holdMs);
    const answers: Answer[] = [];
    for (const s of sockets) {
      // Peek at what little Node buffered (no more is read): the status line, if any came.
      const buffered = s.socket.readableLength > 0 ? (s.socket.read() as Buffer | null) : null;
      const text = buffered ? buffered.toString('latin1') : '';
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? NaN);
      const answer: Answer = { status: Number.isFinite(status) ? status : s.closedAt !== null ? 'closed, nothing buffered' : 'open, nothing buffered', ms: s.closedAt };
      if (Number.isFinite(status) && status >= 300) {
        const json = /\r\n\r\n([\s\S]*)$/.exec(text)?.[1] ?? '';
        Object.assign(answer, errorBody(json));
      }
      answers.push(answer);
      s.socket.destroy();
    }
    notes.closed_by_server_before_40s = sockets.filter((s) => s.closedAt !== null).length;
    notes.socket_errors = sockets.map((s) => s.error).filter(Boolean);
    notes.close_times_s = sockets.map((s) => (s.closedAt === null ? null : +(s.closedAt / 1000).toFixed(1)));
    notes.note = 'ms = when this client saw the connection close (null: not seen within 40 s; a FIN behind unread data cannot be seen by a client that does not read: see esm2_response_write_timeouts_total in the server metrics delta)';
    return answers;
  },
});

const ROWS: Row[] = [
  embedOne(20_000),
  embedOne(10_000),
  neverRead('b-json', 24, null),
  neverRead('b-octet', 6, 'application/octet-stream'),
  {
    id: 'c',
    title: 'c. /v1/embed 4 × 1022 contacts, then a second one (replica RSS after each)',
    async run({ server, port, notes }) {
      const answers: Answer[] = [];
      const after: unknown[] = [];
      for (let i = 0; i < 2; i++) {
        const r = await postJson(port, '/v1/embed', { sequences: proteins(4, 1022, 20), include: ['contacts'] });
        answers.push(fromHttp(r));
        await sleep(1000);
        const s = sampleRss(server.child.pid!);
        after.push({ request: i + 1, status: r.status, bytes: r.bytes, server_rss_mib: round(s.server), replica_rss_mib: Object.values(s.replicas).map(round) });
      }
      notes.rss_after_each = after;
      return answers;
    },
  },
  {
    id: 'd',
    title: 'd. 450 raw uploads declaring Content-Length 10485760 to /v1/embed, 9.9 MB sent, then stalled; CLIENT_TIMEOUT_MS=10000',
    env: { CLIENT_TIMEOUT_MS: '10000' },
    async run({ server, port, notes }) {
      const body = Buffer.alloc(9_900_000, 0x20);
      const started = now();
      const uploads = Array.from({ length: 450 }, () => new StalledUpload(port, postHead('/v1/embed', 'Content-Length: 10485760\r\n')));
      const answeredAt = uploads.map(() => null as number | null);
      uploads.forEach((u, i) => void u.answeredOrClosed().then(() => (answeredAt[i] = now() - started)));
      await Promise.race([Promise.all(uploads.map((u) => Promise.race([u.send(body), u.answeredOrClosed()]))), sleep(60_000)]);
      notes.all_sent_s = +((now() - started) / 1000).toFixed(1);
      notes.server_rss_all_sent_mib = round(rssMiB(server.child.pid!));
      await Promise.race([Promise.all(uploads.map((u) => u.done)), sleep(60_000)]);
      notes.all_closed_s = +((now() - started) / 1000).toFixed(1);
      await sleep(2000);
      notes.server_rss_2s_after_408s_mib = round(rssMiB(server.child.pid!));
      return uploads.map((u, i) => {
        const status = u.status();
        const answer: Answer = { status: Number.isFinite(status) ? status : 'reset, unanswered', ms: answeredAt[i] };
        const json = /\r\n\r\n([\s\S]*)$/.exec(u.response)?.[1] ?? '';
        if (json) {
          Object.assign(answer, errorBody(json));
        }
        u.socket.destroy();
        return answer;
      });
    },
  },
  ...[2, 5].map(
    (n): Row => ({
      id: `e${n}`,
      title: `e. /v1/pll ${n} × 1022 on an idle server (batch metrics before, at the answer, 10 s after)`,
      async run({ port, notes }) {
        const before = await scrape(port);
        const r = await postJson(port, '/v1/pll', { sequences: proteins(n, 1022, 30) });
        const atAnswer = await scrape(port);
        await sleep(10_000);
        const later = await scrape(port);
        const work = (s: Sample[] | null) =>
          s && { batches: sumOf(s, 'esm2_batch_tokens_count'), batch_tokens: sumOf(s, 'esm2_batch_tokens_sum'), residues: sumOf(s, 'esm2_residues_total') };
        const [b, a, l] = [work(before), work(atAnswer), work(later)];
        if (b && a && l) {
          notes.work_until_answer = { batches: a.batches - b.batches, batch_tokens: a.batch_tokens - b.batch_tokens, residues: a.residues - b.residues };
          notes.work_in_10s_after_answer = { batches: l.batches - a.batches, batch_tokens: l.batch_tokens - a.batch_tokens, residues: l.residues - a.residues };
        } else notes.metrics = 'a /metrics scrape failed';
        return [fromHttp(r)];
      },
    }),
  ),
  {
    id: 'f',
    title: 'f. /v1/score 2,000 residues, scan, truncation window; REQUEST_TIMEOUT_MS=3000',
    env: { REQUEST_TIMEOUT_MS: '3000' },
    async run({ port, notes }) {
      const r = await postJson(port, '/v1/score', { sequence: protein(2000, 40), scan: true, truncation: 'window' });
      notes.headers_ms = r.headersMs;
      notes.bytes = r.bytes;
      if (r.tail) notes.body_tail = r.tail.slice(-160);
      return [fromHttp(r)];
    },
  },
  {
    id: 'g',
    title: 'g. /v1/embed 16 × 1022, per_residue+logits, repr_layers 0-6, JSON, read normally',
    async run({ port, notes }) {
      const r = await postJson(port, '/v1/embed', { sequences: proteins(16, 1022, 50), include: ['per_residue', 'logits'], repr_layers: [0, 1, 2, 3, 4, 5, 6] });
      notes.headers_ms = r.headersMs;
      notes.bytes = r.bytes;
      return [fromHttp(r)];
    },
  },
  idleFlood('h', 'h. 20,000 idle keep-alive sockets (from 127.0.0.1) opened over ~20 s, while 38 /predict from another client (127.0.0.1)', () => '127.0.0.1'),
  idleFlood('h-spread', 'h-spread. as h, the idle sockets from 100 loopback source addresses 127.0.0.2-101 (the 38 /predict from 127.0.0.1)', (i) => `127.0.0.${2 + (i % 100)}`),
];

function idleFlood(id: string, title: string, source: (i: number) => string): Row {
  return {
    id,
    title,
    async run({ port, notes }) {
      const target = 20_000;
      const openMs = 20_000;
      const sockets = new Set<Socket>();
      let opened = 0;
      let connected = 0;
      let closedByServer = 0;
      let maxOpen = 0;
      const errors: Record<string, number> = {};
      let stopping = false;
      const started = now();
      // The 38 normal requests, one every 500 ms, each on its own new connection.
      const normal = (async () => {
        const results: HttpResult[] = [];
        const inFlight: Promise<void>[] = [];
        for (let i = 0; i < 38; i++) {
          inFlight.push(postJson(port, '/predict', { sequence: protein(10, 5000 + i) }, { timeoutMs: 20_000 }).then((r) => void results.push(r)));
          await sleep(500);
        }
        await Promise.all(inFlight);
        return results;
      })();
      while (opened < target && now() - started < 25_000) {
        const due = Math.min(target, Math.ceil(((now() - started) / openMs) * target));
        while (opened < due) {
          const i = opened++;
          let socket: Socket;
          try {
            socket = connect({ port, host: '127.0.0.1', localAddress: source(i) });
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code ?? 'throw';
            errors[code] = (errors[code] ?? 0) + 1;
            continue;
          }
          sockets.add(socket);
          socket.setKeepAlive(true);
          socket.on('connect', () => {
            connected++;
            maxOpen = Math.max(maxOpen, sockets.size);
          });
          socket.on('error', (err: NodeJS.ErrnoException) => {
            const code = err.code ?? err.message;
            errors[code] = (errors[code] ?? 0) + 1;
          });
          socket.on('close', () => {
            sockets.delete(socket);
            if (!stopping) closedByServer++;
          });
          socket.resume(); // idle: never sends, takes whatever comes (nothing should)
        }
        await sleep(20);
      }
      notes.open_phase_s = +((now() - started) / 1000).toFixed(1);
      const results = await normal;
      notes.sockets_attempted = opened;
      notes.sockets_connected = connected;
      notes.sockets_closed_by_server = closedByServer;
      notes.sockets_still_open_at_end = sockets.size;
      notes.max_open_at_once = maxOpen;
      notes.socket_errors = errors;
      notes.client_fd_soft_limit = fdLimit();
      stopping = true;
      for (const s of sockets) s.destroy();
      notes.normal_predict_ok = `${results.filter((r) => r.status === 200).length} of 38`;
      return results.map(fromHttp);
    },
  };
}

function fdLimit(): string {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    return line ? line.replace(/\s+/g, ' ').trim() : 'unknown';
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------------------
// Running a row, summarising

const round = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? null : Math.round(v));
function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

interface RowResult {
  id: string;
  title: string;
  env: Record<string, string>;
  started_at: string;
  wall_s: number;
  statuses: Record<string, number>;
  errors: { error: string; detail: string; count: number }[];
  time_ms: { median: number | null; max: number | null };
  server_rss_mib: { start: number | null; max: number | null; after: number | null };
  replica_rss_mib: { start: number | null; max: number | null; after: number | null };
  probes: { count: number; failed: number; median_ms: number | null; max_ms: number | null; failures: string[] };
  alive: { server: boolean; replicas_unchanged: boolean; replica_pids_before: number[]; replica_pids_after: number[]; health: number | string };
  server_metrics_delta: Record<string, number> | null;
  notes: Record<string, unknown>;
  row_error?: string;
  server_output_tail?: string;
}

const METRICS: [string, string][] = [
  ['connections refused', 'esm2_connections_refused_total'],
  ['bodies refused', 'esm2_bodies_refused_total'],
  ['response write timeouts', 'esm2_response_write_timeouts_total'],
  ['requests cancelled', 'esm2_requests_cancelled_total'],
  ['replica restarts', 'esm2_replica_restarts_total'],
  ['replica hangs', 'esm2_replica_hangs_total'],
  ['batches', 'esm2_batch_tokens_count'],
  ['batch tokens', 'esm2_batch_tokens_sum'],
];
function metricsDelta(before: Sample[] | null, after: Sample[] | null): Record<string, number> | null {
  if (!before || !after) return null;
  const out: Record<string, number> = {};
  for (const [label, name] of METRICS) out[label] = sumOf(after, name) - sumOf(before, name);
  // Requests by status, all routes but /metrics and /health.
  const statuses = new Set(after.filter((s) => s.name === 'esm2_requests_total').map((s) => s.labels.status));
  for (const status of statuses) {
    const d = (s: Sample[]) => s.filter((x) => x.name === 'esm2_requests_total' && x.labels.status === status && !['/metrics', '/health'].includes(x.labels.route ?? '')).reduce((a, x) => a + x.value, 0);
    const v = d(after) - d(before);
    if (v) out[`requests ${status}`] = v;
  }
  return out;
}

async function health(port: number): Promise<number | string> {
  const r = await request({ port, path: '/health', timeoutMs: 10_000 });
  return r.status ?? `no answer (${r.clientError})`;
}

async function runRow(row: Row, modelDir: string): Promise<RowResult> {
  const env = { MODEL_NAME: modelDir, DEVICES: 'cpu:2', LOG_LEVEL: 'warn', ...row.env };
  const server = await startServerProcess(env, { startTimeoutMs: 180_000, stopTimeoutMs: 20_000 });
  const pid = server.child.pid!;
  try {
    await sleep(500);
    const start = sampleRss(pid);
    const replicasBefore = Object.keys(start.replicas).map(Number);
    const metricsBefore = await scrape(server.port);
    const notes: Record<string, unknown> = {};
    const monitor = startMonitor(server);
    const started = now();
    const startedAt = new Date().toISOString();
    let answers: Answer[] = [];
    let rowError: string | undefined;
    try {
      answers = await Promise.race([
        row.run({ server, port: server.port, notes }),
        sleep(ROW_LIMIT).then(() => {
          throw new Error(`row still running after ${ROW_LIMIT / 1000} s: reported as such`);
        }),
      ]);
    } catch (err) {
      rowError = err instanceof Error ? err.message : String(err);
    }
    const wallS = (now() - started) / 1000;
    const mon = await monitor.stop();
    await sleep(2000);
    const after = sampleRss(pid);
    const replicasAfter = Object.keys(after.replicas).map(Number);
    const alive = server.child.exitCode === null && server.child.signalCode === null;
    const metricsAfter = alive ? await scrape(server.port) : null;
    const statuses: Record<string, number> = {};
    const errors = new Map<string, { error: string; detail: string; count: number }>();
    for (const a of answers) {
      statuses[String(a.status)] = (statuses[String(a.status)] ?? 0) + 1;
      if (a.error || a.detail) {
        const key = `${a.error}|${(a.detail ?? '').replace(/\d+/g, 'N')}`;
        const e = errors.get(key) ?? { error: a.error ?? '', detail: a.detail ?? '', count: 0 };
        e.count++;
        errors.set(key, e);
      }
    }
    const times = answers.map((a) => a.ms).filter((v): v is number => v !== null);
    const probeMs = mon.probes.map((p) => p.ms);
    const failures = new Map<string, number>();
    for (const p of mon.probes.filter((p) => !p.ok)) failures.set(p.error ?? '?', (failures.get(p.error ?? '?') ?? 0) + 1);
    const result: RowResult = {
      id: row.id,
      title: row.title,
      env: row.env ?? {},
      started_at: startedAt,
      wall_s: +wallS.toFixed(1),
      statuses,
      errors: [...errors.values()],
      time_ms: { median: round(median(times)), max: round(times.length ? Math.max(...times) : null) },
      server_rss_mib: { start: round(start.server), max: round(mon.serverMax), after: round(after.server) },
      replica_rss_mib: { start: round(maxReplica(start)), max: round(mon.replicaMax), after: round(maxReplica(after)) },
      probes: { count: mon.probes.length, failed: mon.probes.filter((p) => !p.ok).length, median_ms: round(median(probeMs)), max_ms: round(probeMs.length ? Math.max(...probeMs) : null), failures: [...failures].map(([e, n]) => `${n} × ${e.slice(0, 120)}`) },
      alive: {
        server: alive,
        replicas_unchanged: replicasBefore.length > 0 && replicasBefore.join() === replicasAfter.join(),
        replica_pids_before: replicasBefore,
        replica_pids_after: replicasAfter,
        health: alive ? await health(server.port) : 'server exited',
      },
      server_metrics_delta: metricsDelta(metricsBefore, metricsAfter),
      notes,
    };
    if (rowError) result.row_error = rowError;
    if (!alive || !result.alive.replicas_unchanged || rowError) result.server_output_tail = server.output().split('\n').slice(-15).join('\n');
    return result;
  } finally {
    await server.stop();
  }
}

function markdown(results: RowResult[]): string {
  const lines = [
    '| row | statuses | error: detail (first 200 chars) | time med / max (s) | server RSS start / max / after (MiB) | replica RSS start / max / after (MiB) | /predict probes med / max (ms), failed | alive (server, replicas, /health) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const s = (ms: number | null) => (ms === null ? '–' : (ms / 1000).toFixed(1));
  const cell = (t: string) => t.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  for (const r of results) {
    const statuses = Object.entries(r.statuses).map(([k, v]) => `${k} × ${v}`).join(', ') + (r.row_error ? ` (${r.row_error})` : '');
    const errors = r.errors.map((e) => `${e.count} × \`${e.error}\`: ${e.detail}`).join('<br>') || '–';
    lines.push(
      `| ${r.id} | ${cell(statuses)} | ${cell(errors)} | ${s(r.time_ms.median)} / ${s(r.time_ms.max)} | ${r.server_rss_mib.start} / ${r.server_rss_mib.max} / ${r.server_rss_mib.after} | ${r.replica_rss_mib.start} / ${r.replica_rss_mib.max} / ${r.replica_rss_mib.after} | ${r.probes.median_ms ?? '–'} / ${r.probes.max_ms ?? '–'}, ${r.probes.failed} of ${r.probes.count} | ${r.alive.server ? 'yes' : 'NO'}, ${r.alive.replicas_unchanged ? 'same pids' : 'CHANGED'}, ${r.alive.health} |`,
    );
  }
  lines.push('', 'Rows:');
  for (const r of results) lines.push(`- **${r.id}** ${r.title} (${r.wall_s} s)${Object.keys(r.notes).length ? `; notes: ${cell(JSON.stringify(r.notes)).slice(0, 900)}` : ''}${r.server_metrics_delta ? `; server metrics Δ: ${JSON.stringify(r.server_metrics_delta)}` : ''}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

const tempDir = opts.dir ? null : mkdtempSync(join(tmpdir(), 'esm2-attack-'));
const modelDir = opts.dir ?? join(tempDir!, PRESET);
if (!existsSync(join(modelDir, 'config.json'))) {
  console.log(`writing a random ${PRESET} checkpoint to ${modelDir}`);
  const made = spawnSync(process.execPath, [ESM2_BIN, 'init-random', '--preset', PRESET, '--out', modelDir, '--seed', '1'], { stdio: 'inherit', timeout: 300_000 });
  if (made.status !== 0) throw new Error(`esm2 init-random failed (status ${made.status})`);
}
process.env.ESM2_COMPILE_CACHE ??= join(ROOT, 'bench', '.cache', 'compiled');

const wanted = opts.rows ? new Set(opts.rows.split(',').map((s) => s.trim())) : null;
const rows = ROWS.filter((r) => !wanted || wanted.has(r.id));
if (wanted) for (const id of wanted) if (!ROWS.some((r) => r.id === id)) throw new Error(`no row ${id}; rows: ${ROWS.map((r) => r.id).join(', ')}`);
const date = new Date().toISOString().slice(0, 10);
const outFile = opts.out ?? join(ROOT, 'bench', 'results', `attack-${date}.json`);
const results: RowResult[] = [];
const save = () => {
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify({ date, preset: PRESET, devices: 'cpu:2', node: process.version, client_fd_limit: fdLimit(), rows: results }, null, 2) + '\n');
};
console.log(`esm2-serve attack table: ${PRESET}, DEVICES=cpu:2, ${rows.length} rows, every request with a ${CLIENT_TIMEOUT / 1000} s client timeout`);
for (const row of rows) {
  console.log(`\n[${new Date().toISOString()}] ${row.title}${row.env ? ` ${JSON.stringify(row.env)}` : ''}`);
  try {
    const r = await runRow(row, modelDir);
    results.push(r);
    console.log(`  → ${JSON.stringify({ statuses: r.statuses, time_ms: r.time_ms, server_rss_mib: r.server_rss_mib, replica_rss_mib: r.replica_rss_mib, probes: r.probes, alive: r.alive.server && r.alive.replicas_unchanged, health: r.alive.health })}`);
  } catch (err) {
    console.log(`  row ${row.id} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  save();
}
console.log(`\n${markdown(results)}\n\nwritten ${outFile}`);
if (tempDir) rmSync(tempDir, { recursive: true, force: true });
process.exit(0);
