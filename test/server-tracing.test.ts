// Tracing: an OTLP/HTTP receiver on loopback gets one batched request's span tree, under the
// caller's traceparent (HTTP header or gRPC metadata); without the OTEL_* variables nothing is sent and no header is added.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace';
import { samplerFromEnv, tracingWanted } from '../src/server/tracing.js';
import { postJson, startTestServer } from './helpers/server.js';
import type { EventEmitter } from 'node:events';
import { Metadata } from '@grpc/grpc-js';
import { grpcClient } from '../bench/grpc-client.js';

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: { key: string; value: OtlpValue }[];
}
interface Received {
  service?: string;
  spans: OtlpSpan[];
}

/** A node:http OTLP/HTTP JSON receiver on 127.0.0.1 (POST /v1/traces). */
async function receiver(): Promise<{ server: Server; url: string; got: Received[] }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const doc = JSON.parse(body.toString('utf8')) as {
          resourceSpans: { resource?: { attributes?: { key: string; value: OtlpValue }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
        };
        for (const rs of doc.resourceSpans) {
          got.push({ service: rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue, spans: rs.scopeSpans.flatMap((s) => s.spans) });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}/v1/traces`, got };
}

function attr(span: OtlpSpan, key: string): string | number | boolean | undefined {
  const v = span.attributes?.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue));
}

async function until<T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = fn();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const OTEL_VARS = ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_BSP_SCHEDULE_DELAY', 'OTEL_SERVICE_NAME'];

test('tracing: a batched /v1/embed gives the span tree under the caller traceparent, and the reply names the server span', async () => {
  const sink = await receiver();
  const saved = OTEL_VARS.map((k) => process.env[k]);
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = sink.url;
  process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
  process.env.OTEL_SERVICE_NAME = 'esm2-serve-test';
  const server = await startTestServer({ BATCH_QUEUE_MAX_WAIT_MS: '2' });
  OTEL_VARS.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
  try {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const res = await postJson(`${server.url}/v1/embed`, { sequences: ['MKTAYIAKQR', 'MKTAYIAKQRQISFVKSHFSRQ', 'ACDE'] }, { traceparent: `00-${traceId}-${callerSpan}-01` });
    assert.equal(res.status, 200);
    const header = res.headers.get('traceparent');
    assert.match(header ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const [, headerTrace, headerSpan] = header!.split('-');
    assert.equal(headerTrace, traceId, 'the reply continues the caller trace');

    const spans = await until('the exported spans', () => {
      const all = sink.got.flatMap((g) => g.spans).filter((s) => s.traceId === traceId);
      return all.some((s) => s.name === 'serialization') && all.some((s) => s.kind === 2) ? all : undefined;
    });
    assert.equal(sink.got[0].service, 'esm2-serve-test');
    const root = spans.find((s) => s.kind === 2)!; // SPAN_KIND_SERVER
    assert.equal(root.name, 'POST /v1/embed');
    assert.equal(root.spanId, headerSpan, 'traceparent names the server span');
    assert.equal(root.parentSpanId, callerSpan, 'the server span is a child of the caller span');
    assert.equal(attr(root, 'http.route'), '/v1/embed');
    assert.equal(attr(root, 'http.response.status_code'), 200);

    const children = spans.filter((s) => s !== root);
    for (const s of children) assert.equal(s.parentSpanId, root.spanId, `${s.name} is a child of the server span`);
    const named = (name: string) => children.filter((s) => s.name === name);
    assert.equal(named('admission').length, 1);
    assert.equal(named('serialization').length, 1);
    assert.equal(attr(named('serialization')[0], 'esm2.response.format'), 'json');
    const batches = named('batch');
    assert.ok(batches.length >= 1);
    assert.equal(named('queue wait').length, batches.length);
    assert.equal(named('replica run').length, batches.length);
    // The three sequences, over however many batches: every one counted once.
    assert.equal(batches.reduce((n, b) => n + Number(attr(b, 'esm2.request.sequences')), 0), 3);
    for (const b of batches) {
      assert.equal(attr(b, 'esm2.replica.index'), 0);
      assert.equal(attr(b, 'esm2.replica.device'), 'cpu');
      const tokens = Number(attr(b, 'esm2.batch.tokens'));
      const padded = Number(attr(b, 'esm2.batch.padded_tokens'));
      assert.ok(tokens > 0 && padded >= tokens);
      assert.ok(Math.abs(Number(attr(b, 'esm2.batch.padding_share')) - (1 - tokens / padded)) < 1e-9);
    }
    // One batch of all three here (one submit, an idle replica): 12 + 24 + 6 tokens, padded to 24 × 3.
    if (batches.length === 1) {
      assert.equal(attr(batches[0], 'esm2.batch.sequences'), 3);
      assert.equal(attr(batches[0], 'esm2.batch.tokens'), 42);
      assert.equal(attr(batches[0], 'esm2.batch.padded_tokens'), 72);
    }
    // Times nest: each child within the server span; queue wait ends where its batch begins.
    const ns = (v: string | number) => BigInt(v);
    for (const s of children) {
      assert.ok(ns(s.startTimeUnixNano) >= ns(root.startTimeUnixNano) && ns(s.endTimeUnixNano) <= ns(root.endTimeUnixNano), `${s.name} within the server span`);
    }
    assert.ok(ns(named('queue wait')[0].endTimeUnixNano) === ns(batches[0].startTimeUnixNano));
  } finally {
    await server.close();
    sink.server.close();
  }
});

test('tracing: off without the OTEL_* variables — no traceparent header, nothing sent', async () => {
  const sink = await receiver();
  assert.equal(tracingWanted({}), false);
  const server = await startTestServer({ BATCH_QUEUE_MAX_WAIT_MS: '2' });
  try {
    const res = await postJson(`${server.url}/v1/embed`, { sequences: ['MKTAYIAKQR'] }, { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('traceparent'), null);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sink.got.length, 0);
  } finally {
    await server.close();
    sink.server.close();
  }
});

test('tracing: which variables turn it on, and OTEL_TRACES_SAMPLER', () => {
  assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318' }), true);
  assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://x:4318/v1/traces' }), true);
  assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318', OTEL_SDK_DISABLED: 'true' }), false);
  assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318', OTEL_TRACES_EXPORTER: 'none' }), false);
  assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }), false);
  assert.ok(samplerFromEnv({}) instanceof ParentBasedSampler);
  assert.ok(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'always_off' }) instanceof AlwaysOffSampler);
  assert.ok(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'always_on' }) instanceof AlwaysOnSampler);
  const ratio = samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' });
  assert.ok(ratio instanceof TraceIdRatioBasedSampler);
  assert.match(ratio.toString(), /0\.25/);
  assert.ok(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }).toString().includes('0.5'));
});

test('tracing over gRPC: Embed under the caller traceparent metadata, the span named in the response metadata, children as over HTTP', async () => {
  const sink = await receiver();
  const saved = OTEL_VARS.map((k) => process.env[k]);
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = sink.url;
  process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
  const server = await startTestServer({ BATCH_QUEUE_MAX_WAIT_MS: '2', GRPC_PORT: '0' });
  OTEL_VARS.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
  const client = grpcClient(`127.0.0.1:${server.grpcPort}`);
  try {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const callerSpan = 'b7ad6b7169203331';
    const metadata = new Metadata();
    metadata.set('traceparent', `00-${traceId}-${callerSpan}-01`);
    const answered = new Promise<string>((resolve, reject) => {
      const call = (client.esm2 as unknown as Record<string, (r: object, m: Metadata, cb: (err: Error | null) => void) => EventEmitter>).Embed.call(
        client.esm2,
        { sequences: ['MKTAYIAKQR', 'ACDE'], include: ['mean'] },
        metadata,
        (err) => (err ? reject(err) : undefined),
      );
      call.on('metadata', (md: Metadata) => resolve(String(md.get('traceparent')[0] ?? '')));
    });
    const header = await answered;
    const [, headerTrace, headerSpan] = header.split('-');
    assert.equal(headerTrace, traceId);
    const spans = await until('the gRPC call spans', () => {
      const all = sink.got.flatMap((g) => g.spans).filter((s) => s.traceId === traceId);
      return all.some((s) => s.kind === 2) && all.some((s) => s.name === 'batch') ? all : undefined;
    });
    const root = spans.find((s) => s.kind === 2)!;
    assert.equal(root.name, 'esm2.v1.Esm2/Embed');
    assert.equal(root.spanId, headerSpan);
    assert.equal(root.parentSpanId, callerSpan);
    assert.equal(attr(root, 'rpc.system'), 'grpc');
    const children = spans.filter((s) => s !== root);
    for (const s of children) assert.equal(s.parentSpanId, root.spanId, `${s.name} is a child of the call span`);
    for (const name of ['admission', 'queue wait', 'batch', 'replica run']) assert.ok(children.some((s) => s.name === name), name);
    assert.equal(children.filter((s) => s.name === 'batch').reduce((n, b) => n + Number(attr(b, 'esm2.request.sequences')), 0), 2);
  } finally {
    client.close();
    await server.close();
    sink.server.close();
  }
});
