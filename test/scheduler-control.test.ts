// Pins, backpressure, cancellation, timeouts, failures and drain: what the scheduler guarantees
// one request whatever the others do.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CancelledError, OverloadedError, SchedulerTimeoutError } from '../src/scheduler/errors.js';
import { Scheduler, type SchedulerOptions } from '../src/scheduler/scheduler.js';
import { ThroughputMeter } from '../src/scheduler/throughput.js';
import type { BatchReport, ItemOutcome, Want, WorkItem } from '../src/scheduler/types.js';
import { FakeExecutor, tokensFor } from './helpers/fake-executor.js';

const defaults: SchedulerOptions = { maxBatchTokens: 4096, maxBatchSize: 64, maxWaitMs: 0, batching: true, maxQueuedTokens: 1e6 };
const WANT: Want = { mean: [6] };
const item = (id: number, length: number, replica?: number): WorkItem => ({ tokens: tokensFor(id, length), want: WANT, replica });
const T = { timeout: 5000 };
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Holds replica 0 busy with one batch; returns its outcome promise (wrapped, so awaiting this doesn't wait for it). */
async function occupy(fake: FakeExecutor, scheduler: Scheduler, replica = 0): Promise<{ blocker: Promise<ItemOutcome[]> }> {
  fake.hold = true;
  const started = fake.batches.length;
  const blocker = scheduler.submit([item(900 + replica, 2, replica)]);
  await fake.batchesStarted(started + 1);
  return { blocker };
}

test('pinned items run only on their replica, even while another is idle', T, async () => {
  const fake = new FakeExecutor(2);
  const scheduler = new Scheduler(fake, defaults);
  const { blocker } = await occupy(fake, scheduler, 1);
  const pinned = scheduler.submit([item(1, 10, 1), item(2, 10, 1)]);
  const free = scheduler.submit([item(3, 10)]);
  await tick();
  assert.deepEqual(fake.batches.map((b) => [b.replica, b.ids]), [
    [1, [901]],
    [0, [3]],
  ], 'the pinned items wait for busy replica 1; the free one runs on idle replica 0');
  fake.releaseAll();
  const outcomes = await pinned;
  await Promise.all([blocker, free]);
  assert.deepEqual(outcomes.map((o) => o.replica), [1, 1]);
  assert.equal(fake.overlaps, 0);
});

test('items pinned to a down replica run elsewhere', T, async () => {
  const fake = new FakeExecutor(3);
  fake.up[2] = false;
  const scheduler = new Scheduler(fake, defaults);
  const outcomes = await scheduler.submit([item(1, 10, 2), item(2, 10, 0)]);
  assert.ok(outcomes.every((o) => o.replica !== 2));
  assert.equal(outcomes[1].replica, 0);
  assert.ok(fake.batches.every((b) => b.replica !== 2), 'a down replica is never given work');
});

test('work waiting while no replica is up runs once one comes up', T, async () => {
  const fake = new FakeExecutor(1);
  fake.up[0] = false;
  const scheduler = new Scheduler(fake, defaults);
  const pending = scheduler.submit([item(1, 10)]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(fake.batches.length, 0);
  fake.up[0] = true;
  // The scheduler polls with an unref'd timer (the replica processes keep a real server alive).
  const keepAlive = setTimeout(() => {}, 1000);
  const [outcome] = await pending;
  clearTimeout(keepAlive);
  assert.equal(outcome.replica, 0);
});

test('overload: OverloadedError with retryAfterSeconds ≥ 1, and nothing of the request queued', T, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, { ...defaults, maxQueuedTokens: 100 });
  // Running tokens do not count: this 90-token batch occupies the replica, the queue is empty.
  fake.hold = true;
  const running = scheduler.submit([item(1, 90)]);
  await fake.batchesStarted(1);
  const queued = scheduler.submit([item(2, 40), item(3, 40)]);
  const before = scheduler.stats();
  assert.equal(before.queuedTokens, 80);

  await assert.rejects(scheduler.submit([item(4, 15), item(5, 15)]), (error: unknown) => {
    assert.ok(error instanceof OverloadedError);
    assert.ok(Number.isInteger(error.retryAfterSeconds) && error.retryAfterSeconds >= 1, `retryAfter ${error.retryAfterSeconds}`);
    return true;
  });
  assert.deepEqual(scheduler.stats(), before, 'the refused request left no trace');
  const fits = scheduler.submit([item(6, 20)]); // exactly at the limit: accepted
  fake.releaseAll();
  await Promise.all([running, queued, fits]);
  assert.ok(!fake.batches.some((b) => b.ids.includes(4) || b.ids.includes(5)));

  // On an empty queue a request over the limit on its own is accepted, or it could never run.
  const huge = await scheduler.submit([item(7, 150)]);
  assert.equal(huge.length, 1);
});

test('retryAfterSeconds comes from recent busy-time throughput and the replicas up', () => {
  const meter = new ThroughputMeter();
  assert.equal(meter.secondsToProcess(1e9, 1), 1, 'no history: 1 s');
  meter.record(1000, 500);
  meter.record(1000, 1500); // 2000 tokens in 2 busy seconds: 1000 tokens/s per replica
  assert.equal(meter.secondsToProcess(5000, 1), 5);
  assert.equal(meter.secondsToProcess(5000, 2), 3);
  assert.equal(meter.secondsToProcess(10, 1), 1, 'at least 1');
  assert.equal(meter.secondsToProcess(1e9, 1), 300, 'capped');
});

test('abort removes queued work (the executor never sees it) and nobody else notices', T, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, defaults);
  const { blocker } = await occupy(fake, scheduler);
  const controller = new AbortController();
  const cancelled = scheduler.submit([item(1, 10), item(2, 30)], { signal: controller.signal });
  const other = scheduler.submit([item(3, 20)]);
  await tick();
  assert.equal(scheduler.stats().queuedTokens, 60);
  controller.abort();
  await assert.rejects(cancelled, CancelledError);
  assert.deepEqual(scheduler.stats(), { queuedSequences: 1, queuedTokens: 20, runningBatches: 1, busyReplicas: 1 });
  fake.releaseAll();
  const [outcome] = await other;
  await blocker;
  assert.deepEqual([...outcome.result.mean![6]], [20, 6, 3]);
  assert.ok(!fake.batches.some((b) => b.ids.includes(1) || b.ids.includes(2)), 'cancelled work never ran');

  // Already aborted: refused before anything is queued.
  await assert.rejects(scheduler.submit([item(4, 10)], { signal: AbortSignal.abort() }), CancelledError);
  assert.equal(scheduler.stats().queuedSequences, 0);
});

test('abort while running: the batch finishes, only the aborted request drops its results', T, async () => {
  const fake = new FakeExecutor(1);
  fake.hold = true;
  const scheduler = new Scheduler(fake, defaults);
  const controller = new AbortController();
  const cancelled = scheduler.submit([item(1, 10)], { signal: controller.signal });
  const other = scheduler.submit([item(2, 10)]);
  await fake.batchesStarted(1);
  assert.deepEqual(fake.batches[0].ids, [1, 2], 'batched together');
  controller.abort();
  await assert.rejects(cancelled, CancelledError);
  fake.releaseAll();
  const [outcome] = await other;
  assert.equal(outcome.batchSize, 2);
});

test('timeoutMs: SchedulerTimeoutError, its queued work dropped, others unaffected', T, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, defaults);
  const { blocker } = await occupy(fake, scheduler);
  const start = performance.now();
  const timed = scheduler.submit([item(1, 10)], { timeoutMs: 20 });
  const patient = scheduler.submit([item(2, 10)]);
  await assert.rejects(timed, SchedulerTimeoutError);
  assert.ok(performance.now() - start >= 19);
  assert.equal(scheduler.stats().queuedSequences, 1);
  fake.releaseAll();
  await Promise.all([blocker, patient]);
  assert.ok(!fake.batches.some((b) => b.ids.includes(1)));
});

test('a failing batch rejects only its requests with the executor error; the next request succeeds', T, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, defaults);
  const reports: BatchReport[] = [];
  scheduler.on('batch', (report: BatchReport) => reports.push(report));
  const { blocker } = await occupy(fake, scheduler);
  const boom = new Error('replica crashed');
  fake.failNext = boom; // the next batch run fails; the blocker, already running, succeeds
  const doomed = scheduler.submit([item(1, 10), item(2, 10)]);
  fake.releaseAll();
  await assert.rejects(doomed, (error) => error === boom);
  await blocker;

  const [outcome] = await scheduler.submit([item(3, 10)]);
  assert.deepEqual([...outcome.result.mean![6]], [10, 6, 3]);
  assert.deepEqual(reports.map((r) => r.ok), [true, false, true]);
  assert.deepEqual(reports[1], { ...reports[1], replica: 0, sequences: 2, tokens: 20, paddedTokens: 20 });
});

test('a failing batch leaves a request in another batch untouched (contacts lane apart)', T, async () => {
  const fake = new FakeExecutor(1);
  fake.hold = true;
  const scheduler = new Scheduler(fake, defaults);
  const plain = scheduler.submit([item(1, 10)]);
  const contacts = scheduler.submit([{ tokens: tokensFor(2, 10), want: { contacts: true } }]);
  await fake.batchesStarted(1);
  fake.batches[0].fail(new Error('bad batch'));
  await assert.rejects(plain, /bad batch/);
  await fake.batchesStarted(2);
  fake.releaseAll();
  const [outcome] = await contacts;
  assert.deepEqual([...outcome.result.contacts!], [2]);
});

test('an invalid submit is refused alone and leaves the queue as it was', T, async () => {
  const fake = new FakeExecutor(2);
  const scheduler = new Scheduler(fake, { ...defaults, maxWaitMs: 20, waitWhenIdle: true });
  const good = scheduler.submit([item(1, 10)]);
  const before = scheduler.stats();
  await assert.rejects(scheduler.submit([item(2, 10), { tokens: Int32Array.of(0), want: WANT }]), RangeError);
  await assert.rejects(scheduler.submit([item(3, 10, 5)]), /replica 5/);
  await assert.rejects(scheduler.submit([{ tokens: [0, 2] as unknown as Int32Array, want: WANT }]), TypeError);
  await assert.rejects(scheduler.submit([{ tokens: tokensFor(4, 5), want: { mean: [-1] } }]), TypeError);
  await assert.rejects(scheduler.submit([item(5, 10)], { timeoutMs: 0 }), RangeError);
  assert.deepEqual(scheduler.stats(), before);
  assert.equal((await good).length, 1);
  assert.deepEqual(await scheduler.submit([]), []);
});

test('drain resolves once nothing is queued or running; stats count busy replicas', T, async () => {
  const fake = new FakeExecutor(2);
  fake.hold = true;
  const scheduler = new Scheduler(fake, { ...defaults, maxBatchSize: 2 });
  await scheduler.drain(); // idle: at once
  const settled: number[] = [];
  const requests = [1, 2, 3, 4, 5].map((id) => scheduler.submit([item(id, 10)]).then(() => settled.push(id)));
  await fake.batchesStarted(2);
  assert.deepEqual(scheduler.stats(), { queuedSequences: 1, queuedTokens: 10, runningBatches: 2, busyReplicas: 2 });
  let drained = false;
  const draining = scheduler.drain().then(() => (drained = true));
  await tick();
  assert.equal(drained, false);
  fake.releaseAll();
  await draining;
  assert.equal(settled.length, 5, 'every request finished before drain resolved');
  assert.deepEqual(scheduler.stats(), { queuedSequences: 0, queuedTokens: 0, runningBatches: 0, busyReplicas: 0 });
  await Promise.all(requests);
});

test('bad options are refused', () => {
  const fake = new FakeExecutor(1);
  assert.throws(() => new Scheduler(fake, { ...defaults, maxBatchTokens: 0 }), RangeError);
  assert.throws(() => new Scheduler(fake, { ...defaults, maxBatchSize: 1.5 }), RangeError);
  assert.throws(() => new Scheduler(fake, { ...defaults, maxWaitMs: -1 }), RangeError);
  assert.throws(() => new Scheduler(fake, { ...defaults, maxQueuedTokens: 0 }), RangeError);
  assert.throws(() => new Scheduler(new FakeExecutor(0), defaults), RangeError);
});
