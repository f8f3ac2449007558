// Promise 3, the parts the body fuzzing (server-fuzz.test.ts) does not cover, over raw sockets:
// a body over BODY_LIMIT_BYTES is cut off — answered 413 and its connection closed long before
// the client has sent it all, whether it declares its length or streams it chunked — and a client
// that sends its request too slowly (headers or body) is answered 408 and disconnected after
// CLIENT_TIMEOUT_MS, while a request that is merely slow to *compute* is not.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { protein } from './helpers/load.js';
import { postJson, startTestServer, type TestServer } from './helpers/server.js';
import { sleep } from './helpers/cli-server.js';
import { until } from './helpers/hold.js';

const LIMIT = 64 * 1024;
const CLIENT_TIMEOUT = 1000;
/** What a hostile client would send in all (1,024 × the limit). */
const HUGE = 64 * 1024 * 1024;
/** Bound on waiting for the server to answer or close: only turns a hang into a failure. */
const EVENTUALLY_MS = 30_000;

let server: TestServer;
let port: number;
before(async () => {
  server = await startTestServer({ BODY_LIMIT_BYTES: String(LIMIT), CLIENT_TIMEOUT_MS: String(CLIENT_TIMEOUT), BATCH_QUEUE_MAX_WAIT_MS: '1500', BATCH_QUEUE_WAIT_WHEN_IDLE: 'true' });
  port = Number(new URL(server.url).port);
});
after(() => server.close());

/** A raw connection that records what comes back and when it ends. */
class RawClient {
  readonly socket: Socket;
  response = '';
  firstByteAt?: number;
  closedAt?: number;
  sent = 0;
  readonly opened = performance.now();
  readonly closed: Promise<void>;

  constructor() {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      this.firstByteAt ??= performance.now();
      this.response += chunk.toString('latin1');
    });
    this.socket.on('error', () => undefined); // EPIPE / ECONNRESET once the server has closed: expected
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closedAt = performance.now();
        resolve();
      }),
    );
  }

  get gone(): boolean {
    return this.closedAt !== undefined || this.socket.destroyed || !this.socket.writable;
  }

  /** Writes and waits for the kernel to take it; false once the server has answered or closed. */
  async write(data: string | Buffer): Promise<boolean> {
    if (this.gone || this.firstByteAt !== undefined) return false;
    const flushed = this.socket.write(data);
    this.sent += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (!flushed) {
      await Promise.race([new Promise((resolve) => this.socket.once('drain', resolve)), this.closed, sleep(2000)]);
    }
    return !this.gone && this.firstByteAt === undefined;
  }

  status(): number {
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(this.response)?.[1] ?? NaN);
  }

  async closedWithin(ms: number): Promise<boolean> {
    await Promise.race([this.closed, sleep(ms)]);
    return this.closedAt !== undefined;
  }
}

const HEAD = (extra: string) => `POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}\r\n`;

test('a chunked body streaming past BODY_LIMIT_BYTES gets 413 and a closed connection long before it is all sent', async () => {
  const client = new RawClient();
  await client.write(HEAD('Transfer-Encoding: chunked\r\n'));
  const chunk = Buffer.alloc(16 * 1024, 'A');
  const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
  let sentWhenAnswered = 0;
  while (client.sent < HUGE && (await client.write(frame)));
  sentWhenAnswered = client.sent;
  assert.ok(await client.closedWithin(EVENTUALLY_MS), 'the server closes the connection');
  assert.equal(client.status(), 413, client.response.slice(0, 200));
  assert.match(client.response, /\r\nconnection: close\r\n/i);
  assert.match(client.response, /"error":"body_too_large"/);
  assert.ok(sentWhenAnswered < HUGE / 4, `cut off after ${(sentWhenAnswered / 2 ** 20).toFixed(1)} MiB of ${HUGE / 2 ** 20} MiB`);
  console.log(`chunked: 413 after ${(sentWhenAnswered / 1024).toFixed(0)} KiB sent (limit ${LIMIT / 1024} KiB, socket buffers included)`);
});

test('a declared Content-Length over BODY_LIMIT_BYTES gets 413 before the body is sent, and the connection is closed', async () => {
  const client = new RawClient();
  const head = HEAD(`Content-Length: ${HUGE}\r\n`);
  await client.write(head);
  // Not a byte of the body is sent: a server that waited for it would never answer.
  await until('the answer to the headers alone', () => client.firstByteAt !== undefined, EVENTUALLY_MS);
  assert.equal(client.sent, Buffer.byteLength(head), 'answered before any body byte was sent');
  assert.ok(await client.closedWithin(EVENTUALLY_MS), 'the server closes the connection');
  assert.equal(client.status(), 413);
  assert.match(client.response, /\r\nconnection: close\r\n/i);
});

test('slow headers (one byte every 100 ms) are cut off with 408 after CLIENT_TIMEOUT_MS', async () => {
  const client = new RawClient();
  const head = HEAD('Content-Length: 20\r\nX-Padding: ' + 'x'.repeat(100) + '\r\n');
  for (let i = 0; i < head.length && (await client.write(head[i])); i++) await sleep(100);
  assert.ok(await client.closedWithin(EVENTUALLY_MS), 'disconnected');
  const lasted = client.closedAt! - client.opened;
  // Cut off by the timeout: not before it, and while the headers (≈ 20 s at this pace) were still arriving.
  assert.ok(lasted >= CLIENT_TIMEOUT - 50, `disconnected after ${lasted.toFixed(0)} ms, not before CLIENT_TIMEOUT_MS`);
  assert.ok(client.sent < head.length, `cut off with ${client.sent} of ${head.length} header bytes sent`);
  assert.equal(client.status(), 408, client.response);
  // The service's own error body, naming the setting.
  const body = JSON.parse(client.response.slice(client.response.indexOf('\r\n\r\n') + 4)) as { detail: string; error: string };
  assert.equal(body.error, 'request_timeout');
  assert.match(body.detail, /CLIENT_TIMEOUT_MS/);
  console.log(`slow headers: 408 and closed after ${lasted.toFixed(0)} ms (CLIENT_TIMEOUT_MS=${CLIENT_TIMEOUT})`);
});

test('a slow body (one byte every 100 ms) is cut off with 408 after CLIENT_TIMEOUT_MS; its request never runs', async () => {
  const batches: unknown[] = [];
  const listener = (report: unknown) => batches.push(report);
  server.runtime.model!.scheduler.on('batch', listener);
  const body = JSON.stringify({ sequence: protein(200, 1) });
  const client = new RawClient();
  await client.write(HEAD(`Content-Length: ${body.length}\r\n`));
  for (let i = 0; i < body.length && (await client.write(body[i])); i++) await sleep(100);
  assert.ok(await client.closedWithin(EVENTUALLY_MS), 'disconnected');
  const lasted = client.closedAt! - client.opened;
  // Cut off by the timeout: not before it, and while the body (≈ 20 s at this pace) was still arriving.
  assert.ok(lasted >= CLIENT_TIMEOUT - 50, `disconnected after ${lasted.toFixed(0)} ms, not before CLIENT_TIMEOUT_MS`);
  const headBytes = Buffer.byteLength(HEAD(`Content-Length: ${body.length}\r\n`));
  assert.ok(client.sent < headBytes + body.length, `cut off with ${client.sent - headBytes} of ${body.length} body bytes sent`);
  assert.equal(client.status(), 408);
  server.runtime.model!.scheduler.off('batch', listener);
  assert.deepEqual(batches, [], 'nothing ran');
});

test('CLIENT_TIMEOUT_MS bounds receiving only: a request that waits longer for its batch is answered 200', async () => {
  // BATCH_QUEUE_MAX_WAIT_MS (1500 ms) > CLIENT_TIMEOUT_MS: a lone request waits that long for company.
  const started = performance.now();
  const res = await postJson(`${server.url}/predict`, { sequence: protein(30, 2) });
  const elapsed = performance.now() - started;
  assert.equal(res.status, 200);
  assert.ok(elapsed > CLIENT_TIMEOUT, `answered after ${elapsed.toFixed(0)} ms`);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});
