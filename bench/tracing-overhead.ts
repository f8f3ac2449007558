// Tracing overhead (`npm run bench:tracing`): the same in-process server (golden esm2_tiny by
// default, or MODEL_NAME) with tracing off and on — spans exported over OTLP/HTTP JSON to a sink on
// loopback that only counts them — alternated in rounds (off, on, off, on, …) so that a shared
// machine's drift falls on both; closed-loop clients post /v1/embed. Also the per-request cost of
// the tracing code alone (server span, six children, end) against the off path. Bounded: ROUNDS ×
// 2 × SECONDS (default 3 × 2 × 8 s) plus start-up, well under two minutes.
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/server/app.js';
import { loadSettings } from '../src/server/settings.js';
import { startTracing } from '../src/server/tracing.js';

const env = process.env;
const ROUNDS = Number(env.ROUNDS ?? 3);
const SECONDS = Number(env.SECONDS ?? 8);
const CLIENTS = Number(env.CLIENTS ?? 8);
const SEQUENCES = Number(env.SEQUENCES ?? 3);
const model = env.MODEL_NAME ?? fileURLToPath(new URL('../../test/fixtures/golden/esm2_tiny/model', import.meta.url));

/** An OTLP/HTTP sink on loopback: answers 200, counts requests and bytes. */
async function sink(): Promise<{ url: string; posts: number; bytes: number; close(): void }> {
  const state = { posts: 0, bytes: 0 };
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => (state.bytes += c.length));
    req.on('end', () => {
      state.posts += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return Object.assign(state, { url: `http://127.0.0.1:${port}/v1/traces`, close: () => server.close() });
}

async function server(traced: boolean) {
  const settings = loadSettings({ MODEL_NAME: model, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', DEVICES: env.DEVICES ?? 'cpu', BATCH_QUEUE_MAX_WAIT_MS: '2' });
  const tracing = traced ? startTracing('bench') : undefined;
  if (traced && !tracing) throw new Error('tracing did not start');
  // Off: null, the path of a server started without the variables (no hooks, no provider).
  const { app, runtime } = await buildApp(settings, { version: 'bench', logger: false, tracing: tracing ?? null });
  await app.listen({ host: '127.0.0.1', port: 0 });
  await runtime.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, close: async () => (await app.close(), await runtime.drain()) };
}

const residues = 'ACDEFGHIKLMNPQRSTVWY';
function sequence(i: number): string {
  let s = '';
  for (let k = 0; k < 20 + ((i * 7) % 40); k++) s += residues[(i * 31 + k * 17) % 20];
  return s;
}

async function load(url: string, seconds: number): Promise<{ rps: number; p50: number; p95: number; n: number }> {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  let i = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        const body = JSON.stringify({ sequences: Array.from({ length: SEQUENCES }, () => sequence(i++)) });
        const t0 = performance.now();
        const res = await fetch(`${url}/v1/embed`, { method: 'POST', headers: { 'content-type': 'application/json', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, body });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { rps: latencies.length / seconds, p50: q(0.5), p95: q(0.95), n: latencies.length };
}

/** Microseconds per request of the tracing code alone: a server span with six children, ended. */
async function microMeasure(): Promise<{ onUs: number; offNs: number }> {
  const tracing = startTracing('bench')!;
  const n = 20_000;
  const headers = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
  let t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const span = tracing.startRequestSpan('POST /v1/embed', headers, { 'http.route': '/v1/embed' });
    const now = performance.now();
    for (const name of ['admission', 'queue wait', 'batch', 'replica run', 'serialization', 'extra']) span.child(name, now, now, { 'esm2.replica.index': 0 });
    span.end(performance.now(), 200);
  }
  const onUs = ((performance.now() - t0) * 1000) / n;
  // Off: what a request pays is a WeakMap lookup that finds nothing (server/http-tracing.ts requestSpan).
  const map = new WeakMap<object, object>();
  const keys = Array.from({ length: 1000 }, () => ({}));
  let hits = 0;
  t0 = performance.now();
  for (let i = 0; i < 1_000_000; i++) if (map.get(keys[i % 1000])) hits++;
  const offNs = ((performance.now() - t0) * 1e6) / 1_000_000;
  if (hits !== 0) throw new Error('unexpected hit');
  await tracing.shutdown();
  return { onUs, offNs };
}

const cache = await mkdtemp(join(tmpdir(), 'esm2-bench-tracing-'));
process.env.ESM2_COMPILE_CACHE = cache;
const target = await sink();
process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = target.url;
process.env.OTEL_BSP_SCHEDULE_DELAY = '200';
const results: Record<'off' | 'on', { rps: number; p50: number; p95: number; n: number }[]> = { off: [], on: [] };
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ['off', 'on'] as const) {
      const s = await server(mode === 'on');
      await load(s.url, 1); // warm-up
      const r = await load(s.url, SECONDS);
      results[mode].push(r);
      console.log(`round ${round + 1} ${mode}: ${r.rps.toFixed(1)} req/s, p50 ${r.p50.toFixed(2)} ms, p95 ${r.p95.toFixed(2)} ms (${r.n} requests)`);
      await s.close();
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const row = (mode: 'off' | 'on') => ({ rps: median(results[mode].map((r) => r.rps)), p50: median(results[mode].map((r) => r.p50)), p95: median(results[mode].map((r) => r.p95)) });
  const off = row('off');
  const on = row('on');
  const micro = await microMeasure();
  console.log(`\n| tracing | req/s (median of ${ROUNDS}) | p50 ms | p95 ms |\n|---|---|---|---|`);
  console.log(`| off | ${off.rps.toFixed(1)} | ${off.p50.toFixed(2)} | ${off.p95.toFixed(2)} |`);
  console.log(`| on (OTLP/HTTP to a loopback sink) | ${on.rps.toFixed(1)} | ${on.p50.toFixed(2)} | ${on.p95.toFixed(2)} |`);
  console.log(`\nthroughput ${(((on.rps - off.rps) / off.rps) * 100).toFixed(1)} %, p50 ${(on.p50 - off.p50).toFixed(2)} ms; sink got ${target.posts} exports, ${(target.bytes / 1024).toFixed(0)} KiB`);
  console.log(`tracing code alone: ${micro.onUs.toFixed(1)} µs per request on (server span + 6 children); off: ${micro.offNs.toFixed(1)} ns (a WeakMap miss, no hooks installed)`);
} finally {
  target.close();
  await rm(cache, { recursive: true, force: true });
}
