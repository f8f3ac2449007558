// Replicas on the real tiny checkpoint through real ONNX Runtime in real child processes:
// batching, golden numerics of the sliced outputs, crash/hang isolation and restart, CPU fallback.
import assert from 'node:assert/strict';
import { processGone } from './helpers/hold.js';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { compileCheckpoint, type CompiledModel } from '../src/compile/index.js';
import type { SequenceResult, Want } from '../src/engine/batch.js';
import { ReplicaError, type ReplicaErrorReason } from '../src/engine/errors.js';
import { Replica, type CrashEvent, type ReplicaOptions } from '../src/engine/replica.js';
import { DEFAULT_TRANSFER_DIR, resultBytes } from '../src/engine/transfer.js';
import { loadCheckpoint, type Esm2Checkpoint } from '../src/model/checkpoint.js';
import { goldenCases, fixtureModelDir, goldenTensor, relativeError, type GoldenCase } from './helpers/golden.js';

const TOLERANCE = 1e-5;

let checkpoint: Esm2Checkpoint;
let cacheDir: string;
let plain: CompiledModel;
let withContacts: CompiledModel;
let cases: GoldenCase[];
let rows: Int32Array[];
const started: Replica[] = [];

before(async () => {
  checkpoint = await loadCheckpoint(fixtureModelDir);
  cacheDir = await mkdtemp(join(tmpdir(), 'esm2-engine-'));
  plain = await compileCheckpoint(checkpoint, { variant: 'default', precision: 'fp32', cacheDir });
  withContacts = await compileCheckpoint(checkpoint, { variant: 'contacts', precision: 'fp32', cacheDir });
  cases = await goldenCases();
  rows = cases.map((c) => checkpoint.tokenizer.encode(c.sequence));
});

after(async () => {
  await Promise.allSettled(started.map((r) => r.close()));
  await checkpoint.close();
  await rm(cacheDir, { recursive: true, force: true });
});

async function startReplica(options: Partial<ReplicaOptions> = {}): Promise<Replica> {
  const replica = await Replica.start({
    device: 'cpu',
    models: { default: plain.onnxPath, contacts: withContacts.onnxPath },
    padTokenId: plain.padTokenId,
    intraOpNumThreads: 1,
    restart: { baseDelayMs: 20 },
    ...options,
  });
  started.push(replica);
  return replica;
}

async function rejectsWith(promise: Promise<unknown>, reason: ReplicaErrorReason): Promise<ReplicaError> {
  const err = await promise.then(
    () => assert.fail(`expected a ReplicaError '${reason}'`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ReplicaError, String(err));
  assert.equal(err.reason, reason, err.message);
  return err;
}

function assertClose(actual: Float32Array | undefined, expected: Float32Array, what: string): void {
  assert.ok(actual, `${what} missing`);
  const error = relativeError(actual, expected);
  assert.ok(error <= TOLERANCE, `${what}: relative error ${error}`);
}

const ALL: Want = { logits: true, hidden: [1, 2], mean: [0, 2], bos: [2], contacts: true };

test('a batch gives each sequence what it gives alone, and matches fair-esm', async () => {
  const replica = await startReplica();
  const batch = await replica.run({ tokens: rows, want: ALL });
  assert.equal(batch.length, rows.length);
  for (const [i, c] of cases.entries()) {
    const [alone] = await replica.run({ tokens: [rows[i]], want: ALL });
    const inBatch: SequenceResult = batch[i];
    assertClose(inBatch.logits, alone.logits!, `${c.id} logits batch vs alone`);
    assertClose(inBatch.hidden![1], alone.hidden![1], `${c.id} hidden_1 batch vs alone`);
    assertClose(inBatch.mean![2], alone.mean![2], `${c.id} mean batch vs alone`);
    assertClose(inBatch.contacts, alone.contacts!, `${c.id} contacts batch vs alone`);
    // The slicing conventions (all token rows; mean over residues; L × L contacts) are fair-esm's.
    assertClose(inBatch.logits, await goldenTensor(c.id, 'logits'), `${c.id} logits`);
    assertClose(inBatch.hidden![1], await goldenTensor(c.id, 'repr_layer1'), `${c.id} repr_layer1`);
    assertClose(inBatch.hidden![2], await goldenTensor(c.id, 'last_hidden'), `${c.id} last_hidden`);
    assertClose(inBatch.mean![2], await goldenTensor(c.id, 'mean'), `${c.id} mean`);
    assertClose(inBatch.contacts, await goldenTensor(c.id, 'contacts'), `${c.id} contacts`);
    assert.deepEqual(inBatch.bos![2], inBatch.hidden![2].slice(0, plain.hiddenSize));
    assert.equal(inBatch.mean![0].length, plain.hiddenSize);
  }
  const info = replica.info();
  assert.equal(info.batchesRun, 1 + rows.length);
  assert.equal(info.numLayers, plain.numLayers);
  assert.equal(info.actual, 'cpu');
  assert.equal(info.fallbackReason, undefined);
});

test('only the wanted outputs come back; bad requests are refused before they run', async () => {
  const replica = await startReplica({ models: { default: plain.onnxPath } });
  const [result] = await replica.run({ tokens: [rows[0]], want: { mean: [1] } });
  assert.deepEqual(Object.keys(result), ['mean']);
  assert.deepEqual(Object.keys(result.mean!), ['1']);
  await rejectsWith(replica.run({ tokens: [rows[0]], want: { contacts: true } }), 'invalid-request');
  await rejectsWith(replica.run({ tokens: [rows[0]], want: { hidden: [plain.numLayers + 1] } }), 'invalid-request');
  await rejectsWith(replica.run({ tokens: [], want: { logits: true } }), 'invalid-request');
  assert.deepEqual(await replica.run({ tokens: [rows[0]], want: {} }), [{}]);
  assert.equal(replica.info().batchesRun, 1);
});

test('results sent through a /dev/shm file equal inline ones, and no file is left behind', { skip: !DEFAULT_TRANSFER_DIR }, async () => {
  const inline = await startReplica({ fileTransferMinBytes: Infinity });
  const byFile = await startReplica({ fileTransferMinBytes: 0 });
  const pid = byFile.info().pid!;
  const expected = await inline.run({ tokens: rows, want: ALL });
  const actual = await byFile.run({ tokens: rows, want: ALL });
  for (const [i, c] of cases.entries()) {
    assert.deepEqual(actual[i].logits, expected[i].logits, `${c.id} logits`);
    assert.deepEqual(actual[i].hidden, expected[i].hidden, `${c.id} hidden`);
    assert.deepEqual(actual[i].mean, expected[i].mean, `${c.id} mean`);
    assert.deepEqual(actual[i].bos, expected[i].bos, `${c.id} bos`);
    assert.deepEqual(actual[i].contacts, expected[i].contacts, `${c.id} contacts`);
  }
  // Both hand out views into one buffer per batch: the file holds the arrays back to back,
  // an IPC message frames them with headers.
  assert.equal(actual[0].logits!.byteOffset, 0);
  assert.equal(actual[0].logits!.buffer.byteLength, resultBytes(actual));
  assert.ok(expected[0].logits!.buffer.byteLength > resultBytes(expected));
  const leftovers = (await readdir(DEFAULT_TRANSFER_DIR!)).filter((f) => f.startsWith(`esm2-replica-${pid}-`));
  assert.deepEqual(leftovers, []);
});

test('the contacts session is created lazily, on the first contacts request', async () => {
  // A contacts model that cannot load costs nothing until contacts are asked for.
  const replica = await startReplica({ models: { default: plain.onnxPath, contacts: join(cacheDir, 'absent.onnx') } });
  await replica.run({ tokens: [rows[0]], want: { mean: [2] } });
  const err = await rejectsWith(replica.run({ tokens: [rows[0]], want: { contacts: true } }), 'run-failed');
  assert.match(err.message, /absent\.onnx/);
  await replica.run({ tokens: [rows[0]], want: { logits: true } });
});

test('an ORT error rejects only its batch; the same process keeps serving', async () => {
  const replica = await startReplica({ models: { default: plain.onnxPath } });
  const pid = replica.info().pid;
  const outOfVocab = Int32Array.of(plain.clsTokenId, 10_000, plain.eosTokenId);
  await rejectsWith(replica.run({ tokens: [outOfVocab], want: { logits: true } }), 'run-failed');
  const [result] = await replica.run({ tokens: [rows[0]], want: { logits: true } });
  assertClose(result.logits, await goldenTensor(cases[0].id, 'logits'), 'logits after a failed run');
  assert.equal(replica.info().pid, pid);
  assert.equal(replica.info().restarts, 0);
});

test('a crash rejects the batch in flight; the replica restarts and serves the next one', async () => {
  const replica = await startReplica({ faultInjection: 'crash-on-run' });
  const firstPid = replica.info().pid!;
  const crashed = once(replica, 'crashed') as Promise<[CrashEvent]>;
  const restarted = once(replica, 'restarted');
  const doomed = replica.run({ tokens: [rows[0]], want: { mean: [2] } });
  const queued = replica.run({ tokens: [rows[1]], want: { mean: [2] } }); // waits behind it, survives it
  const err = await rejectsWith(doomed, 'crashed');
  assert.match(err.message, /SIGABRT/);
  assert.equal((await crashed)[0].reason, 'crashed');
  const [result] = await queued;
  assertClose(result.mean![2], await goldenTensor(cases[1].id, 'mean'), 'mean after restart');
  await restarted;
  const info = replica.info();
  assert.equal(info.restarts, 1);
  assert.equal(info.state, 'ready');
  assert.notEqual(info.pid, firstPid);
  assert.ok(await processGone(firstPid));
});

test('a hung run is killed after runTimeoutMs and the replica restarts', async () => {
  const replica = await startReplica({ faultInjection: 'hang-on-run', runTimeoutMs: 2000 });
  const hungPid = replica.info().pid!;
  const t0 = Date.now();
  const err = await rejectsWith(replica.run({ tokens: [rows[0]], want: { logits: true } }), 'timeout');
  assert.match(err.message, /ran past 2000 ms and was killed/);
  assert.ok(Date.now() - t0 >= 1990, 'killed at runTimeoutMs, not before');
  const [result] = await replica.run({ tokens: [rows[0]], want: { logits: true } });
  assertClose(result.logits, await goldenTensor(cases[0].id, 'logits'), 'logits after restart');
  assert.equal(replica.info().restarts, 1);
  assert.ok(await processGone(hungPid));
});

test('a replica gives up after maxAttempts failures in a row', async () => {
  const replica = await startReplica({ faultInjection: 'hang-on-run', runTimeoutMs: 500, restart: { maxAttempts: 0 } });
  const failed = once(replica, 'failed');
  await rejectsWith(replica.run({ tokens: [rows[0]], want: { logits: true } }), 'timeout');
  const [err] = await failed;
  assert.match(err.message, /gave up after 1 failures in a row; the last: .* ran past 500 ms and was killed/, 'says why');
  assert.equal(replica.info().state, 'failed');
  await rejectsWith(replica.run({ tokens: [rows[0]], want: { logits: true } }), 'failed');
});

for (const device of ['cuda:0', 'webgpu']) {
  test(`${device} without a usable GPU falls back to cpu and says why`, async () => {
    const replica = await startReplica({ device, models: { default: plain.onnxPath } });
    const info = replica.info();
    assert.equal(info.requested, device);
    assert.equal(info.actual, 'cpu');
    assert.match(info.fallbackReason ?? '', new RegExp(`^${device} unavailable: .+`));
    const [result] = await replica.run({ tokens: [rows[0]], want: { mean: [2] } });
    assertClose(result.mean![2], await goldenTensor(cases[0].id, 'mean'), `mean on ${device} fallback`);
  });
}

test('start fails clearly on a missing model; a bad device spec fails before forking', async () => {
  const err = await rejectsWith(startReplica({ models: { default: join(cacheDir, 'missing.onnx') } }), 'init-failed');
  assert.match(err.message, /missing\.onnx/);
  await assert.rejects(startReplica({ device: 'gpu:0' }), /invalid device "gpu:0"/);
});

test('close() serves accepted work, then ends the child', async () => {
  const replica = await startReplica();
  const pid = replica.info().pid!;
  const pending = replica.run({ tokens: rows.slice(0, 2), want: { logits: true } });
  await replica.close();
  assert.equal((await pending).length, 2);
  assert.equal(replica.info().state, 'closed');
  assert.ok(await processGone(pid));
  await rejectsWith(replica.run({ tokens: [rows[0]], want: { logits: true } }), 'closed');
});
