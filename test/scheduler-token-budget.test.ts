// Token-budget batching: checked as invariants over many random inputs plus a few exact layouts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenBudgetBatches } from '../src/scheduler/token-budget.js';

/** Asserts every invariant the scheduler relies on for one input; returns the batches. */
function checkInvariants(lengths: number[], maxTokens: number, maxSequences = Infinity): number[][] {
  const batches = tokenBudgetBatches(lengths, maxTokens, maxSequences);
  const label = `lengths=${JSON.stringify(lengths)} budget=${maxTokens} maxSeq=${maxSequences}`;

  // Every index exactly once.
  const seen = batches.flat();
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    lengths.map((_, i) => i),
    `${label}: indices`,
  );

  for (const batch of batches) {
    assert.ok(batch.length >= 1, `${label}: empty batch`);
    assert.ok(batch.length <= maxSequences, `${label}: batch of ${batch.length} > ${maxSequences} sequences`);
    const maxLen = Math.max(...batch.map((i) => lengths[i]));
    if (batch.length > 1) assert.ok(maxLen * batch.length <= maxTokens, `${label}: batch ${JSON.stringify(batch)} costs ${maxLen * batch.length}`);
    else if (maxLen > maxTokens) assert.equal(batch.length, 1, `${label}: an over-long item must be alone`);
  }

  // Shortest first overall, and equal lengths keep input order (a stable sort by length).
  const expectedOrder = lengths.map((len, i) => ({ len, i })).sort((a, b) => a.len - b.len || a.i - b.i).map((x) => x.i);
  assert.deepEqual(seen, expectedOrder, `${label}: order`);
  return batches;
}

/** mulberry32: a seeded [0, 1) generator, so a failing random case reproduces. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** n integers uniform in [lo, hi]. */
function randomLengths(random: () => number, n: number, lo: number, hi: number): number[] {
  return Array.from({ length: n }, () => lo + Math.floor(random() * (hi - lo + 1)));
}

describe('tokenBudgetBatches', () => {
  test('exact layout: greedy, length-sorted, max_len × n within the budget', () => {
    // Sorted: 2(idx 3), 3(idx 1), 5(idx 0), 5(idx 4), 9(idx 2). Budget 12:
    // [3,1] costs 3·2=6; adding idx 0 would cost 5·3=15 → new batch; [0,4] costs 10; [2] costs 9.
    assert.deepEqual(tokenBudgetBatches([5, 3, 9, 2, 5], 12), [[3, 1], [0, 4], [2]]);
  });

  test('a batch exactly at the budget is allowed', () => {
    assert.deepEqual(tokenBudgetBatches([4, 4, 4, 4], 8), [
      [0, 1],
      [2, 3],
    ]);
    assert.deepEqual(tokenBudgetBatches([4, 4, 4, 4], 16), [[0, 1, 2, 3]]);
  });

  test('items longer than the budget each get a batch of their own', () => {
    const batches = checkInvariants([50, 3, 40, 2, 60], 10);
    assert.deepEqual(batches, [[3, 1], [2], [0], [4]]);
  });

  test('maxSequences caps the batch size even when tokens would allow more', () => {
    const batches = checkInvariants([1, 1, 1, 1, 1, 1, 1], 1000, 3);
    assert.deepEqual(batches, [[0, 1, 2], [3, 4, 5], [6]]);
    assert.deepEqual(checkInvariants([7, 7, 7], 1000, 1), [[0], [1], [2]]);
  });

  test('ties in length keep their input order', () => {
    const lengths = [8, 3, 8, 3, 8, 3, 8];
    assert.deepEqual(tokenBudgetBatches(lengths, 1000).flat(), [1, 3, 5, 0, 2, 4, 6]);
    checkInvariants(lengths, 16);
  });

  test('no input gives no batches', () => {
    assert.deepEqual(tokenBudgetBatches([], 100), []);
  });

  test('the input array is not reordered', () => {
    const lengths = [9, 1, 5];
    tokenBudgetBatches(lengths, 10);
    assert.deepEqual(lengths, [9, 1, 5]);
  });

  test('invariants hold over random inputs', () => {
    const random = seededRandom(20240611);
    for (let trial = 0; trial < 300; trial++) {
      const n = Math.floor(random() * 40);
      // A narrow length range makes ties common; a wide one makes over-long items common.
      const lengths = trial % 2 === 0 ? randomLengths(random, n, 1, 6) : randomLengths(random, n, 1, 1200);
      const budget = 1 + Math.floor(random() * 2000);
      const maxSeq = trial % 3 === 0 ? Infinity : 1 + Math.floor(random() * 8);
      checkInvariants(lengths, budget, maxSeq);
    }
  });

  test('bad budgets and batch sizes throw RangeError', () => {
    for (const budget of [0, -1, NaN, -Infinity]) {
      assert.throws(() => tokenBudgetBatches([1, 2], budget), RangeError, `budget ${budget}`);
    }
    for (const maxSeq of [0, 0.5, 1.5, -3, NaN]) {
      assert.throws(() => tokenBudgetBatches([1, 2], 100, maxSeq), RangeError, `maxSequences ${maxSeq}`);
    }
  });
});
