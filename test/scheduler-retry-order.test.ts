// Where a failed batch's sequences go back in the queue: at their original place by arrival (so
// before work that arrived after them), and without a second wait for company — a replica fault
// or an ORT error is no reason to run them later than they would have run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplicaError } from '../src/engine/errors.js';
import { Scheduler, type SchedulerOptions } from '../src/scheduler/scheduler.js';
import type { WorkItem } from '../src/scheduler/types.js';
import { simulatedClock } from './helpers/clock.js';
import { FakeExecutor, tokensFor } from './helpers/fake-executor.js';

const options: SchedulerOptions = { maxBatchTokens: 10_000, maxBatchSize: 1, maxWaitMs: 0, batching: true, maxQueuedTokens: 1e9 };
const item = (id: number): WorkItem => ({ tokens: tokensFor(id, 10), want: { mean: [1] } });
const A = 1;
const B = 2;
const C = 3;

for (const reason of ['crashed', 'timeout'] as const) {
  test(`a batch lost to a replica fault (${reason}) runs again before work that arrived after it`, async () => {
    const fake = new FakeExecutor(1);
    fake.hold = true;
    const scheduler = new Scheduler(fake, options);
    const a = scheduler.submit([item(A)]);
    await fake.batchesStarted(1);
    assert.deepEqual(fake.batches[0].ids, [A]);
    const later = [scheduler.submit([item(B)]), scheduler.submit([item(C)])];
    fake.restarting[0] = true; // the pool restarts the replica after the fault
    fake.batches[0].fail(new ReplicaError(reason, `replica 0: ${reason}`));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(fake.batches.length, 1, 'nothing runs while the only replica restarts');
    fake.restarting[0] = false;
    scheduler.wake();
    for (let n = 2; n <= 4; n++) {
      await fake.batchesStarted(n);
      fake.batches[n - 1].finish();
    }
    assert.deepEqual(fake.batches.map((b) => b.ids), [[A], [A], [B], [C]], 'A\'s retry first, then B and C in arrival order');
    assert.deepEqual((await a).map((o) => o.result.mean![1][2]), [A]);
    assert.deepEqual((await Promise.all(later)).map((outcomes) => outcomes[0].result.mean![1][2]), [B, C]);
  });
}

test('a retried batch is dispatched as soon as a replica is ready, without a new wait for company', async (t) => {
  const clock = simulatedClock(t);
  const fake = new FakeExecutor(2);
  fake.hold = true;
  const scheduler = new Scheduler(fake, { ...options, maxBatchSize: 2, maxWaitMs: 50 });
  const a = scheduler.submit([item(A)]); // t = 0, nothing runs: dispatched at once to replica 0
  await clock.settle();
  assert.deepEqual([fake.batches[0].replica, fake.batches[0].ids], [0, [A]]);
  await clock.advance(1);
  const busy = scheduler.submit([item(7), item(8)]); // a full batch: replica 1 is busy from t = 1
  await clock.settle();
  assert.deepEqual([fake.batches[1].replica, fake.batches[1].ids], [1, [7, 8]]);
  await clock.advance(4);
  fake.restarting[0] = true;
  fake.batches[0].fail(new ReplicaError('crashed', 'replica 0 was killed (SIGKILL)')); // t = 5
  await clock.advance(5);
  assert.equal(fake.batches.length, 2, 'replica 0 restarts, replica 1 is busy');
  fake.restarting[0] = false; // t = 10: replica 0 is back while a batch still runs on replica 1
  scheduler.wake();
  await clock.settle();
  assert.equal(fake.batches.length, 3, 'A ran again at once, not at its first wait\'s end (t = 50)');
  assert.deepEqual([fake.batches[2].replica, fake.batches[2].ids, fake.batches[2].startedAt], [0, [A], 10]);
  fake.releaseAll();
  assert.deepEqual((await a).map((o) => o.result.mean![1][2]), [A]);
  await busy;
});

test('after an ORT error the halves run in arrival order, before work that arrived meanwhile', async () => {
  const fake = new FakeExecutor(1);
  fake.hold = true;
  const scheduler = new Scheduler(fake, { ...options, maxBatchSize: 4 });
  const first = [11, 12, 13, 14].map((id) => scheduler.submit([item(id)]));
  await fake.batchesStarted(1);
  assert.deepEqual(fake.batches[0].ids, [11, 12, 13, 14]);
  const later = scheduler.submit([item(B)]);
  fake.batches[0].fail(new ReplicaError('run-failed', 'Failed to allocate memory'));
  for (let n = 2; n <= 4; n++) {
    await fake.batchesStarted(n);
    fake.batches[n - 1].finish();
  }
  assert.deepEqual(fake.batches.map((b) => b.ids), [[11, 12, 13, 14], [11, 12], [13, 14], [B]]);
  await Promise.all([...first, later]);
});
