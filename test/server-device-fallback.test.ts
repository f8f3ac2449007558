// A GPU that is not there is never silent: DEVICES=cuda:0 on this CUDA-less machine falls back to
// cpu, and the replica then runs the cpu's precision (fp32 with PRECISION=auto, checked against
// fair-esm), /health is degraded with the reason, /v1/models reports the device obtained and its
// precision per replica, a metric counts it and a warning says it. ALLOW_CPU_FALLBACK=false makes
// it fatal: start-up fails with one line naming the device, the reason and the setting.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { cudaProviderInstalled } from '../src/engine/detect.js';
import { healthVerdict } from '../src/server/health.js';
import type { PoolReplicaInfo } from '../src/engine/pool.js';
import { buildApp } from '../src/server/app.js';
import { loadSettings } from '../src/server/settings.js';
import { serveUntilExit, startCliServer } from './helpers/cli-server.js';
import { goldenCases, goldenTensor, relativeError } from './helpers/golden.js';
import { metricSum, scrape } from './helpers/load.js';
import { fixtureModelDir } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';
import { postJson, startTestServer } from './helpers/server.js';

type Json = Record<string, unknown>;
const getJson = async (url: string): Promise<{ status: number; json: Json }> => {
  const res = await fetch(url);
  return { status: res.status, json: (await res.json()) as Json };
};

test('DEVICES=cuda:0 without CUDA: fp32 on cpu (fair-esm to 1e-5), /health degraded with the reason, /v1/models per replica, a metric', async (t) => {
  const server = await startTestServer({ DEVICES: 'cuda:0' });
  t.after(() => server.close());
  const models = (await getJson(`${server.url}/v1/models`)).json;
  assert.equal(models.precision, 'fp32', 'the precision of the device obtained, not of the one asked for');
  const [device] = models.devices as Json[];
  assert.deepEqual({ ...device, fallback_reason: undefined }, { id: 0, requested: 'cuda:0', device: 'cpu', precision: 'fp32', state: 'ready', fallback_reason: undefined });
  assert.match(String(device.fallback_reason), /^cuda:0 unavailable: \S/);

  const health = await getJson(`${server.url}/health`);
  assert.equal(health.status, 200, 'still serving');
  assert.equal(health.json.status, 'degraded');
  assert.match(String(health.json.message), /replica 0 asked for cuda:0 runs on cpu \(fp32\): cuda:0 unavailable: \S/);
  assert.deepEqual([health.json.gpu_count, health.json.gpu_ids], [0, []]);
  assert.equal((await fetch(`${server.url}/ready`)).status, 200);

  assert.equal(metricSum(await scrape(server.url), 'esm2_replica_fallbacks_total', { requested: 'cuda:0', device: 'cpu' }), 1);

  // fp32 numerics: the GPU's fp16 graph on the cpu would be ~5e-4 off.
  const c = (await goldenCases())[0];
  const { status, json } = await postJson(`${server.url}/v1/embed`, { sequences: [c.sequence], include: ['mean'], repr_layers: [-1] });
  assert.equal(status, 200);
  const mean = Object.values((json.results as Json[])[0].representations as Record<string, { mean: number[] }>)[0].mean;
  const err = relativeError(mean, await goldenTensor(c.id, 'mean'));
  assert.ok(err <= 1e-5, `relative error ${err.toExponential(2)} vs fair-esm`);
});

test('PRECISION=fp16 asked for explicitly: the fallback keeps fp16 on cpu, and says so', async (t) => {
  const server = await startTestServer({ DEVICES: 'cuda:0', PRECISION: 'fp16' });
  t.after(() => server.close());
  const models = (await getJson(`${server.url}/v1/models`)).json;
  assert.equal(models.precision, 'fp16');
  assert.deepEqual((models.devices as Json[]).map((d) => [d.device, d.precision]), [['cpu', 'fp16']]);
  const health = (await getJson(`${server.url}/health`)).json;
  assert.equal(health.status, 'degraded');
  assert.match(String(health.message), /replica 0 asked for cuda:0 runs on cpu \(fp16\)/);
});

test('ALLOW_CPU_FALLBACK=false: a fallback stops start-up with one line (device, reason, setting), even with a cpu replica up', async (t) => {
  const settings = loadSettings({ MODEL_NAME: fixtureModelDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', DEVICES: 'cpu,cuda:0', ALLOW_CPU_FALLBACK: 'false' });
  const { app, runtime } = await buildApp(settings, { version: 'test', logger: false });
  t.after(() => app.close());
  await assert.rejects(runtime.start(), (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /^replica 1 \(cuda:0\): cuda:0 unavailable: \S.*; falling back to cpu is not allowed \(ALLOW_CPU_FALLBACK=false\)$/);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  });
  assert.equal(runtime.state, 'unhealthy');
  const health = await app.inject({ url: '/health' });
  assert.deepEqual([health.statusCode, health.json<Json>().status], [503, 'unhealthy']);
});

test('esm2 serve: the fallback is a warning line; with ALLOW_CPU_FALLBACK=false the process exits 1 saying why in one line', async (t) => {
  const serving = await startCliServer(t, { DEVICES: 'cuda:0' });
  const warning = serving.output().split('\n').find((line) => line.includes('fallback from cuda:0'));
  assert.ok(warning, serving.output());
  assert.equal((JSON.parse(warning) as { level: number }).level, 40, 'warn');
  serving.child.kill('SIGKILL');

  const { code, output } = await serveUntilExit(t, { DEVICES: 'cuda:0', ALLOW_CPU_FALLBACK: 'false' });
  assert.equal(code, 1, output);
  const lines = output.split('\n').filter((line) => line.includes('ALLOW_CPU_FALLBACK'));
  assert.equal(lines.length, 1, output);
  assert.match(lines[0], /replica 0 \(cuda:0\): cuda:0 unavailable: \S.*; falling back to cpu is not allowed \(ALLOW_CPU_FALLBACK=false\)/);
});

test('health statuses: demo outranks degraded (and says both), a fallback alone is degraded, draining is unhealthy', () => {
  const replica = (over: Partial<PoolReplicaInfo>): PoolReplicaInfo => ({ index: 0, device: 'cpu', actual: 'cpu', precision: 'fp32', state: 'ready', busy: false, batchesRun: 0, restarts: 0, hangs: 0, ...over });
  const fellBack = replica({ index: 1, device: 'cuda:0', fallbackReason: 'cuda:0 unavailable: no driver' });
  const base = { state: 'ready' as const, message: 'model loaded and every replica is up' };
  assert.deepEqual(healthVerdict({ ...base, replicas: [replica({})] }), { status: 'healthy', code: 200, message: base.message });
  const degraded = healthVerdict({ ...base, replicas: [replica({}), fellBack] });
  assert.deepEqual([degraded.status, degraded.code], ['degraded', 200]);
  assert.match(degraded.message, /replica 1 asked for cuda:0 runs on cpu \(fp32\): cuda:0 unavailable: no driver/);
  const demo = healthVerdict({ ...base, replicas: [fellBack], demoReason: 'offline' });
  assert.deepEqual([demo.status, demo.code], ['demo', 200]);
  assert.match(demo.message, /^serving the built-in demo checkpoint: RANDOM WEIGHTS.*\(offline\).*replica 1 asked for cuda:0/);
  assert.deepEqual(healthVerdict({ ...base, state: 'draining', replicas: [replica({})], demoReason: 'offline' }).status, 'unhealthy');
});

/** A PATH whose `nvidia-smi` lists one GPU: DEVICES=auto then sees a GPU that, without the CUDA provider (this machine), it cannot use. */
async function pathWithFakeGpu(t: TestContext): Promise<string> {
  const bin = await tempDir(t, 'esm2-fake-smi-');
  await writeFile(join(bin, 'nvidia-smi'), '#!/bin/sh\necho "0, NVIDIA H100 80GB HBM3, 81559 MiB, GPU-aaaa1111-0000-0000-0000-000000000000"\n', { mode: 0o755 });
  return `${bin}:${process.env.PATH ?? ''}`;
}

test('DEVICES=auto with an NVIDIA GPU but no CUDA provider: cpu is a fallback (degraded, metric, warning); ALLOW_CPU_FALLBACK=false stops start-up', { skip: cudaProviderInstalled() && 'the CUDA provider is installed here' }, async (t) => {
  const PATH = await pathWithFakeGpu(t);
  const serving = await startCliServer(t, { DEVICES: 'auto', PATH });
  const health = await getJson(`${serving.url}/health`);
  assert.equal(health.json.status, 'degraded', JSON.stringify(health.json));
  assert.match(String(health.json.message), /DEVICES=auto runs on cpu: 1 NVIDIA GPU, but onnxruntime-node has no CUDA execution provider/);
  assert.equal(metricSum(await scrape(serving.url), 'esm2_replica_fallbacks_total', { requested: 'auto', device: 'cpu' }), 1);
  assert.ok(serving.output().split('\n').some((line) => line.includes('runs on cpu') && (JSON.parse(line) as { level: number }).level === 40), serving.output());
  serving.child.kill('SIGKILL');

  const { code, output } = await serveUntilExit(t, { DEVICES: 'auto', PATH, ALLOW_CPU_FALLBACK: 'false' });
  assert.equal(code, 1, output);
  const lines = output.split('\n').filter((line) => line.includes('ALLOW_CPU_FALLBACK=false'));
  assert.equal(lines.length, 1, output);
  assert.match(lines[0], /DEVICES=auto would run on cpu: 1 NVIDIA GPU, but onnxruntime-node has no CUDA execution provider/);
});
