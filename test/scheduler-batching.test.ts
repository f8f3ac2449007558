// How the scheduler forms batches: token budget, size cap, length bucketing, wants, lanes, waiting.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { selectBatch } from '../src/scheduler/batch-selection.js';
import { Scheduler, type SchedulerOptions } from '../src/scheduler/scheduler.js';
import type { ItemOutcome, Want, WorkItem } from '../src/scheduler/types.js';
import { simulatedClock } from './helpers/clock.js';
import { FakeExecutor, tokensFor } from './helpers/fake-executor.js';

const defaults: SchedulerOptions = { maxBatchTokens: 4096, maxBatchSize: 64, maxWaitMs: 30, batching: true, maxQueuedTokens: 1e6 };
const MEAN_LAST: Want = { mean: [6] };
const item = (id: number, length: number, want: Want = MEAN_LAST, replica?: number): WorkItem => ({ tokens: tokensFor(id, length), want, replica });

/** A held batch occupying replica 0 so later submits pile up in the queue (wrapped: an async
 *  function returning a promise would wait for it). */
async function occupy(fake: FakeExecutor, scheduler: Scheduler): Promise<{ blocker: Promise<ItemOutcome[]> }> {
  fake.hold = true;
  const blocker = scheduler.submit([item(999, 2)]);
  await fake.batchesStarted(1);
  return { blocker };
}

/** The outcome is this sequence's own result (mean[k] = [length, k, id]). */
function assertOwnResult(outcome: ItemOutcome, id: number, length: number, layer = 6): void {
  assert.deepEqual([...outcome.result.mean![layer]], [length, layer, id], `result of sequence ${id}`);
}

test('batches respect the padded-token budget and the size cap; every sequence gets its own result', { timeout: 5000 }, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, { ...defaults, maxBatchTokens: 300, maxBatchSize: 4, maxWaitMs: 0 });
  const { blocker } = await occupy(fake, scheduler);
  const lengths = [12, 150, 40, 41, 7, 290, 500, 60, 60, 61, 9, 33, 100, 101, 102, 3];
  const pending = lengths.map((length, id) => scheduler.submit([item(id, length)]));
  await Promise.resolve();
  fake.releaseAll();
  const outcomes = await Promise.all(pending);
  await blocker;

  const batches = fake.batches.slice(1);
  assert.deepEqual(batches.flatMap((b) => b.ids).sort((a, b) => a - b), lengths.map((_, id) => id));
  for (const batch of batches) {
    assert.ok(batch.ids.length <= 4, `batch of ${batch.ids.length}`);
    const padded = Math.max(...batch.lengths) * batch.lengths.length;
    assert.ok(padded <= 300 || batch.ids.length === 1, `batch ${batch.lengths} costs ${padded}`);
  }
  assert.ok(batches.some((b) => b.lengths.includes(500) && b.ids.length === 1), 'an over-budget sequence runs alone');
  outcomes.forEach(([outcome], id) => {
    assertOwnResult(outcome, id, lengths[id]);
    assert.equal(outcome.batchSize, batches.find((b) => b.ids.includes(id))!.ids.length);
  });
  assert.equal(fake.overlaps, 0);
});

test('length bucketing: the oldest item is joined by those closest to it in length', { timeout: 5000 }, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, { ...defaults, maxBatchTokens: 400, maxBatchSize: 3, maxWaitMs: 0 });
  const { blocker } = await occupy(fake, scheduler);
  const lengths = [10, 100, 11, 101, 12, 102];
  const pending = lengths.map((length, id) => scheduler.submit([item(id, length)]));
  await Promise.resolve();
  fake.releaseAll();
  await Promise.all([blocker, ...pending]);
  // Arrival order would give [10, 100, 11]; bucketing gives the short ones, then the long ones.
  assert.deepEqual(fake.batches.slice(1).map((b) => [...b.lengths].sort((x, y) => x - y)), [
    [10, 11, 12],
    [100, 101, 102],
  ]);
});

test('one batch serves mixed wants; each request gets only what it asked for', { timeout: 5000 }, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, defaults);
  const wants: Want[] = [{ mean: [1] }, { logits: true, hidden: [0] }, { bos: [2], mean: [0] }, {}];
  const outcomes = await Promise.all(wants.map((want, id) => scheduler.submit([item(id, 10 + id, want)])));
  assert.equal(fake.batches.length, 1, 'submitted together, batched together');
  assert.deepEqual(fake.batches[0].want, { logits: true, hidden: [0], mean: [0, 1], bos: [2] });

  const shape = (outcome: ItemOutcome) =>
    Object.fromEntries(
      Object.entries(outcome.result).map(([key, value]) => [key, value instanceof Float32Array ? 'tensor' : Object.keys(value).map(Number)]),
    );
  assert.deepEqual(shape(outcomes[0][0]), { mean: [1] });
  assert.deepEqual(shape(outcomes[1][0]), { logits: 'tensor', hidden: [0] });
  assert.deepEqual(shape(outcomes[2][0]), { mean: [0], bos: [2] });
  assert.deepEqual(shape(outcomes[3][0]), {});
  assert.deepEqual([...outcomes[1][0].result.logits!], [1]);
  assert.deepEqual([...outcomes[2][0].result.bos![2]], [12, 2, 2]);
  for (const [outcome] of outcomes) assert.equal(outcome.batchSize, 4);
});

test('contacts work is never batched with other work', { timeout: 5000 }, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, defaults);
  const requests = Array.from({ length: 8 }, (_, id) => scheduler.submit([item(id, 20, id % 2 ? { contacts: true } : { logits: true })]));
  const outcomes = await Promise.all(requests);
  assert.equal(fake.batches.length, 2);
  for (const batch of fake.batches) {
    const contacts = batch.ids.map((id) => id % 2 === 1);
    assert.ok(contacts.every((c) => c === contacts[0]), `mixed batch ${batch.ids}`);
    assert.equal(Boolean(batch.want.contacts), contacts[0]);
  }
  outcomes.forEach(([outcome], id) => assert.deepEqual(Object.keys(outcome.result), [id % 2 ? 'contacts' : 'logits']));
});

test('a lone sequence waits for company exactly maxWaitMs from its arrival; company arriving meanwhile joins it', { timeout: 5000 }, async (t) => {
  const clock = simulatedClock(t);
  const fake = new FakeExecutor(1);
  fake.hold = true;
  const scheduler = new Scheduler(fake, { ...defaults, maxWaitMs: 30, waitWhenIdle: true });
  const first = scheduler.submit([item(1, 10)]);
  await clock.advance(10);
  const second = scheduler.submit([item(2, 10)]);
  await clock.advance(19);
  assert.equal(fake.batches.length, 0, 'still waiting for company 29 ms after the first arrival');
  await clock.advance(1);
  assert.equal(fake.batches.length, 1, 'dispatched maxWaitMs after the oldest arrival, not after the newest');
  assert.deepEqual(fake.batches[0].ids, [1, 2]);
  assert.equal(fake.batches[0].startedAt, 30);
  fake.releaseAll();
  const [[a], [b]] = await Promise.all([first, second]);
  assert.deepEqual([a.queueMs, b.queueMs], [30, 20], 'each queued from its own arrival');
});

test('a full batch dispatches at once instead of waiting', { timeout: 5000 }, async (t) => {
  const clock = simulatedClock(t);
  const fake = new FakeExecutor(1);
  fake.hold = true;
  const scheduler = new Scheduler(fake, { ...defaults, maxWaitMs: 1000, waitWhenIdle: true, maxBatchSize: 4 });
  const full = scheduler.submit([1, 2, 3, 4].map((id) => item(id, 10)));
  await clock.settle();
  assert.deepEqual(fake.batches.map((b) => [b.ids, b.startedAt]), [[[1, 2, 3, 4], 0]], 'size cap reached: dispatched with no time passing');
  fake.releaseAll();
  await full;

  // Token budget reached (another item as long as these would not fit): no wait either.
  const byTokensFake = new FakeExecutor(1);
  byTokensFake.hold = true;
  const byTokens = new Scheduler(byTokensFake, { ...defaults, maxWaitMs: 1000, waitWhenIdle: true, maxBatchTokens: 100 });
  const pending = byTokens.submit([item(5, 50), item(6, 50)]);
  await clock.settle();
  assert.deepEqual(byTokensFake.batches.map((b) => [b.ids, b.startedAt]), [[[5, 6], 0]], 'budget reached: dispatched with no time passing');
  byTokensFake.releaseAll();
  const [outcome] = await pending;
  assert.equal(outcome.batchSize, 2);
});

/** Finishes every batch of `fake` still running; returns how many. */
function finishRunning(fake: FakeExecutor): number {
  const running = fake.batches.filter((b) => b.endedAt === undefined);
  for (const batch of running) batch.finish();
  return running.length;
}

test('batching off: no batch mixes requests, and nothing waits', { timeout: 5000 }, async (t) => {
  const clock = simulatedClock(t);
  const fake = new FakeExecutor(2);
  fake.hold = true;
  const scheduler = new Scheduler(fake, { ...defaults, batching: false, maxWaitMs: 1000, waitWhenIdle: true });
  const requests = Array.from({ length: 6 }, (_, r) => scheduler.submit([item(r * 10, 10), item(r * 10 + 1, 11)]));
  // Each time the replicas finish, the next batches start at once: time never has to move.
  for (let round = 0; round < 20; round++) {
    await clock.settle();
    if (finishRunning(fake) === 0) break;
  }
  const outcomes = await Promise.all(requests);
  assert.equal(clock.now(), 0);
  assert.ok(fake.batches.every((b) => b.startedAt === 0), 'no batch waited for company');
  for (const batch of fake.batches) {
    const owners = new Set(batch.ids.map((id) => Math.floor(id / 10)));
    assert.equal(owners.size, 1, `batch ${batch.ids} mixes requests`);
  }
  assert.ok(fake.batches.some((b) => b.ids.length === 2), "a request's own sequences still share a batch");
  assert.deepEqual(new Set(fake.batches.map((b) => b.replica)), new Set([0, 1]), 'both replicas used');
  outcomes.forEach((outcome, r) => assertOwnResult(outcome[1], r * 10 + 1, 11));
  assert.equal(fake.overlaps, 0);
});

describe('selectBatch', () => {
  const entry = (length: number, seq: number) => ({ tokens: new Int32Array(length), seq });
  const lengthsOf = (items: { tokens: Int32Array }[]) => items.map((x) => x.tokens.length);

  test('closest lengths first; one that does not fit is skipped, shorter ones further on still join', () => {
    const { items, full } = selectBatch(entry(100, 0), [entry(160, 1), entry(30, 2), entry(25, 3)], { maxBatchTokens: 300, maxBatchSize: 8 });
    assert.deepEqual(lengthsOf(items), [100, 30, 25]);
    assert.equal(full, true, 'a candidate was turned away: there is surplus work');
  });

  test('equally close candidates: the older first', () => {
    const { items } = selectBatch(entry(50, 5), [entry(52, 9), entry(48, 7), entry(52, 6)], { maxBatchTokens: 1e6, maxBatchSize: 3 });
    assert.deepEqual(items.map((x) => x.seq), [5, 6, 7]);
  });

  test('full only when the batch cannot grow', () => {
    const limits = { maxBatchTokens: 100, maxBatchSize: 4 };
    assert.equal(selectBatch(entry(10, 0), [entry(10, 1)], limits).full, false, 'room for more of the same length');
    assert.equal(selectBatch(entry(40, 0), [entry(40, 1)], limits).full, true, 'a third 40 would cost 120');
    assert.equal(selectBatch(entry(5, 0), [entry(5, 1), entry(5, 2), entry(5, 3)], limits).full, true, 'size cap');
    const alone = selectBatch(entry(500, 0), [entry(3, 1)], limits);
    assert.deepEqual(lengthsOf(alone.items), [500], 'an anchor over the budget runs alone');
  });
});

test('an idle service dispatches a lone sequence at once; company waits only while a batch runs', { timeout: 5000 }, async (t) => {
  const clock = simulatedClock(t);
  const fake = new FakeExecutor(2);
  fake.hold = true;
  const scheduler = new Scheduler(fake, { ...defaults, maxWaitMs: 1000 });
  const first = scheduler.submit([item(1, 10)]);
  await clock.settle();
  assert.deepEqual(fake.batches.map((b) => [b.ids, b.startedAt]), [[[1], 0]], 'nothing was running: dispatched with no time passing');
  // Replica 1 is idle but a batch runs on replica 0: a new sequence now waits for company.
  const second = scheduler.submit([item(2, 10)]);
  const third = scheduler.submit([item(3, 10)]);
  await clock.advance(999);
  assert.equal(fake.batches.length, 1, 'waiting for company while another batch runs');
  // The running batch ends: nothing runs any more, so the waiting sequences go at once, together.
  fake.batches[0].finish();
  await clock.settle();
  assert.deepEqual(fake.batches.map((b) => [b.ids, b.startedAt]), [[[1], 0], [[2, 3], 999]], 'the waiting sequences went together when the batch ended');
  fake.releaseAll();
  await Promise.all([first, second, third]);
});

test("a batch's replica memory bound: contacts sequences join a batch only while its estimated bytes fit; one over it runs alone", { timeout: 5000 }, async () => {
  const fake = new FakeExecutor(1);
  // Contacts: 1,000 bytes a token² a sequence; the bound takes two sequences of 20 tokens (800 kB), not three.
  const batchMemory = { limitBytes: 900_000, bytesOf: (lane: 'default' | 'contacts', tokens: number, sequences: number) => (lane === 'contacts' ? sequences * tokens * tokens * 1000 : 0) };
  const scheduler = new Scheduler(fake, { ...defaults, maxWaitMs: 0, batchMemory });
  const { blocker } = await occupy(fake, scheduler);
  const contacts = scheduler.submit(Array.from({ length: 5 }, (_, k) => item(k, 20, { contacts: true })));
  const big = scheduler.submit([item(10, 40, { contacts: true })]); // 1.6 MB alone: over the bound, still runs
  const plain = scheduler.submit(Array.from({ length: 5 }, (_, k) => item(20 + k, 20, { logits: true })));
  fake.hold = false;
  fake.batches[0].finish();
  await Promise.all([blocker, contacts, big, plain]);
  const sizes = fake.batches.slice(1).map((b) => `${b.want.contacts ? 'c' : 'l'}${b.ids.length}`);
  assert.deepEqual(sizes.filter((s) => s.startsWith('c')).sort(), ['c1', 'c1', 'c2', 'c2']);
  assert.ok(sizes.includes('l5'), `the default lane is not bounded by it: ${sizes}`);
});

test('fair queuing: the oldest work of a request with nothing running anchors the next batch, before older parts of a running one', { timeout: 5000 }, async () => {
  const fake = new FakeExecutor(1);
  const scheduler = new Scheduler(fake, { ...defaults, maxBatchTokens: 100, maxWaitMs: 0 });
  fake.hold = true;
  const large = {}; // one request, submitted in parts (tasks/inference.ts passes itself as the flow)
  const parts = [0, 1, 2].map((p) => scheduler.submit([item(10 + p, 90)], { flow: large }));
  await fake.batchesStarted(1); // part 0 runs: the large request has work running
  const small = scheduler.submit([item(99, 5)]);
  fake.batches[0].finish();
  await fake.batchesStarted(2);
  assert.deepEqual(fake.batches[1].ids, [99], 'the small request goes before the large one\'s older parts');
  fake.hold = false;
  fake.batches[1].finish();
  await Promise.all([...parts, small]);
  assert.deepEqual(fake.batches.slice(2).map((b) => b.ids), [[11], [12]]);
});

test('maxBatchMs: once the rate is measured, a batch holds what a replica runs in that long, at least one row', { timeout: 5000 }, async (t) => {
  const clock = simulatedClock(t);
  const fake = new FakeExecutor(1);
  fake.hold = true;
  const scheduler = new Scheduler(fake, { ...defaults, maxBatchTokens: 4096, maxWaitMs: 0, maxBatchMs: 1000 });
  assert.equal(scheduler.batchTokens(), 4096, 'no rate yet: the token budget');
  const first = scheduler.submit([item(1, 500)]);
  await fake.batchesStarted(1);
  await clock.advance(1000); // 500 tokens in 1 s
  fake.batches[0].finish();
  await first;
  assert.equal(scheduler.batchTokens(), 500);
  const next = scheduler.submit(Array.from({ length: 4 }, (_, k) => item(10 + k, 200)));
  await fake.batchesStarted(2);
  assert.deepEqual(fake.batches[1].ids, [10, 11], '2 × 200 padded tokens fit 500, 3 do not');
  const long = scheduler.submit([item(20, 900)]); // over the budget alone: runs alone
  for (let k = 1; k <= 3; k++) {
    await clock.advance(400);
    fake.batches[k].finish();
    if (k < 3) await fake.batchesStarted(k + 2);
  }
  await Promise.all([next, long]);
  assert.ok(fake.batches.some((b) => b.ids.length === 1 && b.ids[0] === 20), 'the long row ran alone');
});
