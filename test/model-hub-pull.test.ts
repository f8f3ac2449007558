// Pulling from a mock hub into the huggingface_hub cache layout: the exact tree Python writes, the
// checkpoint loading from the snapshot, reuse without downloads, integrity, resume, shards, commits.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { HubError, pullModel, RepoCache } from '../src/model/hub/index.js';
import { writeRandomCheckpoint } from '../src/model/random-checkpoint.js';
import { until } from './helpers/hold.js';
import { listTree, testHubEnv } from './helpers/hub-env.js';
import { MOCK_COMMIT, startMockHub, type MockHub } from './helpers/mock-hub.js';
import { tempDir } from './helpers/temp-dir.js';
import { fixtureModelDirOf } from './helpers/paths.js';

const REPO = 'facebook/esm2_tiny';
let hub: MockHub;

before(async () => {
  hub = await startMockHub();
});
after(() => hub.close());
beforeEach(() => {
  Object.assign(hub, { token: undefined, repoMissing: false, onlyPytorchBin: false, corruptLarge: false, dropLargeAfterBytes: undefined, beforeDrop: undefined, largeDelayMs: 0, ignoreRange: false, requests: [] });
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test('pull writes exactly the huggingface_hub layout, and the snapshot loads as a checkpoint', async (t) => {
  const env = await testHubEnv(t, hub.url);
  const pulled = await pullModel(REPO, { env });
  assert.equal(pulled.commit, MOCK_COMMIT);
  assert.equal(pulled.via, 'online');
  assert.deepEqual(pulled.files, ['config.json', 'vocab.txt', 'model.safetensors']);
  const files = hub.files();
  const etag = (name: string) => files.get(name)!.etag;
  assert.match(etag('config.json'), /^[0-9a-f]{40}$/, 'small files are named by their git sha1');
  assert.match(etag('model.safetensors'), /^[0-9a-f]{64}$/, 'LFS files by their sha256');
  assert.equal(pulled.bytesDownloaded, ['config.json', 'vocab.txt', 'model.safetensors'].reduce((n, f) => n + files.get(f)!.bytes.length, 0));

  const repoDir = path.join(env.cacheDir, 'models--facebook--esm2_tiny');
  assert.equal(pulled.dir, path.join(repoDir, 'snapshots', MOCK_COMMIT));
  assert.deepEqual(await listTree(repoDir), [
    'blobs/',
    ...['config.json', 'vocab.txt', 'model.safetensors'].map((f) => `blobs/${etag(f)}`).sort(),
    'refs/',
    'refs/main',
    'snapshots/',
    `snapshots/${MOCK_COMMIT}/`,
    `snapshots/${MOCK_COMMIT}/config.json -> ../../blobs/${etag('config.json')}`,
    `snapshots/${MOCK_COMMIT}/model.safetensors -> ../../blobs/${etag('model.safetensors')}`,
    `snapshots/${MOCK_COMMIT}/vocab.txt -> ../../blobs/${etag('vocab.txt')}`,
  ].sort());
  assert.equal(await readFile(path.join(repoDir, 'refs', 'main'), 'utf8'), MOCK_COMMIT, 'the commit, no newline');
  for (const f of ['config.json', 'vocab.txt', 'model.safetensors']) {
    assert.ok((await readFile(path.join(pulled.dir, f))).equals(files.get(f)!.bytes), `${f} content`);
  }
  assert.deepEqual(await readdir(path.join(env.cacheDir, '.locks', 'models--facebook--esm2_tiny')), [], 'locks released');

  const checkpoint = await loadCheckpoint(pulled.dir);
  try {
    assert.equal(checkpoint.config.numLayers, 2);
    assert.equal((await checkpoint.readTensor('embeddings.word_embeddings.weight')).length, 33 * 32);
  } finally {
    await checkpoint.close();
  }
});

test('a second pull downloads nothing: one HEAD resolves main, no GET at all', async (t) => {
  const env = await testHubEnv(t, hub.url);
  await pullModel(REPO, { env });
  hub.requests = [];
  const again = await pullModel(REPO, { env });
  assert.equal(again.bytesDownloaded, 0);
  assert.equal(hub.count('GET'), 0, JSON.stringify(hub.requests));
  assert.deepEqual(hub.requests.map((r) => `${r.method} ${r.path}`), [`HEAD /${REPO}/resolve/main/config.json`]);
});

test('a pinned commit already cached needs no request; no ref file is written for a commit', async (t) => {
  const env = await testHubEnv(t, hub.url);
  const pulled = await pullModel(`${REPO}@${MOCK_COMMIT}`, { env });
  assert.equal(pulled.commit, MOCK_COMMIT);
  assert.ok(!existsSync(path.join(env.cacheDir, 'models--facebook--esm2_tiny', 'refs')), 'no refs/ for a commit revision');
  hub.requests = [];
  assert.equal((await pullModel(`${REPO}@${MOCK_COMMIT}`, { env })).via, 'offline');
  assert.equal(hub.requests.length, 0);
});

test('a corrupted LFS download is refused loudly and leaves nothing in blobs/', async (t) => {
  const env = await testHubEnv(t, hub.url);
  hub.corruptLarge = true;
  await assert.rejects(pullModel(REPO, { env }), (err: unknown) => {
    assert.ok(err instanceof HubError && err.kind === 'integrity', String(err));
    assert.match(err.message, /model\.safetensors from facebook\/esm2_tiny is corrupt: its sha256 is [0-9a-f]{64} but the hub's X-Linked-Etag says/);
    return true;
  });
  const blobs = await readdir(path.join(env.cacheDir, 'models--facebook--esm2_tiny', 'blobs'));
  const modelEtag = hub.files().get('model.safetensors')!.etag;
  assert.ok(!blobs.some((b) => b.startsWith(modelEtag)), `no model blob or .incomplete left: ${blobs.join(', ')}`);
  assert.ok(!existsSync(path.join(env.cacheDir, 'models--facebook--esm2_tiny', 'snapshots', MOCK_COMMIT, 'model.safetensors')));
  assert.ok(!existsSync(path.join(env.cacheDir, 'models--facebook--esm2_tiny', 'refs', 'main')), 'no ref to an incomplete snapshot');

  hub.corruptLarge = false;
  const pulled = await pullModel(REPO, { env });
  assert.equal(sha256(await readFile(path.join(pulled.dir, 'model.safetensors'))), modelEtag, 'a clean retry succeeds');
});

/**
 * The next CDN download drops after `bytes`, once the client has written some of them to its
 * `.incomplete` file: on a busy machine it may otherwise still hold every byte in memory when the
 * drop comes, keep nothing and resume from 0. Returns that file's path.
 */
function dropLargeOnceWritten(cacheDir: string, bytes: number): string {
  const incomplete = path.join(cacheDir, 'models--facebook--esm2_tiny', 'blobs', `${hub.files().get('model.safetensors')!.etag}.incomplete`);
  hub.dropLargeAfterBytes = bytes;
  hub.beforeDrop = () => until('the client to write part of the file', async () => (await stat(incomplete).catch(() => undefined))?.size);
  return incomplete;
}

test('a connection dropped mid-file is resumed with Range (206) and the result is intact', async (t) => {
  const env = await testHubEnv(t, hub.url);
  dropLargeOnceWritten(env.cacheDir, 100_000);
  const pulled = await pullModel(REPO, { env, retryDelayMs: 10 });
  const cdn = hub.requests.filter((r) => r.server === 'cdn');
  assert.deepEqual(cdn.map((r) => [r.status, r.complete]), [[200, false], [206, true]], JSON.stringify(cdn));
  // Resumed from what reached the disk: bytes the client had buffered but not written when the
  // connection broke are fetched again, so the offset is at most what the server sent.
  const from = Number(/^bytes=(\d+)-$/.exec(cdn[1].range ?? '')?.[1]);
  assert.ok(from > 0 && from <= 100_000, `resumed from ${cdn[1].range}`);
  assert.equal(sha256(await readFile(path.join(pulled.dir, 'model.safetensors'))), hub.files().get('model.safetensors')!.etag);
});

test('a download cut off for good keeps its .incomplete, and the next pull resumes from it', async (t) => {
  const env = await testHubEnv(t, hub.url);
  const modelEtag = hub.files().get('model.safetensors')!.etag;
  const incomplete = dropLargeOnceWritten(env.cacheDir, 65_536);
  await assert.rejects(pullModel(REPO, { env, retries: 0 }), (err: unknown) => err instanceof HubError && err.kind === 'network' && /resumes/.test(err.message));
  const kept = (await stat(incomplete)).size;
  assert.ok(kept > 0 && kept <= 65_536, `kept ${kept} bytes`);
  hub.requests = [];
  const pulled = await pullModel(REPO, { env });
  const gets = hub.requests.filter((r) => r.server === 'cdn');
  assert.deepEqual(gets.map((r) => [r.status, r.range]), [[206, `bytes=${kept}-`]]);
  assert.equal(pulled.bytesDownloaded, hub.files().get('model.safetensors')!.bytes.length - kept);
  assert.equal(sha256(await readFile(path.join(pulled.dir, 'model.safetensors'))), modelEtag);
  assert.ok(!existsSync(incomplete));
});

test('resumed bytes are verified too: a bad partial file fails the sha256; a server ignoring Range starts over', async (t) => {
  const env = await testHubEnv(t, hub.url);
  const cache = new RepoCache(env.cacheDir, REPO);
  const model = hub.files().get('model.safetensors')!;
  await mkdir(path.dirname(cache.incompletePath(model.etag)), { recursive: true });
  await writeFile(cache.incompletePath(model.etag), Buffer.alloc(1000, 7)); // not the file's first 1000 bytes
  await assert.rejects(pullModel(REPO, { env }), (err: unknown) => err instanceof HubError && err.kind === 'integrity');
  assert.ok(!existsSync(cache.incompletePath(model.etag)), 'the bad partial file is gone');

  await writeFile(cache.incompletePath(model.etag), Buffer.alloc(1000, 7));
  hub.ignoreRange = true;
  hub.requests = [];
  const pulled = await pullModel(REPO, { env });
  const cdn = hub.requests.filter((r) => r.server === 'cdn');
  assert.deepEqual(cdn.map((r) => [r.status, r.range]), [[200, 'bytes=1000-']]);
  assert.equal(pulled.bytesDownloaded, model.bytes.length);
  assert.equal(sha256(await readFile(path.join(pulled.dir, 'model.safetensors'))), model.etag);
});

test('sharded repositories: model.safetensors 404 → index and every shard; .no_exist marks the miss', async (t) => {
  const dir = await tempDir(t);
  await writeRandomCheckpoint({ preset: 'tiny', outDir: dir, seed: 3, shardAboveBytes: 0, maxShardBytes: 100_000 });
  const shardHub = await startMockHub({ 'test/esm2_sharded': dir });
  t.after(() => shardHub.close());
  const env = await testHubEnv(t, shardHub.url);
  const pulled = await pullModel('test/esm2_sharded', { env });
  const shards = pulled.files.filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f));
  assert.ok(shards.length >= 2, pulled.files.join(', '));
  assert.deepEqual(pulled.files, ['config.json', 'vocab.txt', 'model.safetensors.index.json', ...shards]);
  const cache = new RepoCache(env.cacheDir, 'test/esm2_sharded');
  assert.ok(existsSync(path.join(cache.repoDir, '.no_exist', MOCK_COMMIT, 'model.safetensors')), 'as Python: .no_exist/{commit}/model.safetensors');
  const checkpoint = await loadCheckpoint(pulled.dir);
  await checkpoint.close();
  shardHub.requests = [];
  await pullModel('test/esm2_sharded', { env });
  assert.equal(shardHub.count('GET'), 0, 'the cached index names the shards: nothing fetched again');
});

test('the token goes to the hub but not to the CDN host the LFS redirect points to', async (t) => {
  hub.token = 'hf_secret';
  const env = await testHubEnv(t, hub.url, { HF_TOKEN: 'hf_secret' });
  await pullModel(REPO, { env });
  const hubRequests = hub.requests.filter((r) => r.server === 'hub');
  const cdnRequests = hub.requests.filter((r) => r.server === 'cdn');
  assert.ok(hubRequests.length > 0 && hubRequests.every((r) => r.authorization === 'Bearer hf_secret'));
  assert.ok(cdnRequests.length === 1 && cdnRequests.every((r) => r.authorization === undefined), JSON.stringify(cdnRequests));
});

test('an ESM C repository (tokenizer.json, no vocab.txt) pulls, loads, and resolves again offline', async (t) => {
  const esmcHub = await startMockHub({ 'biohub/ESMC-300M': fixtureModelDirOf('esmc_tiny') });
  t.after(() => esmcHub.close());
  const env = await testHubEnv(t, esmcHub.url);
  const pulled = await pullModel('biohub/ESMC-300M', { env });
  assert.deepEqual(pulled.files, ['config.json', 'tokenizer.json', 'model.safetensors']);
  const ckpt = await loadCheckpoint(pulled.dir);
  t.after(() => ckpt.close());
  assert.equal(ckpt.config.family, 'esmc');
  assert.equal(ckpt.tokenizer.tokenCount, 33);
  // vocab.txt's miss is marked as Python marks it; the cached snapshot counts as complete.
  assert.ok(existsSync(path.join(env.cacheDir, 'models--biohub--ESMC-300M', '.no_exist', MOCK_COMMIT, 'vocab.txt')));
  const offline = await pullModel('biohub/ESMC-300M', { env: { ...env, offline: true } });
  assert.deepEqual(offline.files, ['config.json', 'tokenizer.json', 'model.safetensors']);
});
