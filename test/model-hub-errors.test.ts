// What goes wrong with the hub, and what the user is told: offline with and without a cache, token
// problems, unknown repositories, pytorch-only repositories, no network, disk full. Plus the
// environment and repository-id rules shared with Python's huggingface_hub.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { defaultHubCacheDir, HubError, hubEnv, looksLikeRepoId, parseRepoRef, pullModel, RepoCache } from '../src/model/hub/index.js';
import { testHubEnv } from './helpers/hub-env.js';
import { MOCK_COMMIT, startMockHub, type MockHub } from './helpers/mock-hub.js';

const REPO = 'facebook/esm2_tiny';
let hub: MockHub;

before(async () => {
  hub = await startMockHub();
});
after(() => hub.close());
beforeEach(() => {
  Object.assign(hub, { token: undefined, repoMissing: false, onlyPytorchBin: false, corruptLarge: false, dropLargeAfterBytes: undefined, requests: [] });
});

/** Asserts `promise` rejects with a HubError of `kind` whose message matches every pattern. */
async function rejectsWith(promise: Promise<unknown>, kind: string, ...patterns: RegExp[]): Promise<HubError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof HubError, String(caught));
  assert.equal(caught.kind, kind, caught.message);
  for (const p of patterns) assert.match(caught.message, p);
  assert.ok(!caught.message.includes('\n'));
  return caught;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('HF_HUB_OFFLINE=1 serves from the cache without a request, and says what to run when it is empty', async (t) => {
  const online = await testHubEnv(t, hub.url);
  const pulled = await pullModel(REPO, { env: online });
  hub.requests = [];
  for (const value of ['1', 'true', 'YES', 'on']) {
    const offline = hubEnv({ HF_HOME: path.dirname(online.cacheDir), HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: value });
    assert.equal(offline.offline, true, value);
    const cached = await pullModel(REPO, { env: offline });
    assert.deepEqual([cached.dir, cached.via, cached.commit], [pulled.dir, 'offline', MOCK_COMMIT]);
  }
  assert.equal(hub.requests.length, 0);
  assert.equal(hubEnv({ HF_HUB_OFFLINE: '0' }).offline, false);

  const empty = await testHubEnv(t, hub.url, { HF_HUB_OFFLINE: '1' });
  await rejectsWith(pullModel(REPO, { env: empty }), 'offline', /HF_HUB_OFFLINE is set and facebook\/esm2_tiny is not in the cache/, /run `esm2 pull facebook\/esm2_tiny` while online/);
  assert.equal(hub.requests.length, 0);
});

test('401 without a token and 403 with the wrong one name the repo and the HF_TOKEN fix', async (t) => {
  hub.token = 'hf_right';
  await rejectsWith(pullModel(REPO, { env: await testHubEnv(t, hub.url) }), 'auth', /facebook\/esm2_tiny is gated or private and no HF_TOKEN is set \(HTTP 401\)/, /set HF_TOKEN/, /accept the model's license/);
  await rejectsWith(pullModel(REPO, { env: await testHubEnv(t, hub.url, { HF_TOKEN: 'hf_wrong' }) }), 'auth', /the token in HF_TOKEN has no access to it \(HTTP 403\)/);
  const ok = await pullModel(REPO, { env: await testHubEnv(t, hub.url, { HF_TOKEN: 'hf_right' }) });
  assert.equal(ok.commit, MOCK_COMMIT);
});

test('a token saved by `huggingface-cli login` ($HF_HOME/token) is used like HF_TOKEN', async (t) => {
  const env = await testHubEnv(t, hub.url);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path.join(path.dirname(env.cacheDir), 'token'), 'hf_from_file\n');
  assert.equal(hubEnv({ HF_HOME: path.dirname(env.cacheDir) }).token, 'hf_from_file');
});

test('an unknown repository (404) says to check the id and that private repos need HF_TOKEN', async (t) => {
  hub.repoMissing = true;
  await rejectsWith(pullModel('facebook/esm2_nope', { env: await testHubEnv(t, hub.url) }), 'not-found', /repository facebook\/esm2_nope was not found on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\)/, /check the id/, /HF_TOKEN/);
  hub.repoMissing = false;
  await rejectsWith(pullModel(`${REPO}@v9`, { env: await testHubEnv(t, hub.url) }), 'revision-not-found', /revision "v9" of facebook\/esm2_tiny does not exist/);
});

test('a repository with only pytorch_model.bin is refused: this server needs safetensors, and how to convert', async (t) => {
  hub.onlyPytorchBin = true;
  const env = await testHubEnv(t, hub.url);
  await rejectsWith(pullModel(REPO, { env }), 'no-safetensors', /facebook\/esm2_tiny has weights only as pytorch_model\.bin; this server reads safetensors only/, /safe_serialization=True/);
  assert.equal(hub.count('HEAD', '/pytorch_model.bin'), 1);
  assert.equal(hub.count('GET', '/pytorch_model.bin'), 0, 'never downloaded');
  const cache = new RepoCache(env.cacheDir, REPO);
  assert.ok(existsSync(path.join(cache.repoDir, '.no_exist', MOCK_COMMIT, 'model.safetensors')));
  assert.ok(!existsSync(path.join(cache.repoDir, 'refs', 'main')), 'no ref to an unusable snapshot');
});

test('no network: a clear error when nothing is cached; the cached snapshot (with a notice) when it is', async (t) => {
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const env = await testHubEnv(t, dead);
  await rejectsWith(pullModel(REPO, { env }), 'network', /cannot reach http:\/\/127\.0\.0\.1:\d+ to fetch facebook\/esm2_tiny \(ECONNREFUSED/, /not in the cache/, /HF_HUB_OFFLINE=1/);

  await pullModel(REPO, { env: { ...env, endpoint: hub.url } });
  const notices: string[] = [];
  const cached = await pullModel(REPO, { env, onNotice: (m) => notices.push(m) });
  assert.equal(cached.via, 'unreachable');
  assert.equal(cached.commit, MOCK_COMMIT);
  assert.equal(notices.length, 1);
  assert.match(notices[0], /using the cached snapshot 0123456789abcdef/);
  assert.match(notices[0], /Set HF_HUB_OFFLINE=1/);
});

test('a hub that does not answer in time is a network error, not a hang', async (t) => {
  const sockets: import('node:net').Socket[] = [];
  const silent = createServer((s) => sockets.push(s)); // accepts, never answers
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    sockets.forEach((s) => s.destroy());
    return new Promise((resolve) => silent.close(resolve));
  });
  const env = await testHubEnv(t, `http://127.0.0.1:${(silent.address() as { port: number }).port}`, { HF_HUB_ETAG_TIMEOUT: '0.3' });
  // The hub never answers: only a timeout can end the pull, and the message names which one (not
  // the default 10 s). The bound only turns a hang into a failure.
  const started = Date.now();
  await rejectsWith(pullModel(REPO, { env }), 'network', /timed out after 0\.3 s/);
  assert.ok(Date.now() - started < 30_000);
});

test('disk full (ENOSPC) names the repo, the file and HF_HUB_CACHE', { skip: !existsSync('/dev/full') && 'no /dev/full' }, async (t) => {
  const env = await testHubEnv(t, hub.url);
  const cache = new RepoCache(env.cacheDir, REPO);
  const etag = hub.files().get('model.safetensors')!.etag;
  await mkdir(path.dirname(cache.incompletePath(etag)), { recursive: true });
  await symlink('/dev/full', cache.incompletePath(etag)); // every write there fails with ENOSPC
  await rejectsWith(pullModel(REPO, { env }), 'disk-full', /disk full \(ENOSPC\) while downloading model\.safetensors of facebook\/esm2_tiny/, /set HF_HUB_CACHE/);
});

test('repository ids and revisions are read as huggingface_hub reads them', () => {
  assert.deepEqual(parseRepoRef('facebook/esm2_t6_8M_UR50D'), { repoId: 'facebook/esm2_t6_8M_UR50D', revision: 'main' });
  assert.deepEqual(parseRepoRef('facebook/esm2_t6_8M_UR50D@v1.0'), { repoId: 'facebook/esm2_t6_8M_UR50D', revision: 'v1.0' });
  assert.deepEqual(parseRepoRef(`org/m@${MOCK_COMMIT}`), { repoId: 'org/m', revision: MOCK_COMMIT });
  assert.deepEqual(parseRepoRef('org/m@refs/pr/1'), { repoId: 'org/m', revision: 'refs/pr/1' });
  for (const bad of ['esm2', './models/esm2', '/abs/path', 'a/b/c', 'a--b/c', 'org/m@', 'org/..', 'org/m.git']) {
    assert.equal(looksLikeRepoId(bad), false, bad);
    assert.throws(() => parseRepoRef(bad), (err: unknown) => err instanceof HubError && err.kind === 'bad-repo-id');
  }
});

test('cache location: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME, else ~/.cache/huggingface/hub', () => {
  assert.equal(defaultHubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }), '/c');
  assert.equal(defaultHubCacheDir({ HF_HOME: '/h' }), '/h/hub');
  assert.equal(defaultHubCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub');
  assert.equal(defaultHubCacheDir({}), path.join(homedir(), '.cache', 'huggingface', 'hub'));
  assert.equal(defaultHubCacheDir({ HF_HOME: '~/hf' }), path.join(homedir(), 'hf', 'hub'));
  assert.equal(hubEnv({ HF_ENDPOINT: 'https://mirror.example/' }).endpoint, 'https://mirror.example');
  assert.equal(hubEnv({}).endpoint, 'https://huggingface.co');
  assert.equal(hubEnv({ HF_HUB_ETAG_TIMEOUT: '2.5' }).etagTimeoutMs, 2500);
  assert.throws(() => hubEnv({ HF_HUB_DOWNLOAD_TIMEOUT: 'soon' }), /HF_HUB_DOWNLOAD_TIMEOUT="soon" is invalid/);
});
