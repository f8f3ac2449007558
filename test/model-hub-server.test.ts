// MODEL_NAME as the server resolves it: a hub repository (served from the mock hub, embeddings equal
// to fair-esm's), a local directory first, the default model, and the demo only when MODEL_NAME is
// unset and the default cannot be had. No test here can reach huggingface.co: every one sets
// HF_ENDPOINT to the mock hub or a closed port, or HF_HUB_OFFLINE=1.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { DEMO_MODEL_NAME } from '../src/model/demo.js';
import { DEFAULT_MODEL_REPO, HubError, progressLogger, resolveModel } from '../src/model/hub/index.js';
import { buildApp } from '../src/server/app.js';
import { loadSettings } from '../src/server/settings.js';
import { fixtureModelDir, goldenCases, goldenTensor, relativeError } from './helpers/golden.js';
import { MOCK_COMMIT, startMockHub, type MockHub } from './helpers/mock-hub.js';
import { postJson, startTestServer } from './helpers/server.js';
import { serveUntilExit } from './helpers/cli-server.js';
import { tempDir } from './helpers/temp-dir.js';

let hub: MockHub;
before(async () => {
  hub = await startMockHub({ 'facebook/esm2_tiny': fixtureModelDir, [DEFAULT_MODEL_REPO]: fixtureModelDir });
});
after(() => hub.close());

/** Sets HF_* variables (and a fresh HF_HOME and demo cache) for one test; restores them after. */
async function hubVariables(t: TestContext, vars: Record<string, string>): Promise<Record<string, string>> {
  const home = await tempDir(t, 'esm2-hf-home-');
  const all = { HF_HOME: home, HF_HUB_CACHE: path.join(home, 'hub'), ESM2_DEMO_CACHE: path.join(home, 'demo'), HF_TOKEN: '', HF_HUB_OFFLINE: '', ...vars };
  const saved = Object.fromEntries(Object.keys(all).map((k) => [k, process.env[k]]));
  Object.assign(process.env, all);
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  return all;
}

async function closedEndpoint(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

function collectLog() {
  const lines: { level: string; message: string }[] = [];
  return { lines, log: { info: (message: string) => lines.push({ level: 'info', message }), warn: (message: string) => lines.push({ level: 'warn', message }) } };
}

test('MODEL_NAME=facebook/esm2_tiny from the mock hub: /v1/embed equals fair-esm, /v1/models names repo@commit', async (t) => {
  await hubVariables(t, { HF_ENDPOINT: hub.url });
  const server = await startTestServer({ MODEL_NAME: 'facebook/esm2_tiny' });
  t.after(() => server.close());
  const models = (await (await fetch(`${server.url}/v1/models`)).json()) as Record<string, unknown>;
  assert.equal(models.name, 'facebook/esm2_tiny');
  assert.equal(models.source, `huggingface hub (facebook/esm2_tiny@${MOCK_COMMIT})`);
  assert.equal(hub.requests.filter((r) => r.server === 'cdn' && r.method === 'GET').length, 1, 'weights fetched once');
  for (const c of await goldenCases()) {
    const { status, json } = await postJson(`${server.url}/v1/embed`, { sequences: [c.sequence], include: ['mean'], repr_layers: [-1] });
    assert.equal(status, 200);
    assert.equal(json.model, 'facebook/esm2_tiny');
    const result = (json.results as Record<string, unknown>[])[0];
    const mean = Object.values(result.representations as Record<string, { mean: number[] }>)[0].mean;
    const err = relativeError(mean, await goldenTensor(c.id, 'mean'));
    assert.ok(err <= 1e-5, `${c.id}: relative error ${err}`);
  }
});

test('MODEL_NAME unset and the hub unreachable: the demo, named as such everywhere', async (t) => {
  await hubVariables(t, { HF_ENDPOINT: await closedEndpoint() });
  const started = Date.now();
  const server = await startTestServer({ MODEL_NAME: '' });
  t.after(() => server.close());
  // How soon is a figure, not a test: giving up on a hub that does not answer is the next test.
  t.diagnostic(`ready on the demo after ${Date.now() - started} ms`);
  assert.equal(server.runtime.modelName, DEMO_MODEL_NAME);
  const healthResponse = await fetch(`${server.url}/health`);
  const health = (await healthResponse.json()) as Record<string, unknown>;
  assert.equal(health.model_name, DEMO_MODEL_NAME);
  // Never a healthy production server: status and message say random weights (200: a laptop's npm start serves).
  assert.deepEqual([healthResponse.status, health.status], [200, 'demo']);
  assert.match(String(health.message), /^serving the built-in demo checkpoint: RANDOM WEIGHTS, meaningless outputs \(.*facebook\/esm2_t6_8M_UR50D could not be had: .+\)/);
  assert.equal((await fetch(`${server.url}/ready`)).status, 200);
  const models = (await (await fetch(`${server.url}/v1/models`)).json()) as Record<string, unknown>;
  assert.equal(models.source, 'built-in demo');
  const { json } = await postJson(`${server.url}/predict`, { sequence: 'MKTVRQ' });
  assert.equal(json.model_name, DEMO_MODEL_NAME);
  // The alerts component's Esm2DemoModelServing reads this gauge.
  assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^esm2_demo_model 1$/m);
});

test('ALLOW_DEMO_MODEL=false and the default model out of reach: start-up fails with one line saying why, no demo', async (t) => {
  const vars = await hubVariables(t, { HF_ENDPOINT: await closedEndpoint() });
  const settings = loadSettings({ MODEL_NAME: '', ALLOW_DEMO_MODEL: 'false', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', DEVICES: 'cpu' });
  const { app, runtime } = await buildApp(settings, { version: 'test', logger: false });
  t.after(() => app.close());
  await assert.rejects(runtime.start(), (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /^MODEL_NAME is not set and the default model facebook\/esm2_t6_8M_UR50D could not be had: .*127\.0\.0\.1.*; ALLOW_DEMO_MODEL=false refuses the built-in demo checkpoint \(random weights\)/);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  });
  assert.equal(runtime.state, 'unhealthy');
  assert.equal(existsSync(vars.ESM2_DEMO_CACHE), false, 'no demo checkpoint written');

  const { code, output } = await serveUntilExit(t, { MODEL_NAME: '', ALLOW_DEMO_MODEL: 'false' });
  assert.equal(code, 1, output);
  const lines = output.split('\n').filter((line) => line.includes('ALLOW_DEMO_MODEL'));
  assert.equal(lines.length, 1, output);
  assert.match(lines[0], /MODEL_NAME is not set and the default model \S+ could not be had: .*; ALLOW_DEMO_MODEL=false refuses the built-in demo checkpoint/);
});

test('the demo fallback warns loudly with the reason; a silent hub is given up on within the timeout', async (t) => {
  const silent = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const sockets: import('node:net').Socket[] = [];
  silent.on('connection', (s) => sockets.push(s));
  t.after(() => {
    sockets.forEach((s) => s.destroy());
    return new Promise((resolve) => silent.close(resolve));
  });
  const vars = await hubVariables(t, { HF_ENDPOINT: `http://127.0.0.1:${(silent.address() as { port: number }).port}`, HF_HUB_ETAG_TIMEOUT: '0.5' });
  const { lines, log } = collectLog();
  // The hub never answers: only a timeout can end the wait, and the warning names which one (0.5 s,
  // not the default 10 s). The bound only turns a hang into a failure.
  const started = Date.now();
  const resolved = await resolveModel(undefined, { log, env: vars, demoCacheDir: vars.ESM2_DEMO_CACHE });
  assert.ok(Date.now() - started < 30_000);
  assert.deepEqual([resolved.name, resolved.source, resolved.demo], [DEMO_MODEL_NAME, 'built-in demo', true]);
  const warning = lines.find((l) => l.level === 'warn')?.message ?? '';
  assert.match(warning, /BUILT-IN DEMO CHECKPOINT/);
  assert.match(warning, /facebook\/esm2_t6_8M_UR50D could not be had: .*timed out after 0\.5 s/);
  assert.match(warning, /Set MODEL_NAME/);
});

test('MODEL_NAME unset and the default model on the hub: it is served, not the demo', async (t) => {
  const vars = await hubVariables(t, { HF_ENDPOINT: hub.url });
  const { log } = collectLog();
  const resolved = await resolveModel(undefined, { log, env: vars });
  assert.deepEqual([resolved.name, resolved.source, resolved.demo], [DEFAULT_MODEL_REPO, `huggingface hub (${DEFAULT_MODEL_REPO}@${MOCK_COMMIT})`, false]);
});

test('an explicitly set MODEL_NAME that cannot be had stops start-up, never the demo', async (t) => {
  const vars = await hubVariables(t, { HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: '1' });
  const { log } = collectLog();
  await assert.rejects(resolveModel('facebook/esm2_tiny', { log, env: vars }), (err: unknown) => err instanceof HubError && err.kind === 'offline');
  await assert.rejects(resolveModel('./no/such/dir', { log, env: vars }), /MODEL_NAME=\.\/no\/such\/dir: no such directory, and not a HuggingFace hub repository id/);

  const settings = loadSettings({ MODEL_NAME: 'facebook/esm2_tiny', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', DEVICES: 'cpu' });
  const { app, runtime } = await buildApp(settings, { version: 'test', logger: false });
  t.after(() => app.close());
  await assert.rejects(runtime.start(), /HF_HUB_OFFLINE is set and facebook\/esm2_tiny is not in the cache/);
  assert.equal(runtime.state, 'unhealthy');
  assert.equal(runtime.modelName, 'facebook/esm2_tiny');
});

test('an existing local directory wins over a hub id of the same name', async (t) => {
  const vars = await hubVariables(t, { HF_ENDPOINT: hub.url });
  const cwd = await tempDir(t);
  await mkdir(path.join(cwd, 'facebook'));
  await symlink(fixtureModelDir, path.join(cwd, 'facebook', 'esm2_tiny'));
  const previous = process.cwd();
  process.chdir(cwd);
  t.after(() => process.chdir(previous));
  hub.requests = [];
  const resolved = await resolveModel('facebook/esm2_tiny', { log: collectLog().log, env: vars });
  assert.deepEqual([resolved.dir, resolved.source], ['facebook/esm2_tiny', 'local directory']);
  assert.equal(hub.requests.length, 0);
});

test('server download progress: a log line per 10 % or 5 s, "done" once, nothing for small files', () => {
  const { lines, log } = collectLog();
  let now = 0;
  const report = progressLogger(log, 'org/big', () => now);
  const total = 100 * 2 ** 20;
  report('config.json', 0, 700);
  report('config.json', 700, 700);
  for (let mib = 0; mib <= 100; mib++) {
    now += 10; // 1 s for the whole file: steps alone decide
    report('model.safetensors', mib * 2 ** 20, total);
  }
  report('model.safetensors', total, total);
  assert.deepEqual(lines.map((l) => l.message.replace(/^downloading org\/big: model\.safetensors /, '')), [
    '0.0 of 100.0 MiB (0 %)', '10.0 of 100.0 MiB (10 %)', '20.0 of 100.0 MiB (20 %)', '30.0 of 100.0 MiB (30 %)', '40.0 of 100.0 MiB (40 %)',
    '50.0 of 100.0 MiB (50 %)', '60.0 of 100.0 MiB (60 %)', '70.0 of 100.0 MiB (70 %)', '80.0 of 100.0 MiB (80 %)', '90.0 of 100.0 MiB (90 %)',
    '100.0 of 100.0 MiB (100 %)',
  ]);
  lines.length = 0;
  const slow = progressLogger(log, 'org/big', () => now);
  slow('model.safetensors', 0, total);
  now += 6000;
  slow('model.safetensors', 2 ** 20, total);
  now += 1000;
  slow('model.safetensors', 2 * 2 ** 20, total);
  assert.equal(lines.length, 2, 'within a 10 % step, one line per 5 s');
});
