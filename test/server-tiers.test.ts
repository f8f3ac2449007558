// Client tiers (README, API keys and tiers): API_KEYS_FILE's keys each with their own rate-limit
// bucket, reread on SIGHUP; failed authentication throttled per address; a bad file refused at
// start; tier 1 served before a saturating tier 2, whose requests all still complete.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { buildApp } from '../src/server/app.js';
import { loadSettings } from '../src/server/settings.js';
import { startCliServer, sleep } from './helpers/cli-server.js';
import { fixtureModelDir } from './helpers/paths.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp-dir.js';
import { status } from '@grpc/grpc-js';
import { grpcClient } from '../bench/grpc-client.js';

const A = 'key-a-0123456789abcdef';
const B = 'key-b-0123456789abcdef';
const C = 'key-c-0123456789abcdef';
const D = 'key-d-0123456789abcdef';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

async function keysFile(t: TestContext | undefined, yaml: string, dir?: string): Promise<string> {
  const path = join(dir ?? (await tempDir(t!, 'esm2-keys-')), 'keys.yaml');
  await writeFile(path, yaml);
  return path;
}

const holdClock = (t: TestContext) => {
  const now = performance.now();
  t.mock.method(performance, 'now', () => now);
};

describe('API_KEYS_FILE: per-key limits, the auth throttle, reload', () => {
  let s: TestServer;
  let file: string;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'esm2-keys-'));
    file = await keysFile(
      undefined,
      `keys:\n  - { name: a, key: "${A}", tier: 1, rate_limit: { requests_per_minute: 3 } }\n  - { name: b, key: "${B}", tier: 2, rate_limit: { requests_per_second: 0.1, burst: 5 } }\n  - { name: d, key: "${D}" }\n`,
      dir,
    );
    s = await startTestServer({ API_KEYS_FILE: file, AUTH_FAILURES_PER_MINUTE: '20' });
  });
  after(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('each key has its own bucket: a runs out after 3, b still has its 5', async (t) => {
    holdClock(t);
    const ask = (key: string, remoteAddress: string) => s.app.inject({ method: 'GET', url: '/v1/models', remoteAddress, headers: bearer(key) });
    for (let i = 0; i < 3; i++) assert.equal((await ask(A, `10.1.0.${i}`)).statusCode, 200);
    const refused = await ask(A, '10.1.0.9');
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.headers['retry-after'], '20', '3 a minute: one more in 20 s');
    for (let i = 0; i < 5; i++) assert.equal((await ask(B, '10.1.0.1')).statusCode, 200, `b's request ${i + 1}`);
    const refusedB = await ask(B, '10.1.0.1');
    assert.equal(refusedB.statusCode, 429);
    assert.equal(refusedB.headers['retry-after'], '10', '6 a minute: one more in 10 s');
    const metrics = await s.app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /esm2_key_requests_total\{key="a"\} 3/);
  });

  test('2,000 wrong keys from one address: 20 are answered 401, the rest 429 unchecked; the right key from another address passes', async (t) => {
    holdClock(t);
    const statuses = new Map<number, number>();
    let retryAfter: string | undefined;
    for (let i = 0; i < 2000; i++) {
      const res = await s.app.inject({ method: 'GET', url: '/v1/models', remoteAddress: '10.2.0.1', headers: i % 2 ? bearer(`guess-${i}-0123456789`) : {} });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode === 429) retryAfter = String(res.headers['retry-after']);
    }
    assert.deepEqual(Object.fromEntries(statuses), { 401: 20, 429: 1980 });
    assert.equal(retryAfter, '3', '20 a minute: one more in 3 s');
    const same = await s.app.inject({ method: 'GET', url: '/v1/models', remoteAddress: '10.2.0.1', headers: bearer(D) });
    assert.equal(same.statusCode, 429, 'the throttled address is not checked, even with a right key');
    assert.equal((same.json() as { error: string }).error, 'auth_throttled');
    const other = await s.app.inject({ method: 'GET', url: '/v1/models', remoteAddress: '10.2.0.2', headers: bearer(D) });
    assert.equal(other.statusCode, 200, 'another address with the right key');
    assert.equal((await s.app.inject({ method: 'GET', url: '/health', remoteAddress: '10.2.0.1' })).statusCode, 200, 'open routes stay open');
  });

  test('reload: a key added works, a removed one stops; a bad file keeps the keys in force', async () => {
    const ask = (key: string) => s.app.inject({ method: 'GET', url: '/v1/models', remoteAddress: '10.3.0.1', headers: bearer(key) });
    assert.equal((await ask(C)).statusCode, 401);
    await writeFile(file, `keys:\n  - { name: c, key: "${C}", tier: 2 }\n  - { name: b, key: "${B}", tier: 2, rate_limit: { requests_per_second: 0.1, burst: 5 } }\n`);
    assert.deepEqual(s.access.reload(), { keys: 2 });
    assert.equal((await ask(C)).statusCode, 200, 'added');
    assert.equal((await ask(A)).statusCode, 401, 'removed');
    await writeFile(file, `keys:\n  - { name: c, key: "short", tier: 2 }\n`);
    assert.throws(() => s.access.reload(), /API_KEYS_FILE .*keys\.yaml: keys\[0\] \(c\): key: expected at least 16 characters/);
    assert.equal((await ask(C)).statusCode, 200, 'kept after a bad file');
  });
});

test('a bad API_KEYS_FILE stops start-up with one line naming the file and the problem', async (t) => {
  const dir = await tempDir(t, 'esm2-keys-');
  const cases: [string, RegExp][] = [
    ['keys: [ { name: x, key: "0123456789abcdef0", tier: 0 } ]', /keys\[0\] \(x\): tier: expected a whole number from 1 to 1000/],
    ['keys: [ { name: x, key: "0123456789abcdef0" }, { name: x, key: "0123456789abcdef1" } ]', /the name "x" is given twice/],
    ['keys: [ { name: x, key: "0123456789abcdef0", key_sha256: "ab" } ]', /expected one of key or key_sha256/],
    ['{ "keys": [ { "name": "x", "key_sha256": "zz" } ] }', /key_sha256: expected 64 hex digits/],
    ['keys: {', /not YAML or JSON/],
    ['- a', /expected an object with a list `keys`/],
  ];
  for (const [text, why] of cases) {
    const path = await keysFile(undefined, text, dir);
    const settings = loadSettings({ MODEL_NAME: fixtureModelDir, API_KEYS_FILE: path, LOG_LEVEL: 'silent' });
    await assert.rejects(buildApp(settings, { version: 'test', logger: false }), (err: Error) => {
      assert.match(err.message, new RegExp(`^API_KEYS_FILE ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
      assert.match(err.message, why);
      assert.ok(!err.message.includes('\n'), 'one line');
      return true;
    });
  }
  const settings = loadSettings({ MODEL_NAME: fixtureModelDir, API_KEYS_FILE: join(dir, 'none.yaml'), LOG_LEVEL: 'silent' });
  await assert.rejects(buildApp(settings, { version: 'test', logger: false }), /none\.yaml: cannot be read: ENOENT/);
});

test('SIGHUP to the real server rereads API_KEYS_FILE', { timeout: 60_000 }, async (t) => {
  const path = await keysFile(t, `keys:\n  - { name: a, key: "${A}" }\n`);
  const server = await startCliServer(t, { API_KEYS_FILE: path, LOG_LEVEL: 'info' });
  const status = async (key: string) => (await fetch(`${server.url}/v1/models`, { headers: bearer(key) }).then(async (r) => (await r.arrayBuffer(), r.status)));
  assert.equal(await status(A), 200);
  assert.equal(await status(C), 401);
  await writeFile(path, `keys:\n  - { name: c, key: "${C}", tier: 2 }\n`);
  server.child.kill('SIGHUP');
  for (let i = 0; i < 100 && !server.output().includes('API keys reread'); i++) await sleep(50);
  assert.equal(await status(C), 200, 'the added key works');
  assert.equal(await status(A), 401, 'the removed key stops');
  await writeFile(path, 'keys: {');
  server.child.kill('SIGHUP');
  for (let i = 0; i < 100 && !server.output().includes('keeping the API keys'); i++) await sleep(50);
  assert.match(server.output(), /SIGHUP: keeping the API keys in force: API_KEYS_FILE .*keys\.yaml: not YAML or JSON/);
  assert.equal(await status(C), 200, 'still in force');
  server.child.kill('SIGTERM');
  await server.exited;
});

test('gRPC calls use the same keys file: a listed key with its tier works, a wrong one is UNAUTHENTICATED, then throttled per address', async (t) => {
  const file = await keysFile(t, `keys:\n  - name: lab\n    key: "${A}"\n    tier: 2\n`);
  const server = await startTestServer({ API_KEYS_FILE: file, GRPC_PORT: '0', AUTH_FAILURES_PER_MINUTE: '3' });
  t.after(() => server.close());
  const address = `127.0.0.1:${server.grpcPort}`;
  const good = grpcClient(address, { apiKey: A });
  const bad = grpcClient(address, { apiKey: 'not-a-key-0123456789' });
  t.after(() => {
    good.close();
    bad.close();
  });
  const before = (await (await fetch(`${server.url}/metrics`)).text()).match(/^esm2_tier_requests_total\{tier="2"\} (\d+)/m)?.[1] ?? '0';
  const answer = await good.unary('Embed', { sequences: ['MKTAYIAKQR'], include: ['mean'] });
  assert.equal((answer.results as unknown[]).length, 1);
  const after = (await (await fetch(`${server.url}/metrics`)).text()).match(/^esm2_tier_requests_total\{tier="2"\} (\d+)/m)?.[1];
  assert.equal(Number(after), Number(before) + 1, 'the call ran as tier 2');
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) codes.push(await bad.unary('Embed', { sequences: ['MKTAYIAKQR'] }).then(() => -1, (err: { code: number }) => err.code));
  assert.deepEqual(codes, [status.UNAUTHENTICATED, status.UNAUTHENTICATED, status.UNAUTHENTICATED, status.RESOURCE_EXHAUSTED, status.RESOURCE_EXHAUSTED]);
});
