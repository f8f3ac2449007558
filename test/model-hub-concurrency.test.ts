// Several pulls of one repository into one cache at once (8 pods on a shared volume): every file
// is downloaded once, nobody sees a half-written blob, and abandoned locks do not block forever.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { promisify } from 'node:util';
import { pullModel, RepoCache } from '../src/model/hub/index.js';
import { withFileLock } from '../src/model/hub/lock.js';
import { until } from './helpers/hold.js';
import { testHubEnv } from './helpers/hub-env.js';
import { startMockHub, type MockHub } from './helpers/mock-hub.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

const REPO = 'facebook/esm2_tiny';
const run = promisify(execFile);
let hub: MockHub;

before(async () => {
  hub = await startMockHub();
});
after(() => hub.close());
beforeEach(() => {
  hub.requests = [];
  hub.largeDelayMs = 0;
  hub.holdLarge = undefined;
});

/**
 * The large file's download, once started, waits until both pulls have asked for the file (its
 * metadata HEAD): they overlap however slowly either starts. A hold that never ends shows as a
 * failed assertion, after the download timeout the pulls are given.
 */
function holdLargeUntilBothAsked(): void {
  const held = until('both pulls to ask for model.safetensors', () => hub.count('HEAD', '/model.safetensors') >= 2);
  held.catch(() => undefined);
  hub.holdLarge = held;
}
/** Longer than any hold above (HF_HUB_DOWNLOAD_TIMEOUT, seconds). */
const DOWNLOAD_TIMEOUT = { HF_HUB_DOWNLOAD_TIMEOUT: '120' };

/** One intact copy: every blob's content matches its etag, nothing partial and no lock left over. */
async function assertOneIntactCopy(cacheDir: string): Promise<void> {
  const cache = new RepoCache(cacheDir, REPO);
  const blobs = (await readdir(path.join(cache.repoDir, 'blobs'))).sort();
  const files = hub.files();
  assert.deepEqual(blobs, ['config.json', 'vocab.txt', 'model.safetensors'].map((f) => files.get(f)!.etag).sort());
  const model = await readFile(cache.blobPath(files.get('model.safetensors')!.etag));
  assert.equal(createHash('sha256').update(model).digest('hex'), files.get('model.safetensors')!.etag);
  assert.deepEqual(await readdir(cache.lockDir), []);
}

test('two `esm2 pull` processes on one cache: one GET per file, one intact copy, same snapshot', async (t) => {
  const home = await tempDir(t, 'esm2-hf-shared-');
  holdLargeUntilBothAsked();
  const env = { ...process.env, HF_HOME: home, HF_HUB_CACHE: path.join(home, 'hub'), HF_ENDPOINT: hub.url, HF_TOKEN: '', ...DOWNLOAD_TIMEOUT };
  const pull = () => run(process.execPath, [path.join(repoRoot, 'bin', 'esm2.js'), 'pull', REPO], { env });
  const [a, b] = await Promise.all([pull(), pull()]);
  assert.equal(a.stdout, b.stdout);
  assert.ok(a.stdout.trim().endsWith(`snapshots/${hub.commit}`), a.stdout);
  assert.equal(hub.count('HEAD', '/model.safetensors'), 2, 'both processes reached the large file while it was downloading');
  assert.equal(hub.requests.filter((r) => r.server === 'cdn' && r.method === 'GET').length, 1, JSON.stringify(hub.requests));
  assert.equal(hub.count('GET', '/config.json'), 1);
  assert.equal(hub.count('GET', '/vocab.txt'), 1);
  assert.match(a.stderr + b.stderr, /nothing downloaded|downloaded/);
  await assertOneIntactCopy(path.join(home, 'hub'));
});

test('two concurrent pulls in one process share the file lock the same way', async (t) => {
  holdLargeUntilBothAsked();
  const env = await testHubEnv(t, hub.url, DOWNLOAD_TIMEOUT);
  const [a, b] = await Promise.all([pullModel(REPO, { env }), pullModel(REPO, { env })]);
  assert.equal(a.dir, b.dir);
  assert.equal(hub.count('HEAD', '/model.safetensors'), 2);
  assert.equal(hub.requests.filter((r) => r.server === 'cdn' && r.method === 'GET').length, 1);
  assert.equal(a.bytesDownloaded + b.bytesDownloaded, ['config.json', 'vocab.txt', 'model.safetensors'].reduce((n, f) => n + hub.files().get(f)!.bytes.length, 0));
  await assertOneIntactCopy(env.cacheDir);
});

test('a lock left by a dead process on this host is broken at once', async (t) => {
  const env = await testHubEnv(t, hub.url);
  const cache = new RepoCache(env.cacheDir, REPO);
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  const lock = cache.lockPath(hub.files().get('model.safetensors')!.etag);
  await mkdir(path.dirname(lock), { recursive: true });
  await writeFile(lock, JSON.stringify({ pid: dead, host: hostname(), token: 'x' }));
  let waits = 0;
  await pullModel(REPO, { env, lock: { onWait: () => void (waits += 1) } });
  assert.equal(waits, 0, 'never waited for it');
  assert.ok(!existsSync(lock));
});

test('a foreign lock (Python filelock leaves empty ones) is waited for while fresh, broken once stale', async (t) => {
  const env = await testHubEnv(t, hub.url);
  const cache = new RepoCache(env.cacheDir, REPO);
  const lock = cache.lockPath(hub.files().get('model.safetensors')!.etag);
  await mkdir(path.dirname(lock), { recursive: true });

  await writeFile(lock, '');
  const old = new Date(Date.now() - 60_000);
  await utimes(lock, old, old);
  let waits = 0;
  await pullModel(REPO, { env, lock: { onWait: () => void (waits += 1) } });
  assert.equal(waits, 0, 'a minute-old empty lock is stale: never waited for');

  const env2 = await testHubEnv(t, hub.url);
  const lock2 = new RepoCache(env2.cacheDir, REPO).lockPath(hub.files().get('model.safetensors')!.etag);
  await mkdir(path.dirname(lock2), { recursive: true });
  await writeFile(lock2, '');
  const started2 = Date.now();
  let waits2 = 0;
  await pullModel(REPO, { env: env2, lock: { staleMs: 600, pollMs: 50, onWait: () => void (waits2 += 1) } });
  assert.ok(waits2 > 0, 'the fresh lock was waited for');
  assert.ok(Date.now() - started2 >= 550, `waited ${Date.now() - started2} ms for the fresh lock to go stale`);
});

test('a live holder keeps its lock past staleMs by touching it; the waiter gets it when released', async (t) => {
  const dir = await tempDir(t);
  const lock = path.join(dir, 'x.lock');
  const order: string[] = [];
  // The holder keeps the lock until the waiter has waited twice staleMs: without its heartbeat the
  // lock would have looked stale by then. staleMs is 20 heartbeats, so only a stall of the whole
  // process for most of a second (never seen, however loaded) could let a touch come too late.
  const STALE_MS = 1000;
  let waited = 0;
  let waiterStarted!: () => void;
  const waiting = new Promise<void>((resolve) => (waiterStarted = resolve));
  const holder = withFileLock(lock, async () => {
    order.push('A in');
    waiterStarted();
    await until('the waiter to have waited 2 × staleMs', () => waited >= 2 * STALE_MS);
    order.push('A out');
  }, { staleMs: STALE_MS, heartbeatMs: 50 });
  await waiting;
  const waiter = withFileLock(lock, async () => {
    order.push('B in');
  }, { staleMs: STALE_MS, pollMs: 20, onWait: (ms) => void (waited = ms) });
  await Promise.all([holder, waiter]);
  assert.deepEqual(order, ['A in', 'A out', 'B in']);
  assert.ok(!existsSync(lock));
});
