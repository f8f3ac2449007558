// Priority classes (client tiers): the smallest class waiting anchors the next batch; work of a
// larger class waiting past priorityMaxWaitMs goes first (no starvation, every other batch at
// most); fair queuing by flow holds within a class.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Scheduler, type SchedulerOptions } from '../src/scheduler/scheduler.js';
import type { ItemOutcome, Want, WorkItem } from '../src/scheduler/types.js';
import { FakeExecutor, tokensFor } from './helpers/fake-executor.js';

const WANT: Want = { mean: [6] };
// One sequence a batch, no waiting: each dispatch is one decision of the scheduler's.
const options: SchedulerOptions = { maxBatchTokens: 4096, maxBatchSize: 1, maxWaitMs: 0, batching: true, maxQueuedTokens: 1e6 };
const item = (id: number, length = 10): WorkItem => ({ tokens: tokensFor(id, length), want: WANT });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Replica 0 held busy so that later submits queue up (wrapped: an async function returning a promise would wait for it). */
async function occupy(fake: FakeExecutor, scheduler: Scheduler): Promise<{ blocker: Promise<ItemOutcome[]> }> {
  fake.hold = true;
  const blocker = scheduler.submit([item(999)]);
  await fake.batchesStarted(1);
  return { blocker };
}

/** Finishes the held batches one at a time, in order, until `count` have run after the blocker; the ids in run order. */
async function runInOrder(fake: FakeExecutor, count: number): Promise<number[]> {
  for (let k = 0; k < count; k++) {
    fake.batches[k].finish();
    await fake.batchesStarted(k + 2);
  }
  fake.releaseAll();
  return fake.batches.slice(1, count + 1).flatMap((b) => b.ids);
}

test('the smaller class goes first, whatever arrived first; arrival order within a class', { timeout: 5000 }, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, options);
  const { blocker } = await occupy(fake, scheduler);
  const low = [1, 2, 3].map((id) => scheduler.submit([item(id)], { priority: 2 }));
  const high = [11, 12].map((id) => scheduler.submit([item(id)], { priority: 1 }));
  await sleep(5);
  const order = await runInOrder(fake, 5);
  assert.deepEqual(order, [11, 12, 1, 2, 3]);
  await Promise.all([blocker, ...low, ...high]);
  assert.equal(fake.overlaps, 0);
});

test('no starvation: work of a larger class waiting past priorityMaxWaitMs anchors every other batch', { timeout: 5000 }, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, { ...options, priorityMaxWaitMs: 20 });
  const { blocker } = await occupy(fake, scheduler);
  const low = [1, 2].map((id) => scheduler.submit([item(id)], { priority: 2 }));
  await sleep(40); // the low class is overdue now
  const high = [11, 12, 13, 14].map((id) => scheduler.submit([item(id)], { priority: 1 }));
  await sleep(5);
  const order = await runInOrder(fake, 6);
  // Overdue 1 first; then the high class (no two promoted dispatches in a row); then overdue 2; then the rest.
  assert.deepEqual(order, [1, 11, 2, 12, 13, 14]);
  const outcomes = await Promise.all(low);
  assert.ok(outcomes.every(([o]) => o.queueMs >= 20));
  await Promise.all([blocker, ...high]);
});

test('without a bound, or before it passes, the larger class waits for the smaller', { timeout: 5000 }, async () => {
  for (const priorityMaxWaitMs of [undefined, 10_000]) {
    const fake = new FakeExecutor(1);
    const scheduler = new Scheduler(fake, { ...options, ...(priorityMaxWaitMs === undefined ? {} : { priorityMaxWaitMs }) });
    const { blocker } = await occupy(fake, scheduler);
    const low = [1, 2].map((id) => scheduler.submit([item(id)], { priority: 5 }));
    await sleep(30);
    const high = [11, 12, 13].map((id) => scheduler.submit([item(id)], { priority: 0 }));
    await sleep(5);
    assert.deepEqual(await runInOrder(fake, 5), [11, 12, 13, 1, 2], `priorityMaxWaitMs ${priorityMaxWaitMs}`);
    await Promise.all([blocker, ...low, ...high]);
  }
});

test('fair queuing by flow within a class: a small request is not queued behind a large one of its class', { timeout: 5000 }, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, { ...options, priorityMaxWaitMs: 10_000 });
  const { blocker } = await occupy(fake, scheduler);
  const large = {};
  const small = {};
  const parts = [1, 2, 3, 4].map((id) => scheduler.submit([item(id)], { priority: 1, flow: large }));
  const lows = [21, 22].map((id) => scheduler.submit([item(id)], { priority: 2 }));
  const quick = [11, 12].map((id) => scheduler.submit([item(id)], { priority: 1, flow: small }));
  await sleep(5);
  const order = await runInOrder(fake, 8);
  // Round robin over the two flows of class 1, then class 2.
  assert.deepEqual(order, [1, 11, 2, 12, 3, 4, 21, 22]);
  await Promise.all([blocker, ...parts, ...lows, ...quick]);
});

test('company: a batch takes the smaller class first, and all of one class keeps its old behaviour', { timeout: 5000 }, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, { ...options, maxBatchSize: 3 });
  const { blocker } = await occupy(fake, scheduler);
  const pending = [
    scheduler.submit([item(1, 10)], { priority: 2 }),
    scheduler.submit([item(2, 10)], { priority: 2 }),
    scheduler.submit([item(11, 30)], { priority: 1 }),
    scheduler.submit([item(12, 40)], { priority: 1 }),
  ];
  await sleep(5);
  const order = await runInOrder(fake, 2);
  assert.deepEqual(fake.batches[1].ids, [11, 12, 1], 'class 1 anchors and joins first, then the closest of class 2');
  assert.deepEqual(order, [11, 12, 1, 2]);
  await Promise.all([blocker, ...pending]);
});

test('a priority outside 0 … 1000 or not whole is refused', async () => {
  const scheduler = new Scheduler(new FakeExecutor(1), options);
  for (const priority of [-1, 1.5, 1001, Number.NaN]) await assert.rejects(scheduler.submit([item(1)], { priority }), RangeError);
  assert.throws(() => new Scheduler(new FakeExecutor(1), { ...options, priorityMaxWaitMs: -1 }), RangeError);
});
