// Streamed response bodies (server/streamed-body.ts, model/safetensors-stream.ts) and the response
// write timeout (server/write-timeout.ts): jsonStream writes exactly JSON.stringify's bytes, in
// bounded chunks, as the reader asks; safetensorsStream writes exactly encodeSafetensors's bytes,
// from views of the tensors; a client that stops reading has its connection destroyed after
// RESPONSE_WRITE_TIMEOUT_MS without progress (and the body stream with it), while a slow reader, a
// quiet stream and a long wait before the answer are not cut; other requests are answered while a
// large body streams. Everything on 127.0.0.1; no assertion on elapsed time.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PassThrough, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { encodeSafetensors, safetensorsStream, type TensorToWrite } from '../src/model/safetensors.js';
import { Metrics } from '../src/server/metrics.js';
import { JSON_CHUNK_CHARS, JsonTensor, jsonStream } from '../src/server/streamed-body.js';
import { installWriteTimeout } from '../src/server/write-timeout.js';
import { until } from './helpers/hold.js';

/** Bound on waiting for an event: only turns a hang into a failure. */
const EVENTUALLY_MS = 20_000;

async function collect(stream: Readable): Promise<{ bytes: Buffer; chunks: number[] }> {
  // 'data' events, not for await: read() would join what is buffered into one chunk.
  const parts: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => void parts.push(chunk));
  await finished(stream);
  return { bytes: Buffer.concat(parts), chunks: parts.map((p) => p.length) };
}

/** Deterministic pseudo-random floats with a wide spread of exponents and signs. */
function floats(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = ((x / 0xffffffff) * 2 - 1) * 10 ** ((x % 13) - 6);
  }
  return out;
}

async function assertSameAsStringify(value: unknown, label: string): Promise<{ chunks: number[] }> {
  const { bytes, chunks } = await collect(jsonStream(value));
  assert.equal(bytes.toString('utf8'), JSON.stringify(value), label);
  assert.ok(bytes.equals(Buffer.from(JSON.stringify(value), 'utf8')), `${label}: bytes`);
  return { chunks };
}

test('jsonStream writes exactly the bytes of JSON.stringify, tensors as nested arrays', async () => {
  const special = new Float32Array([NaN, -0, 0, Infinity, -Infinity, 3.4028234663852886e38, 1.401298464324817e-45, -1.1754943508222875e-38, 0.1, 1e21, 1e-7, 123456789, -2.5]);
  const cases: [string, unknown][] = [
    ['special numbers, flat', new JsonTensor(special, [special.length])],
    ['rows', new JsonTensor(floats(60), [12, 5])],
    ['rank 3', new JsonTensor(floats(24), [2, 3, 4])],
    ['empty flat', new JsonTensor(new Float32Array(0), [0])],
    ['no rows', new JsonTensor(new Float32Array(0), [0, 7])],
    ['empty rows', new JsonTensor(new Float32Array(0), [3, 0])],
    ['a row longer than a piece', new JsonTensor(floats(5000, 7), [1, 5000])],
    [
      'nested objects and arrays',
      {
        model: 'esm2 "t6" \\ 8M\n\t\u2028\u0000 ünïcødé 🧬',
        results: [
          { index: 0, length: 3, truncated: undefined, fn: () => 1, sym: Symbol('s'), mean: new JsonTensor(floats(8), [8]), per_residue: new JsonTensor(floats(24), [3, 8]) },
          { index: 1, nothing: null, flags: [true, false], holes: [1, undefined, () => 2, NaN, -0, 'x'], nested: { deeper: { deepest: [[], {}, [[new JsonTensor(floats(2), [2])]]] } } },
        ],
        date: new Date(0),
        boxed: [new Number(-0), new String('s'), new Boolean(false)],
        withToJSON: { toJSON: (key: string) => ({ key }) },
        lone: '\ud800 and \udfff',
        numbers: Array.from(floats(5000, 3)),
        empty: '',
        '': 'empty key',
      },
    ],
    ['a string longer than a chunk (surrogate pairs across the cut)', { s: '🧬'.repeat(100_000), t: 'a' + '"'.repeat(70_000) }],
    ['top-level primitives', 'just a string'],
    ['top-level number', -0],
    ['top-level null', null],
    ['top-level array with undefined', [undefined, 1]],
  ];
  for (const [label, value] of cases) await assertSameAsStringify(value, label);
  assert.throws(() => jsonStream(undefined), TypeError);
});

test('jsonStream: chunks are bounded, the stream is pull-based, and a cycle or BigInt destroys it with JSON.stringify\'s error', async () => {
  const value = { per_residue: new JsonTensor(floats(400 * 1280), [400, 1280]), logits: new JsonTensor(floats(1_000_000, 9), [1_000_000]) };
  const { chunks } = await assertSameAsStringify(value, 'large');
  const max = Math.max(...chunks);
  console.log(`# ${chunks.length} chunks, largest ${max} bytes, ${(chunks.reduce((a, b) => a + b, 0) / 1e6).toFixed(1)} MB`);
  assert.ok(max <= 2 * JSON_CHUNK_CHARS, `largest chunk ${max}`);

  // Nothing is produced beyond the buffer until it is read.
  const stream = jsonStream(value);
  await once(stream, 'readable');
  assert.ok(stream.readableLength <= 2 * JSON_CHUNK_CHARS, `buffered ${stream.readableLength} unread`);
  stream.destroy();

  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  for (const bad of [cyclic, { n: 1n }]) {
    let expected: unknown;
    try {
      JSON.stringify(bad);
    } catch (err) {
      expected = err;
    }
    await assert.rejects(collect(jsonStream(bad)), (err: unknown) => err instanceof TypeError && err.constructor === (expected as Error).constructor);
  }
});

test('safetensorsStream writes exactly encodeSafetensors\'s bytes, F32 as views of the data, with its length up front', async () => {
  const f32 = floats(3 * 1280, 5);
  const sets: [string, TensorToWrite[], Record<string, string> | undefined][] = [
    ['empty', [], undefined],
    [
      'mixed',
      [
        { name: '0/per_residue/6', dtype: 'F32', shape: [3, 1280], data: f32 },
        { name: '0/mean/6', dtype: 'F16', shape: [7], data: floats(7, 2) },
        { name: 'bf', dtype: 'BF16', shape: [2, 3], data: floats(6, 3) },
        { name: 'bits', dtype: 'F16', shape: [4], data: new Uint16Array([1, 2, 3, 0x3c00]) },
        { name: 'raw', dtype: 'F32', shape: [2], data: new Uint8Array(new Float32Array([1, -0]).buffer) },
        { name: 'none', dtype: 'F32', shape: [0, 5], data: new Float32Array(0) },
      ],
      { model: 'test "model"' },
    ],
    ['large (several chunks)', [{ name: 'big', dtype: 'F32', shape: [700_000], data: floats(700_000, 11) }, { name: 'big16', dtype: 'F16', shape: [700_000], data: floats(700_000, 12) }], undefined],
  ];
  for (const [label, tensors, metadata] of sets) {
    const stream = safetensorsStream(tensors, metadata);
    const expected = encodeSafetensors(tensors, metadata);
    assert.equal(stream.byteLength, expected.length, label);
    const parts: Buffer[] = [];
    for await (const chunk of stream) parts.push(chunk as Buffer);
    assert.ok(Buffer.concat(parts).equals(expected), label);
    if (label === 'mixed') assert.ok(parts.some((p) => p.buffer === f32.buffer), 'the F32 data is sent from its own memory');
  }
  assert.throws(() => safetensorsStream([{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }]), /8 bytes, expected 12/);
  assert.throws(() => safetensorsStream([{ name: 'x', dtype: 'F32', shape: [3], data: new Uint16Array(6) }]), /16-bit data given for an F32 tensor/);
});

// --- A real server: the write timeout ------------------------------------------------------------

interface Served {
  stream: Readable;
  closed: boolean;
}

interface TestApp {
  app: FastifyInstance;
  metrics: Metrics;
  port: number;
  served: Map<string, Served[]>;
  timeouts(): Promise<number>;
}

/** ~40 MB of JSON, far more than loopback socket buffers hold for a client that does not read. */
const BIG_JSON = { model: 'test', results: [{ index: 0, per_residue: new JsonTensor(floats(1600 * 1280, 21), [1600, 1280]) }] };
const BIG_TENSORS: TensorToWrite[] = [{ name: '0/per_residue/6', dtype: 'F32', shape: [6_000_000], data: floats(6_000_000, 22) }];

async function startApp(timeoutMs: number): Promise<TestApp> {
  const app = Fastify({ logger: false });
  const metrics = new Metrics();
  installWriteTimeout(app, { responseWriteTimeoutMs: timeoutMs }, metrics);
  const served = new Map<string, Served[]>();
  const record = (route: string, stream: Readable, raw: NodeJS.EventEmitter): void => {
    const s: Served = { stream, closed: false };
    raw.once('close', () => void (s.closed = true));
    served.set(route, [...(served.get(route) ?? []), s]);
  };
  app.get('/json', async (_request, reply) => {
    const stream = jsonStream(BIG_JSON);
    record('/json', stream, reply.raw);
    return reply.type('application/json').send(stream);
  });
  app.get('/safetensors', async (_request, reply) => {
    const stream = safetensorsStream(BIG_TENSORS, { model: 'test' });
    record('/safetensors', stream, reply.raw);
    return reply.type('application/octet-stream').header('content-length', stream.byteLength).send(stream);
  });
  // Answers after 3 timeouts of "inference": the wait before the reply is not writing.
  app.get('/slow-answer', async () => {
    await new Promise((resolve) => setTimeout(resolve, 3 * timeoutMs));
    return { ok: true };
  });
  // A quiet event stream: one event, silence for 3 timeouts, one more, end.
  app.get('/quiet', async (_request, reply) => {
    const stream = new PassThrough();
    stream.write('event: a\ndata: 1\n\n');
    setTimeout(() => stream.end('event: b\ndata: 2\n\n'), 3 * timeoutMs);
    record('/quiet', stream, reply.raw);
    return reply.header('content-type', 'text/event-stream').send(stream);
  });
  app.get('/ping', async () => ({ pong: true }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const timeouts = async () => (await metrics.responseWriteTimeouts.get()).values.reduce((a, v) => a + v.value, 0);
  return { app, metrics, port, served, timeouts };
}

/** Sends a GET on a raw socket; never reads unless the caller does. */
function rawGet(port: number, path: string): Socket {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined); // a reset when the server destroys it: expected
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  socket.pause();
  return socket;
}

for (const route of ['/json', '/safetensors']) {
  test(`a client that never reads ${route}: its connection is destroyed after RESPONSE_WRITE_TIMEOUT_MS, counted, and the body stream let go`, async () => {
    const t = await startApp(300);
    const client = rawGet(t.port, route);
    try {
      await until('the server destroyed the stalled response', () => (t.served.get(route)?.[0]?.closed ? true : undefined), EVENTUALLY_MS);
      const served = t.served.get(route)![0];
      await until('the body stream is destroyed', () => served.stream.destroyed || undefined, EVENTUALLY_MS);
      assert.equal(served.stream.readableEnded, false, 'the body was not written out');
      assert.equal(await t.timeouts(), 1);
      const metricsText = await t.metrics.registry.metrics();
      assert.match(metricsText, new RegExp(`esm2_response_write_timeouts_total\\{route="${route}"\\} 1`));
    } finally {
      client.destroy();
      await t.app.close();
    }
  });
}

test('a slow client that keeps reading is not cut, nor a quiet stream, nor a long wait before the answer', async () => {
  const t = await startApp(300);
  try {
    // Reads 256 KiB, pauses 30 ms, and so on: ~24 MB takes far longer than the timeout.
    const slow = rawGet(t.port, '/safetensors');
    let received = 0;
    let sinceBreak = 0;
    slow.on('data', (chunk: Buffer) => {
      received += chunk.length;
      sinceBreak += chunk.length;
      if (sinceBreak >= 256 * 1024) {
        sinceBreak = 0;
        slow.pause();
        setTimeout(() => slow.resume(), 30);
      }
    });
    slow.resume();
    const quiet = rawGet(t.port, '/quiet');
    let quietText = '';
    quiet.on('data', (chunk: Buffer) => void (quietText += chunk.toString()));
    quiet.resume();
    const waited = rawGet(t.port, '/slow-answer');
    let waitedText = '';
    waited.on('data', (chunk: Buffer) => void (waitedText += chunk.toString()));
    waited.resume();

    await Promise.all([once(slow, 'end'), once(quiet, 'end'), once(waited, 'end')]);
    const expected = safetensorsStream(BIG_TENSORS, { model: 'test' }).byteLength;
    assert.ok(received > expected, `received ${received} bytes, body is ${expected}`);
    assert.match(quietText, /event: a\ndata: 1\n\n[\s\S]*event: b\ndata: 2\n\n/);
    assert.match(waitedText, /^HTTP\/1.1 200[\s\S]*\{"ok":true\}/);
    assert.equal(await t.timeouts(), 0);
    assert.equal(t.served.get('/safetensors')![0].stream.readableEnded, true);
  } finally {
    await t.app.close();
  }
});

test('while a large jsonStream is sent, other requests are answered before it finishes', async () => {
  const t = await startApp(30_000);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  try {
    const order: string[] = [];
    let bigBytes = 0;
    const started = performance.now();
    const big = new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: t.port, path: '/json', agent: false }, (res) => {
        const parts: Buffer[] = [];
        let asked = false;
        res.on('data', (chunk: Buffer) => {
          parts.push(chunk);
          bigBytes += chunk.length;
          if (!asked) {
            asked = true;
            delay.enable();
            // The first bytes are here: ask for something else on another connection.
            httpRequest({ host: '127.0.0.1', port: t.port, path: '/ping', agent: false }, (ping) => {
              ping.resume();
              ping.on('end', () => void order.push(`ping (big at ${bigBytes} bytes)`));
            }).end();
          }
        });
        res.on('end', () => {
          order.push('big');
          resolve(Buffer.concat(parts));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const body = await big;
    delay.disable();
    const seconds = (performance.now() - started) / 1000;
    console.log(`# ${(body.length / 1e6).toFixed(1)} MB streamed in ${seconds.toFixed(2)} s (${(body.length / 1e6 / seconds).toFixed(0)} MB/s, client and server in one process); event-loop delay while streaming: p50 ${(delay.percentile(50) / 1e6).toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms; order: ${order.join(', ')}`);
    assert.equal(order.length, 2);
    assert.match(order[0], /^ping/, `the ping waited for the big answer: ${order.join(', ')}`);
    assert.equal(body.toString('utf8'), JSON.stringify(BIG_JSON));
  } finally {
    await t.app.close();
  }
});
