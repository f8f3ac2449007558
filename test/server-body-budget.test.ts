// MAX_BODY_BYTES_IN_FLIGHT (server/body.ts; docs/reliability.md, promise 3): clients that declare
// large bodies, send most of them and stall cannot make the server hold more body bytes than the
// budget. A body whose Content-Length does not fit what is left is answered 503 server_busy at once,
// unread, and its connection closed; a chunked one is refused when it would pass the budget; every
// byte is given back after the 408s; small requests are still served meanwhile; and the Buffers are
// really freed (external memory, measured in a child process after gc()). Raw sockets on 127.0.0.1;
// every wait is for an event, bounded only to turn a hang into a failure.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { postJson, startTestServer, type TestServer } from './helpers/server.js';
import { until } from './helpers/hold.js';
import { postHead, StalledUpload } from './helpers/stalled-upload.js';

const LIMIT = 1024 * 1024;
/** Four declared bodies of DECLARED fit, a fifth does not. */
const BUDGET = 4 * LIMIT;
const DECLARED = 1_000_000;
const SENT = 900_000;
const CLIENT_TIMEOUT = 3000;
const CONNECTIONS = 20;

let server: TestServer;
let port: number;
before(async () => {
  server = await startTestServer({ BODY_LIMIT_BYTES: String(LIMIT), MAX_BODY_BYTES_IN_FLIGHT: String(BUDGET), CLIENT_TIMEOUT_MS: String(CLIENT_TIMEOUT), BATCH_QUEUE_MAX_WAIT_MS: '5' });
  port = Number(new URL(server.url).port);
});
after(() => server.close());

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

/**
 * Opens `n` uploads one after the other, each declaring DECLARED bytes: each either gets its budget
 * (then sends SENT bytes and stalls) or is answered at once. Returns them in order.
 */
async function stallUploads(n: number): Promise<StalledUpload[]> {
  const body = Buffer.alloc(SENT, 0x20);
  const uploads: StalledUpload[] = [];
  for (let i = 0; i < n; i++) {
    const before = server.bodies.inFlight;
    const upload = new StalledUpload(port, postHead('/predict', `Content-Length: ${DECLARED}\r\n`));
    uploads.push(upload);
    // Either the server reserved this body's bytes (it is reading it) or it answered the headers alone.
    await until(`upload ${i} reserved or answered`, () => upload.answered || upload.closed || server.bodies.inFlight > before);
    if (!upload.answered && !upload.closed) await upload.send(body);
    assert.ok(server.bodies.peak <= BUDGET, `held ${server.bodies.peak} > budget ${BUDGET}`);
  }
  return uploads;
}

test('stalled uploads hold at most the budget; one past it gets 503 server_busy unread; small requests are served; 408s give every byte back', async () => {
  const refusedBefore = await metric('esm2_bodies_refused_total');
  const uploads = await stallUploads(CONNECTIONS);
  const held = uploads.filter((u) => !u.answered);
  const refused = uploads.filter((u) => u.answered);
  assert.equal(held.length, Math.floor(BUDGET / DECLARED), 'as many stalled bodies as fit the budget');
  assert.equal(refused.length, CONNECTIONS - held.length);
  assert.equal(server.bodies.inFlight, held.length * DECLARED);
  for (const u of refused) {
    await u.done; // and its connection closed
    assert.equal(u.status(), 503, u.response.slice(0, 300));
    assert.match(u.response, /\r\nretry-after: 1\r\n/i);
    assert.match(u.response, /\r\nconnection: close\r\n/i);
    assert.match(u.response, /"error":"server_busy"/);
    assert.match(u.response, new RegExp(`Content-Length is ${DECLARED} bytes.*only ${BUDGET - held.length * DECLARED} of MAX_BODY_BYTES_IN_FLIGHT \\(${BUDGET} bytes\\)`));
  }
  assert.equal((await metric('esm2_bodies_refused_total')) - refusedBefore, refused.length);
  assert.equal(await metric('esm2_body_bytes_in_flight'), held.length * DECLARED);

  // Another client, meanwhile: a small body fits what is left.
  const small = await postJson(`${server.url}/predict`, { sequence: 'MKTAYIAKQR' });
  assert.equal(small.status, 200, JSON.stringify(small.json));

  await Promise.all(held.map((u) => u.done));
  for (const u of held) assert.equal(u.status(), 408, u.response.slice(0, 200));
  await until('every body byte given back', () => server.bodies.inFlight === 0);
  assert.equal(await metric('esm2_body_bytes_in_flight'), 0);
  assert.ok(server.bodies.peak <= BUDGET);
});

test('a chunked body is counted as it arrives and refused (503) when it would pass the budget; bytes given back', async () => {
  const uploads = await stallUploads(4);
  assert.ok(uploads.every((u) => !u.answered));
  const free = BUDGET - server.bodies.inFlight;
  const chunked = new StalledUpload(port, postHead('/predict', 'Transfer-Encoding: chunked\r\n'));
  const data = Buffer.alloc(16 * 1024, 0x20);
  const frame = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
  // Within BODY_LIMIT_BYTES (1 MiB), but past the 194,304 bytes left: refused before the limit.
  for (let sent = 0; sent < LIMIT && !chunked.answered && !chunked.closed; sent += data.length) await chunked.send(frame);
  await chunked.done;
  assert.equal(chunked.status(), 503, chunked.response.slice(0, 300));
  assert.match(chunked.response, /"error":"server_busy"/);
  assert.match(chunked.response, /\r\nconnection: close\r\n/i);
  assert.ok(server.bodies.peak <= BUDGET);
  assert.equal(server.bodies.inFlight, BUDGET - free, 'the refused chunked body gave its bytes back');
  await Promise.all(uploads.map((u) => u.done));
  await until('every body byte given back', () => server.bodies.inFlight === 0);
});

/** POST `body` raw, with the given headers (Content-Length added). */
function rawPost(path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown>; connection?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('bodies within the budget parse as before: JSON, malformed 400, prototype poisoning 400, over the limit 413; nothing left held', async () => {
  const ok = await rawPost('/predict', JSON.stringify({ sequence: 'MKTV' }));
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  const utf8 = await rawPost('/predict', `{"sequence":"MKTV","x":"${'é'.repeat(5000)}"}`);
  assert.notEqual(utf8.status, 400, 'multi-byte characters split across chunks decode whole');
  const bad = await rawPost('/predict', '{"sequence":');
  assert.deepEqual([bad.status, bad.json.error], [400, 'invalid_json']);
  const empty = await rawPost('/predict', '');
  assert.deepEqual([empty.status, empty.json.error], [400, 'invalid_json']);
  for (const poison of ['{"sequence":"MKTV","__proto__":{"polluted":true}}', '{"sequence":"MKTV","constructor":{"prototype":{"polluted":true}}}']) {
    const res = await rawPost('/predict', poison);
    assert.deepEqual([res.status, res.json.error], [400, 'invalid_json'], poison);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const big = await rawPost('/predict', JSON.stringify({ sequence: 'M'.repeat(LIMIT) }));
  assert.deepEqual([big.status, big.json.error, big.connection], [413, 'body_too_large', 'close']);
  const plain = await rawPost('/predict', 'MKTV', { 'content-type': 'text/plain' });
  assert.equal(plain.status, 422, 'text/plain is read (within the budget) and refused by the schema, as before');
  assert.equal(server.bodies.inFlight, 0);
});

test('memory: stalled uploads hold at most the budget in Buffers, and it is freed after the 408s (child process, gc())', async () => {
  // 40 uploads declaring 10 MB and sending 9.9 MB each, 64 MiB budget: 6 held, 34 refused.
  const limit = 10 * 1024 * 1024;
  const budget = 64 * 1024 * 1024;
  const child: ChildProcess = fork(fileURLToPath(new URL('./helpers/body-memory-server.js', import.meta.url)), [String(limit), String(budget), '3000'], { execArgv: ['--expose-gc'] });
  type Memory = { rss: number; external: number; arrayBuffers: number; inFlight: number; peak: number };
  const replies: { type: string; port?: number }[] = [];
  child.on('message', (m: { type: string }) => replies.push(m));
  const next = async <T>(type: string): Promise<T> => {
    const m = await until(`child ${type}`, () => { const i = replies.findIndex((r) => r.type === type); return i >= 0 ? replies.splice(i, 1)[0] : undefined; });
    return m as T;
  };
  const memory = async () => {
    child.send({ type: 'memory' });
    return next<Memory>('memory');
  };
  try {
    const { port: childPort } = await next<{ port: number }>('ready');
    const start = await memory();
    const body = Buffer.alloc(9_900_000, 0x20);
    const uploads: StalledUpload[] = [];
    for (let i = 0; i < 40; i++) {
      const u = new StalledUpload(childPort!, postHead('/echo', 'Content-Length: 10000000\r\n'));
      uploads.push(u);
      await Promise.race([u.send(body), u.answeredOrClosed()]);
    }
    // Until the server has read what the held uploads sent (each held one, 9.9 MB, into Buffers).
    const held = await until('the held bodies read', async () => { const m = await memory(); return m.arrayBuffers - start.arrayBuffers > 6 * 9_000_000 && m; }, 60_000);
    const slack = 16 * 1024 * 1024;
    assert.ok(held.peak <= budget);
    assert.ok(held.arrayBuffers - start.arrayBuffers <= budget + slack, `during: +${((held.arrayBuffers - start.arrayBuffers) / 2 ** 20).toFixed(1)} MiB of ArrayBuffers, budget ${budget / 2 ** 20} MiB + ${slack / 2 ** 20} MiB slack`);
    await Promise.all(uploads.map((u) => u.done));
    assert.equal(uploads.filter((u) => u.status() === 408).length, 6);
    // The refused ones sent their body without waiting for the answer: the server closes with it unread,
    // so the kernel may reset the connection before the 503 is read.
    assert.deepEqual(uploads.filter((u) => u.status() !== 408 && u.status() !== 503 && !Number.isNaN(u.status())), []);
    const end = await until('the budget back to 0 and the Buffers freed', async () => { const m = await memory(); return m.inFlight === 0 && m.arrayBuffers - start.arrayBuffers < 4 * 1024 * 1024 && m; });
    console.log(
      `ArrayBuffers: start ${(start.arrayBuffers / 2 ** 20).toFixed(1)} MiB, 6 stalled bodies held ${(held.arrayBuffers / 2 ** 20).toFixed(1)} MiB, after the 408s ${(end.arrayBuffers / 2 ** 20).toFixed(1)} MiB; ` +
        `RSS ${(start.rss / 2 ** 20).toFixed(0)} → ${(held.rss / 2 ** 20).toFixed(0)} → ${(end.rss / 2 ** 20).toFixed(0)} MiB`,
    );
  } finally {
    child.kill();
  }
});
