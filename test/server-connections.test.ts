// Promise 3, connections: idle sockets cannot take every file descriptor, nor lock new clients out.
// At MAX_CONNECTIONS_PER_ADDRESS from one address, or MAX_CONNECTIONS in all, a new connection closes
// the one idle longest (of its address, for the per-address cap), and is refused only when every
// connection it could replace has a request in progress. An idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT_MS
// (and not before). Other client addresses are 127.0.0.2 etc.: Linux routes all of 127/8 to lo.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startTestServer, type TestServer } from './helpers/server.js';
import { holdBatches, until } from './helpers/hold.js';
import { metricSum, parseMetrics } from './helpers/load.js';

/** Bound on waiting for the server to close a socket: only turns a hang into a failure. */
const EVENTUALLY_MS = 10_000;

interface Idle {
  socket: Socket;
  connected: boolean;
  closed: boolean;
  /** performance.now() when it closed. */
  closedAt?: number;
}

/** A connection that sends nothing (or what it is told to) and records whether the server closed it. */
function openIdle(port: number, localAddress = '127.0.0.1'): Idle {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  const idle: Idle = { socket, connected: false, closed: false };
  socket.on('connect', () => void (idle.connected = true));
  socket.on('error', () => undefined); // ECONNRESET when the server destroys it: expected
  socket.on('close', () => {
    idle.closed = true;
    idle.closedAt = performance.now();
  });
  return idle;
}

/** GET or POST over a fresh connection from localAddress; the status, or the error's code when the connection was refused. */
function call(port: number, localAddress: string, path: string, body?: unknown): Promise<number | string> {
  return new Promise((resolve) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { host: '127.0.0.1', port, localAddress, path, method: data ? 'POST' : 'GET', agent: false, headers: data ? { 'content-type': 'application/json' } : {} },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    req.end(data);
  });
}

async function metric(server: TestServer, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
  return metricSum(parseMetrics(text), name, labels);
}

const portOf = (server: TestServer) => Number(new URL(server.url).port);
const PROTEIN = { sequence: 'MKTAYIAKQRQISFVKSHFSRQ' };

test('past MAX_CONNECTIONS_PER_ADDRESS an address replaces its own connection idle longest; with all of them busy it is refused, others served', async () => {
  const server = await startTestServer({ MAX_CONNECTIONS_PER_ADDRESS: '5', MAX_CONNECTIONS: '1000' });
  const port = portOf(server);
  const sockets: Idle[] = [];
  try {
    for (let i = 0; i < 8; i++) {
      sockets.push(openIdle(port));
      await until(`idle socket ${i} accepted`, async () => (await metric(server, 'esm2_connections_open')) === Math.min(i + 1, 5) && (i < 5 || sockets.filter((s) => s.closed).length === i - 4) || undefined, EVENTUALLY_MS);
    }
    assert.deepEqual(sockets.map((s) => s.closed), [...Array(3).fill(true), ...Array(5).fill(false)], 'its 3 idle longest were closed');
    assert.equal(await metric(server, 'esm2_connections_evicted_total'), 3);
    assert.equal(await metric(server, 'esm2_connections_refused_total', { reason: 'per_address' }), 0);
    for (const s of sockets) s.socket.destroy();
    await until('the idle sockets are counted closed', async () => (await metric(server, 'esm2_connections_open')) === 0 || undefined, EVENTUALLY_MS);

    // Five requests in progress from 127.0.0.1 (held in the pool): a sixth connection from it is refused, another address is served.
    const hold = holdBatches(server);
    const busy = Array.from({ length: 5 }, () => call(port, '127.0.0.1', '/predict', PROTEIN));
    await until('5 requests in progress', async () => (await metric(server, 'esm2_connections_open')) === 5 && server.runtime.model!.scheduler.stats().queuedSequences + hold.sequences >= 5 || undefined, EVENTUALLY_MS);
    const refused = await call(port, '127.0.0.1', '/v1/health/live');
    assert.equal(typeof refused, 'string', `refused connection gave ${String(refused)}`);
    assert.equal(await metric(server, 'esm2_connections_refused_total', { reason: 'per_address' }), 1);
    assert.equal(await call(port, '127.0.0.2', '/v1/health/live'), 200);
    hold.release();
    assert.deepEqual(await Promise.all(busy), Array(5).fill(200));
  } finally {
    for (const s of sockets) s.socket.destroy();
    await server.close();
  }
});

test('at MAX_CONNECTIONS a new client is served by closing the connection idle longest; with every connection busy it is refused', async () => {
  const server = await startTestServer({ MAX_CONNECTIONS: '10', MAX_CONNECTIONS_PER_ADDRESS: '0' });
  const port = portOf(server);
  const sockets: Idle[] = [];
  try {
    // From several addresses, so that no per-address rule could be what closes them; one at a time,
    // so that "the oldest" is well defined.
    for (let i = 0; i < 15; i++) {
      sockets.push(openIdle(port, `127.0.0.${1 + (i % 5)}`));
      await until(`idle socket ${i} accepted`, async () => (await metric(server, 'esm2_connections_open')) === Math.min(i + 1, 10) && (i < 10 || sockets.filter((s) => s.closed).length === i - 9) || undefined, EVENTUALLY_MS);
    }
    assert.deepEqual(sockets.map((s) => s.closed), [...Array(5).fill(true), ...Array(10).fill(false)], 'the 5 idle longest were closed, the newest kept');
    assert.equal(await metric(server, 'esm2_connections_evicted_total'), 5);
    assert.equal(await metric(server, 'esm2_connections_refused_total', { reason: 'total' }), 0);
    // A new client is served; another idle one makes room for it.
    assert.equal(await call(port, '127.0.0.9', '/predict', PROTEIN), 200);
    assert.equal(await metric(server, 'esm2_connections_evicted_total'), 6);
    for (const s of sockets) s.socket.destroy();
    await until('the idle sockets are counted closed', async () => (await metric(server, 'esm2_connections_open')) === 0 || undefined, EVENTUALLY_MS);

    // Ten connections each with a request in progress (held in the pool): none is idle, the eleventh is refused.
    const hold = holdBatches(server);
    const busy = Array.from({ length: 10 }, (_, i) => call(port, `127.0.0.${1 + (i % 5)}`, '/predict', PROTEIN));
    await until('10 requests in progress', async () => (await metric(server, 'esm2_connections_open')) === 10 && server.runtime.model!.scheduler.stats().queuedSequences + hold.sequences >= 10 || undefined, EVENTUALLY_MS);
    const refused = await call(port, '127.0.0.9', '/v1/health/live');
    assert.equal(typeof refused, 'string', `refused connection gave ${String(refused)}`);
    assert.equal(await metric(server, 'esm2_connections_refused_total', { reason: 'total' }), 1);
    hold.release();
    assert.deepEqual(await Promise.all(busy), Array(10).fill(200), 'the busy ones were not cut');
  } finally {
    for (const s of sockets) s.socket.destroy();
    await server.close();
  }
});

test('an idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT_MS, not before', async () => {
  const KEEP_ALIVE = 300;
  const server = await startTestServer({ KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE) });
  const idle = openIdle(portOf(server));
  try {
    let response = '';
    let answeredAt: number | undefined;
    idle.socket.on('data', (chunk: Buffer) => {
      response += chunk.toString('latin1');
      if (response.includes('\r\n\r\n') && answeredAt === undefined) answeredAt = performance.now();
    });
    // Sent by the server just before it starts the idle timer: the lower bound is measured from here.
    const sentAt = performance.now();
    idle.socket.write('GET /v1/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
    await until('the answer', () => answeredAt, EVENTUALLY_MS);
    assert.match(response, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(response, /connection: close/i);
    await until('the idle connection closed by the server', () => idle.closedAt, EVENTUALLY_MS);
    const idleFor = (idle.closedAt ?? 0) - sentAt;
    console.log(`# keep-alive connection closed ${idleFor.toFixed(0)} ms after its request (KEEP_ALIVE_TIMEOUT_MS=${KEEP_ALIVE})`);
    assert.ok(idleFor >= KEEP_ALIVE, `closed after ${idleFor.toFixed(0)} ms, before KEEP_ALIVE_TIMEOUT_MS`);
  } finally {
    idle.socket.destroy();
    await server.close();
  }
});
