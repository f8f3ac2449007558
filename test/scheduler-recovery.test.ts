// What the scheduler does when a batch fails: replica faults are retried elsewhere, ORT errors
// are retried in halves until the offending sequence is alone, anything else fails only its requests;
// when no replica will serve again, what waits is ended at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplicaError } from '../src/engine/errors.js';
import { ExecutorFault } from '../src/contract/index.js';
import { UnavailableError } from '../src/scheduler/errors.js';
import { Scheduler, type SchedulerOptions } from '../src/scheduler/scheduler.js';
import type { WorkItem } from '../src/scheduler/types.js';
import { FakeExecutor, tokensFor } from './helpers/fake-executor.js';

const options: SchedulerOptions = { maxBatchTokens: 10_000, maxBatchSize: 64, maxWaitMs: 0, batching: true, maxQueuedTokens: 1e9 };
const item = (id: number, replica?: number): WorkItem => ({ tokens: tokensFor(id, 10), want: { mean: [1] }, ...(replica === undefined ? {} : { replica }) });

test('a batch lost to a crashed replica is retried on another and every caller gets its answer', async () => {
  const fake = new FakeExecutor(2);
  fake.hold = true;
  const scheduler = new Scheduler(fake, options);
  const pending = scheduler.submit([item(1, 0), item(2, 0), item(3, 0)]);
  await fake.batchesStarted(1);
  assert.equal(fake.batches[0].replica, 0);
  fake.up[0] = false; // the pool reports it down while it restarts
  fake.hold = false;
  fake.batches[0].fail(new ReplicaError('crashed', 'replica 0 died (SIGKILL)'));
  const outcomes = await pending;
  assert.deepEqual(outcomes.map((o) => o.replica), [1, 1, 1]);
  assert.deepEqual(outcomes.map((o) => o.result.mean![1][2]), [1, 2, 3], 'each gets its own result');
  assert.equal(scheduler.retriedItems, 3);
});

test('while the crashed replica restarts, its lost batch and the work pinned to it run on the replica that serves', async () => {
  const fake = new FakeExecutor(2);
  fake.hold = true;
  const retries: unknown[] = [];
  const scheduler = new Scheduler(fake, options);
  scheduler.on('retry', (report) => retries.push(report));
  const lost = scheduler.submit([item(1, 0), item(2, 0)]);
  await fake.batchesStarted(1);
  fake.restarting[0] = true; // still up (queued work may wait for it), but not ready
  fake.hold = false;
  fake.batches[0].fail(new ReplicaError('crashed', 'replica 0 was killed (SIGKILL)'));
  const pinned = scheduler.submit([item(3, 0)]);
  assert.deepEqual((await lost).map((o) => o.replica), [1, 1]);
  assert.deepEqual((await pinned).map((o) => o.replica), [1], 'a pin to a restarting replica lapses');
  assert.deepEqual(retries, [{ reason: 'crashed', sequences: 2 }]);
  assert.ok(fake.batches.slice(1).every((b) => b.replica === 1), 'nothing was sent to the restarting replica');

  fake.restarting[0] = false;
  scheduler.wake();
  assert.deepEqual((await scheduler.submit([item(4, 0)])).map((o) => o.replica), [0], 'back in rotation once ready');
});

test('a sequence that keeps killing replicas fails after two retries; others are unaffected', async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, { ...options, batching: false });
  let runs = 0;
  const realRun = fake.run.bind(fake);
  fake.run = (replica, tokens, want) => {
    if (tokens[0][0] === 66) {
      runs += 1;
      return Promise.reject(new ReplicaError('crashed', 'boom'));
    }
    return realRun(replica, tokens, want);
  };
  const poison = scheduler.submit([item(66)]);
  const healthy = scheduler.submit([item(5)]);
  await assert.rejects(poison, /boom/);
  assert.equal(runs, 3, 'first try + 2 retries');
  assert.equal((await healthy)[0].result.mean![1][2], 5);
});

test('an ORT error splits the batch in halves until only the offending request fails', async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, { ...options, maxWaitMs: 20 });
  const sizes: number[] = [];
  const realRun = fake.run.bind(fake);
  fake.run = (replica, tokens, want) => {
    sizes.push(tokens.length);
    if (tokens.some((row) => row[0] === 13)) return Promise.reject(new ReplicaError('run-failed', 'Failed to allocate memory'));
    return realRun(replica, tokens, want);
  };
  const requests = Array.from({ length: 8 }, (_, i) => scheduler.submit([item(10 + i)]));
  const settled = await Promise.allSettled(requests);
  settled.forEach((s, i) => {
    if (10 + i === 13) assert.equal(s.status, 'rejected');
    else assert.equal(s.status, 'fulfilled', `request ${10 + i}`);
  });
  assert.equal(sizes[0], 8);
  assert.ok(sizes.includes(1), `the offender ran alone at last: ${sizes.join(',')}`);
});

test('other errors fail only the requests in the batch, at once', async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, options);
  fake.failNext = new Error('unexpected');
  await assert.rejects(scheduler.submit([item(1)]), /unexpected/);
  assert.equal(fake.batches.length, 1);
  assert.equal((await scheduler.submit([item(2)]))[0].result.mean![1][2], 2);
});

test('abortAll ends every request with queued or running work with the error given; the running batch finishes unheard', async () => {
  const fake = new FakeExecutor(1);
  fake.hold = true;
  const scheduler = new Scheduler(fake, { ...options, maxBatchSize: 1 });
  const drops: unknown[] = [];
  scheduler.on('dropped', (report) => drops.push(report));
  const running = scheduler.submit([item(1)]);
  await fake.batchesStarted(1);
  const queued = scheduler.submit([item(2), item(3)]);
  const stop = new Error('shutting down');
  assert.equal(scheduler.abortAll(stop), 2);
  await assert.rejects(running, /shutting down/);
  await assert.rejects(queued, /shutting down/);
  assert.deepEqual(drops, [{ reason: 'shutdown', sequences: 2 }]);
  assert.equal(scheduler.stats().queuedSequences, 0);
  fake.releaseAll();
  await scheduler.drain();
  assert.equal(fake.batches.length, 1, 'the queued work never ran');
});

test('when no replica will serve again, work waiting (even for a restart) is ended with UnavailableError at once and new work refused', async () => {
  const fake = new FakeExecutor(1);
  fake.hold = true;
  const scheduler = new Scheduler(fake, { ...options, maxBatchSize: 1 });
  const drops: { reason: string; sequences: number }[] = [];
  scheduler.on('dropped', (report) => drops.push(report));
  const lost = scheduler.submit([item(1)]);
  await fake.batchesStarted(1);
  const queued = scheduler.submit([item(2), item(3)]);
  fake.restarting[0] = true; // crashed: restarting, so the lost batch waits for it with the rest
  fake.batches[0].fail(new ReplicaError('crashed', 'replica 0 was killed (SIGKILL)'));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(scheduler.stats().queuedSequences, 3, 'a restarting replica is waited for');
  assert.equal(drops.length, 0, 'nothing dropped');

  fake.up[0] = false;
  fake.unavailable = 'every replica has failed (0 (cpu): gave up)'; // its restarts ran out
  scheduler.wake();
  const unavailable = (err: unknown) => err instanceof UnavailableError && err.message === 'no replica can serve: every replica has failed (0 (cpu): gave up)';
  await assert.rejects(lost, unavailable);
  await assert.rejects(queued, unavailable);
  assert.deepEqual(drops.map((d) => d.reason), ['unavailable', 'unavailable']);
  assert.equal(drops.reduce((sum, d) => sum + d.sequences, 0), 3);
  assert.equal(scheduler.stats().queuedSequences, 0);
  await assert.rejects(scheduler.submit([item(4)]), unavailable, 'new work is refused at once');
  assert.equal(scheduler.stats().queuedSequences, 0, 'and nothing of it queued');
  assert.equal(fake.batches.length, 1, 'nothing ran after the crash');
});

test("the contract's fault kind decides, not an error's name: a replica fault from any executor is retried; a look-alike is not", async () => {
  const fake = new FakeExecutor(2);
  fake.hold = true;
  const scheduler = new Scheduler(fake, options);
  const pending = scheduler.submit([item(1, 0)]);
  await fake.batchesStarted(1);
  fake.hold = false;
  fake.batches[0].fail(new ExecutorFault('replica', 'the executor lost its device'));
  assert.equal((await pending).length, 1);
  assert.equal(scheduler.retriedItems, 1);

  fake.hold = true;
  const lookAlike = Object.assign(new Error('replica 0 died'), { name: 'ReplicaError', reason: 'crashed' });
  const failing = scheduler.submit([item(2, 0)]);
  await fake.batchesStarted(3);
  fake.hold = false;
  fake.batches[2].fail(lookAlike);
  await assert.rejects(failing, (err) => err === lookAlike);
  assert.equal(scheduler.retriedItems, 1, 'not retried');
});
