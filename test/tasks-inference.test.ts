// The request-scoped inference (tasks/inference.ts) over a real Scheduler and a test executor:
// parts within the in-flight allowance, one deadline, everything ended by any failure, and the
// deadline checked against the measured rate. Time is simulated (test/helpers/clock.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Scheduler, type SchedulerOptions } from '../src/scheduler/scheduler.js';
import { CostLimitError } from '../src/tasks/errors.js';
import { startRequest, type ModelInference } from '../src/tasks/inference.js';
import { SchedulerTimeoutError } from '../src/scheduler/errors.js';
import { simulatedClock } from './helpers/clock.js';
import { FakeExecutor, tokensFor } from './helpers/fake-executor.js';

const options: SchedulerOptions = { maxBatchTokens: 100, maxBatchSize: 64, maxWaitMs: 0, batching: true, maxQueuedTokens: 1000 };
const dims = { numLayers: 2, numHeads: 4, hiddenSize: 32, intermediateSize: 128, vocabSize: 33 };

function setup(size = 1) {
  const fake = new FakeExecutor(size);
  fake.hold = true;
  const scheduler = new Scheduler(fake, options);
  const model: ModelInference = { scheduler, dims, windowSize: 1000, inFlightBatches: size + 1 };
  return { fake, scheduler, model };
}
const rows = (n: number, length: number, first = 0) => Array.from({ length: n }, (_, k) => ({ tokens: tokensFor(first + k, length) }));

test('a request sends its rows in parts, never more than its in-flight allowance at once, and gets them all in order', async () => {
  const { fake, scheduler, model } = setup();
  const request = startRequest(model);
  const done = request.rows(rows(20, 50), { logits: true });
  let maxWaiting = 0;
  for (let k = 0; fake.batches.length < 10; k++) {
    await fake.batchesStarted(k + 1);
    maxWaiting = Math.max(maxWaiting, scheduler.stats().queuedTokens);
    fake.batches[k].finish();
  }
  const out = await done;
  assert.deepEqual(out.map((o) => o.result.logits![0]), Array.from({ length: 20 }, (_, k) => k));
  // 2 batches of 100 tokens: one running, one waiting.
  assert.ok(maxWaiting <= 100, `queued ${maxWaiting}`);
  assert.ok(fake.batches.every((b) => b.ids.length === 2));
});

test('a failed part ends the whole request: its other calls reject, nothing more is sent, its queued parts are dropped', async () => {
  const { fake, scheduler, model } = setup();
  const request = startRequest(model);
  const a = request.rows(rows(10, 50), { logits: true });
  const b = request.rows(rows(10, 50, 100), { logits: true });
  await fake.batchesStarted(1);
  fake.batches[0].fail(new Error('boom'));
  await assert.rejects(a, /boom/);
  await assert.rejects(b, /boom/);
  assert.ok(request.ended);
  assert.equal(scheduler.stats().queuedSequences, 0);
  await new Promise((r) => setImmediate(r));
  assert.equal(fake.batches.length, 1, 'nothing ran after the failure');
  await assert.rejects(request.rows(rows(1, 5), { logits: true }), /boom/, 'an ended request takes no more work');
});

test('one deadline for the whole request, however many parts', async (t) => {
  const clock = simulatedClock(t);
  const { fake, model } = setup();
  const request = startRequest(model, { timeoutMs: 1000 });
  const done = request.rows(rows(10, 50), { logits: true });
  done.catch(() => undefined);
  for (let k = 0; k < 3; k++) {
    await fake.batchesStarted(k + 1);
    await clock.advance(300);
    fake.batches[k].finish();
  }
  await clock.advance(200); // 1,100 ms since the start: past the deadline, though no part took 1 s
  await assert.rejects(done, SchedulerTimeoutError);
  assert.equal(fake.batches.length, 4, 'the part running at the deadline was the last');
});

test('the deadline by the measured rate: refused before any work when the rate is known; after the first part on a fresh scheduler', async (t) => {
  const clock = simulatedClock(t);
  const { fake, model } = setup();
  // Fresh: no rate yet, so the request starts; its first part (100 tokens) takes 1 s: 100 tokens/s.
  const cold = startRequest(model, { timeoutMs: 5000, tokens: 1000 });
  const coldDone = cold.rows(rows(20, 50), { logits: true });
  coldDone.catch(() => undefined);
  await fake.batchesStarted(1);
  await clock.advance(1000);
  fake.batches[0].finish();
  await clock.settle();
  await assert.rejects(coldDone, (err: Error) => err instanceof CostLimitError && /the rest of this request needs 900 tokens/.test(err.message));
  assert.equal(fake.batches.length, 1, 'ended after its first part: its queued part never ran');

  // Warm: the rate is known, 10,000 tokens at ~100 tokens/s cannot run in 5 s: refused before any work.
  const before = fake.batches.length;
  const warm = startRequest(model, { timeoutMs: 5000, tokens: 10_000 });
  await assert.rejects(warm.rows(rows(5, 50), { logits: true }), (err: Error) => err instanceof CostLimitError && /this request needs 10,000 tokens/.test(err.message));
  await clock.settle();
  assert.equal(fake.batches.length, before);
  // One that fits runs.
  const fits = startRequest(model, { timeoutMs: 5000, tokens: 100 });
  const ok = fits.rows(rows(2, 50), { logits: true });
  await fake.batchesStarted(before + 1);
  fake.batches[before].finish();
  assert.equal((await ok).length, 2);
});
