// The replica pool on the real tiny checkpoint with real replica processes: every replica serves,
// one that cannot start is reported while the others serve, none starting is an error, crashes
// surface as replica-down/replica-up events, and close() finishes accepted work.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ReplicaError } from '../src/engine/errors.js';
import { ReplicaPool, type PoolLogLevel, type PoolOptions } from '../src/engine/pool.js';
import { prepareModel, type PreparedModel } from '../src/engine/prepare.js';
import { fixtureModelDir } from './helpers/paths.js';

let cacheDir: string;
let prepared: PreparedModel;
let rows: Int32Array[];
const pools: ReplicaPool[] = [];

before(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'esm2-pool-'));
  prepared = await prepareModel({ modelDir: fixtureModelDir, device: 'cpu', cacheDir });
  rows = ['MKTAYIAK', 'GLVV'].map((s) => prepared.checkpoint.tokenizer.encode(s));
});

after(async () => {
  await Promise.allSettled(pools.map((p) => p.close()));
  await prepared.checkpoint.close();
  await rm(cacheDir, { recursive: true, force: true });
});

interface LogLine {
  level: PoolLogLevel;
  message: string;
}

async function startPool(replicas: PoolOptions['replicas'], extra: Partial<PoolOptions> = {}): Promise<{ pool: ReplicaPool; logs: LogLine[] }> {
  const logs: LogLine[] = [];
  const pool = await ReplicaPool.start({
    replicas,
    models: prepared.models,
    padTokenId: prepared.compiled[0].padTokenId,
    log: (level, message) => logs.push({ level, message }),
    ...extra,
  });
  pools.push(pool);
  return { pool, logs };
}

const LOGITS = { logits: true } as const;

test('two CPU replicas both run batches', async () => {
  const { pool, logs } = await startPool([
    { device: 'cpu', intraOpNumThreads: 1 },
    { device: 'cpu', intraOpNumThreads: 1 },
  ]);
  assert.equal(pool.size, 2);
  assert.ok(pool.ready);
  assert.equal(pool.upCount(), 2);
  const [a, b] = await Promise.all([pool.run(0, rows, LOGITS), pool.run(1, rows, LOGITS)]);
  assert.equal(a.length, 2);
  // Same graph, same inputs: both replicas give the same answer.
  assert.deepEqual(a[0].logits, b[0].logits);
  assert.deepEqual(
    pool.replicaInfo().map(({ index, device, actual, state, batchesRun }) => ({ index, device, actual, state, batchesRun })),
    [
      { index: 0, device: 'cpu', actual: 'cpu', state: 'ready', batchesRun: 1 },
      { index: 1, device: 'cpu', actual: 'cpu', state: 'ready', batchesRun: 1 },
    ],
  );
  assert.equal(logs.filter((l) => l.message.includes('ready on cpu')).length, 2);
});

test('a replica that cannot start is reported failed while the other serves', async () => {
  const { pool, logs } = await startPool([{ device: 'cpu', intraOpNumThreads: 1 }, { device: 'tpu:0' }]);
  const [good, bad] = pool.replicaInfo();
  assert.equal(good.state, 'ready');
  assert.equal(bad.state, 'failed');
  assert.match(bad.error ?? '', /tpu:0/);
  assert.ok(logs.some((l) => l.level === 'error' && l.message.includes('replica 1 on tpu:0 failed to start')));
  assert.equal(pool.isUp(0), true);
  assert.equal(pool.isUp(1), false);
  assert.equal(pool.upCount(), 1);
  assert.ok(pool.ready, 'ready counts the replicas that started');
  assert.equal(pool.unavailableReason(), undefined, 'one replica serves');
  assert.equal((await pool.run(0, rows, LOGITS)).length, 2);
  await assert.rejects(pool.run(1, rows, LOGITS), (err: unknown) => err instanceof ReplicaError && err.reason === 'failed');
  await assert.rejects(pool.run(2, rows, LOGITS), (err: unknown) => err instanceof ReplicaError && err.reason === 'invalid-request');
});

test('a cuda:0 replica on a GPU-less machine falls back to CPU, says why, and serves', async () => {
  const { pool, logs } = await startPool([{ device: 'cpu', intraOpNumThreads: 1 }, { device: 'cuda:0', intraOpNumThreads: 1 }]);
  const info = pool.replicaInfo()[1];
  assert.equal(info.device, 'cuda:0');
  assert.equal(info.actual, 'cpu');
  assert.equal(info.state, 'ready');
  assert.match(info.fallbackReason ?? '', /cuda:0 unavailable/);
  assert.ok(logs.some((l) => l.level === 'warn' && l.message.includes('fallback')));
  assert.equal((await pool.run(1, rows, LOGITS)).length, 2);
});

test('graphs per device: a cuda:0 replica that falls back compiles and runs the cpu\'s fp32 graph, not the GPU\'s fp16', async (t) => {
  const compileLog: string[] = [];
  const gpuCache = await mkdtemp(join(tmpdir(), 'esm2-pool-gpu-'));
  const gpu = await prepareModel({ modelDir: fixtureModelDir, device: 'cuda:0', cacheDir: gpuCache, log: (m) => compileLog.push(m) });
  t.after(async () => {
    await gpu.checkpoint.close();
    await rm(gpuCache, { recursive: true, force: true });
  });
  assert.equal(gpu.precision, 'fp16');
  assert.deepEqual(compileLog.map((l) => /\((fp\d+)\)/.exec(l)?.[1]), ['fp16'], 'only the requested device\'s graph before any replica starts');
  const { pool, logs } = await startPool([{ device: 'cpu', intraOpNumThreads: 1 }, { device: 'cuda:0', intraOpNumThreads: 1 }], { models: gpu.graphsFor });
  assert.deepEqual(compileLog.map((l) => /\((fp\d+)\)/.exec(l)?.[1]), ['fp16', 'fp32'], 'the cpu\'s graph once, for both replicas');
  const [cpu, fallback] = pool.replicaInfo();
  assert.deepEqual([cpu.actual, cpu.precision, cpu.fallbackReason], ['cpu', 'fp32', undefined]);
  assert.deepEqual([fallback.device, fallback.actual, fallback.precision], ['cuda:0', 'cpu', 'fp32']);
  assert.match(fallback.fallbackReason ?? '', /^cuda:0 unavailable: \S/);
  assert.ok(!/\n/.test(fallback.fallbackReason ?? ''), 'the reason is one line');
  assert.ok(logs.some((l) => l.level === 'warn' && /replica 1 ready on cpu \(fp32; fallback from cuda:0: cuda:0 unavailable: /.test(l.message)), JSON.stringify(logs));
  const [a, b] = await Promise.all([pool.run(0, rows, LOGITS), pool.run(1, rows, LOGITS)]);
  assert.deepEqual(b[0].logits, a[0].logits, 'the fallback runs the very graph a cpu replica runs');
});

test('allowCpuFallback false: a GPU that would fall back fails the whole start, even while another replica starts', async () => {
  const logs: LogLine[] = [];
  const start = ReplicaPool.start({
    replicas: [{ device: 'cpu', intraOpNumThreads: 1 }, { device: 'cuda:0', intraOpNumThreads: 1 }],
    models: prepared.graphsFor,
    allowCpuFallback: false,
    padTokenId: 1,
    log: (level, message) => logs.push({ level, message }),
  });
  await assert.rejects(start, (err: unknown) => {
    assert.ok(err instanceof ReplicaError);
    assert.equal(err.reason, 'device-unavailable');
    assert.match(err.message, /^replica 1 \(cuda:0\): cuda:0 unavailable: \S.*; falling back to cpu is not allowed$/);
    assert.ok(!/\n/.test(err.message), 'one line');
    return true;
  });
});

test('when no replica starts, start rejects naming every replica', async () => {
  const logs: LogLine[] = [];
  const failing = ReplicaPool.start({
    replicas: [{ device: 'cpu' }, { device: 'cpu' }],
    models: { default: join(cacheDir, 'missing', 'model.onnx') },
    padTokenId: 1,
    log: (level, message) => logs.push({ level, message }),
  });
  await assert.rejects(failing, (err: unknown) => {
    assert.ok(err instanceof ReplicaError);
    assert.equal(err.reason, 'init-failed');
    assert.match(err.message, /no replica could start: 0 \(cpu\): .*; 1 \(cpu\): /);
    return true;
  });
  assert.equal(logs.filter((l) => l.level === 'error').length, 2);
});

test('a crash is forwarded as replica-down, the restart as replica-up, with the replica index', async () => {
  const { pool } = await startPool(
    [{ device: 'cpu', intraOpNumThreads: 1 }, { device: 'cpu', intraOpNumThreads: 1 }],
    { faultInjection: { 1: 'crash-on-run' } },
  );
  const down = once(pool, 'replica-down');
  const up = once(pool, 'replica-up');
  await assert.rejects(pool.run(1, rows, LOGITS), (err: unknown) => err instanceof ReplicaError && err.reason === 'crashed');
  const [downIndex, reason] = await down;
  assert.deepEqual([downIndex, reason], [1, 'crashed']);
  assert.equal(pool.isUp(1), true, 'a restarting replica still counts as up: queued work waits for it');
  assert.equal(pool.unavailableReason(), undefined);
  const [upIndex, info] = await up;
  assert.equal(upIndex, 1);
  assert.equal(info.restarts, 1);
  assert.ok(pool.ready);
  assert.equal((await pool.run(1, rows, LOGITS)).length, 2);
  assert.equal(pool.replicaInfo()[0].restarts, 0);
});

test('when every replica has failed for good, unavailableReason says so with each one\'s last error', async () => {
  const { pool } = await startPool(
    [{ device: 'cpu', intraOpNumThreads: 1 }, { device: 'tpu:0' }],
    { faultInjection: { 0: 'crash-on-run' }, restart: { maxAttempts: 0 } },
  );
  const failed = once(pool, 'replica-down');
  await assert.rejects(pool.run(0, rows, LOGITS), (err: unknown) => err instanceof ReplicaError && err.reason === 'crashed');
  assert.deepEqual((await failed).slice(0, 2), [0, 'crashed']);
  assert.equal(pool.replicaInfo()[0].state, 'failed');
  assert.match(pool.unavailableReason() ?? '', /^every replica has failed \(0 \(cpu\): replica 0 \(cpu\) gave up after 1 failures in a row; the last: replica 0 \(cpu\) \(pid \d+\) .*; 1 \(tpu:0\): .*tpu:0/);
});

test('close() lets accepted work finish, then refuses more', async () => {
  const { pool } = await startPool([{ device: 'cpu', intraOpNumThreads: 1 }]);
  const running = pool.run(0, rows, LOGITS);
  const closed = pool.close();
  assert.equal(pool.ready, false, 'a closing pool is not ready');
  assert.equal((await running).length, 2);
  await closed;
  assert.equal(pool.replicaInfo()[0].state, 'closed');
  await assert.rejects(pool.run(0, rows, LOGITS), (err: unknown) => err instanceof ReplicaError && err.reason === 'closed');
});
