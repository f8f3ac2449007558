// Masked and unmasked log-probability matrices from the golden checkpoint through real ORT,
// against fair-esm's masked_log_probs; which rows are computed, and the cache that spares them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { logSoftmax, MaskedLogProbCache, maskedLogProbs, unmaskedLogProbs } from '../src/tasks/masked-marginals.js';
import type { Infer } from '../src/tasks/inference.js';
import { startGoldenEngine, type GoldenEngine } from './helpers/golden-engine.js';
import { goldenCases, goldenTensor, relativeError, type GoldenCase } from './helpers/golden.js';

const V = 33;
let golden: GoldenEngine;
let cases: GoldenCase[];

before(async () => {
  golden = await startGoldenEngine();
  cases = await goldenCases();
});
after(() => golden.close());

const tokensOf = (id: string) => golden.engine.checkpoint.tokenizer.encode(cases.find((c) => c.id === id)!.sequence);
const rowsSubmitted = () => golden.calls.reduce((a, b) => a + b, 0);
const row = (m: Float32Array, i: number) => m.subarray(i * V, (i + 1) * V);

test('masked log-probabilities match fair-esm for every case (≤ 1e-5 relative)', async () => {
  const withMatrix = cases.filter((c) => !c.sequence.includes('<mask>'));
  assert.equal(withMatrix.length, 6);
  for (const c of withMatrix) {
    const tokens = tokensOf(c.id);
    const actual = await maskedLogProbs(golden.infer, golden.engine.checkpoint.tokenizer, tokens);
    const expected = await goldenTensor(c.id, 'masked_log_probs');
    assert.equal(actual.length, (tokens.length - 2) * V, c.id);
    const err = relativeError(actual, expected);
    assert.ok(err <= 1e-5, `${c.id}: relative error ${err.toExponential(2)}`);
  }
});

test('unmasked log-probabilities are the log-softmax of fair-esm logits rows 1 … L', async () => {
  for (const id of ['seed_example', 'lysozyme_frag']) {
    const tokens = tokensOf(id);
    const L = tokens.length - 2;
    const logits = await goldenTensor(id, 'logits');
    const expected = new Float32Array(L * V);
    for (let i = 0; i < L; i++) expected.set(logSoftmax(logits, (i + 1) * V, V), i * V);
    const err = relativeError(await unmaskedLogProbs(golden.infer, tokens), expected);
    assert.ok(err <= 1e-5, `${id}: relative error ${err.toExponential(2)}`);
  }
});

test('every row is a log-distribution: exp sums to 1', async () => {
  const m = await maskedLogProbs(golden.infer, golden.engine.checkpoint.tokenizer, tokensOf('his_tag'), { positions: [1, 20] });
  for (const i of [0, 19]) {
    const total = Array.from(row(m, i)).reduce((s, lp) => s + Math.exp(lp), 0);
    assert.ok(Math.abs(total - 1) < 1e-5, `row ${i}: ${total}`);
  }
});

test('positions computes only those rows, batched in one call; the others are NaN', async () => {
  const { tokenizer } = golden.engine.checkpoint;
  const tokens = tokensOf('seed_example');
  const full = await goldenTensor('seed_example', 'masked_log_probs');
  const before = golden.calls.length;
  const m = await maskedLogProbs(golden.infer, tokenizer, tokens, { positions: [9, 2, 4, 2] });
  assert.deepEqual(golden.calls.slice(before), [3], 'one call with the three distinct masked copies');
  for (let i = 0; i < 28; i++) {
    if ([1, 3, 8].includes(i)) assert.ok(relativeError(row(m, i), row(full, i)) <= 1e-5, `row ${i}`);
    else assert.ok(row(m, i).every(Number.isNaN), `row ${i} should not be computed`);
  }
  await assert.rejects(maskedLogProbs(golden.infer, tokenizer, tokens, { positions: [29] }), /position 29 is not one of 1 … 28/);
});

test('the cache: a protein scored again runs no inference; new rows only for new positions; keyed by model', async () => {
  const { tokenizer } = golden.engine.checkpoint;
  const tokens = tokensOf('lysozyme_frag');
  const store = new MaskedLogProbCache(4);
  const cache = { store, model: 'golden fp32' };

  const first = await maskedLogProbs(golden.infer, tokenizer, tokens, { positions: [1, 28], cache });
  const afterFirst = rowsSubmitted();
  const again = await maskedLogProbs(golden.infer, tokenizer, tokens, { positions: [28, 1], cache });
  assert.equal(rowsSubmitted(), afterFirst, 'no inference for rows already cached');
  assert.deepEqual(again, first);

  again[0] = 123; // a caller changing its copy does not change the cache
  const whole = await maskedLogProbs(golden.infer, tokenizer, tokens, { cache });
  assert.equal(rowsSubmitted(), afterFirst + 127, 'only the 127 rows not cached yet');
  assert.deepEqual(row(whole, 0), row(first, 0));
  assert.ok(relativeError(whole, await goldenTensor('lysozyme_frag', 'masked_log_probs')) <= 1e-5);
  assert.equal(store.size, 1);

  await maskedLogProbs(golden.infer, tokenizer, tokens, { positions: [1], cache: { store, model: 'another model' } });
  assert.equal(rowsSubmitted(), afterFirst + 128, 'another model identity is another entry');
  assert.equal(store.size, 2);
});

test('the cache keeps only the most recently used proteins', async () => {
  const { tokenizer } = golden.engine.checkpoint;
  const cache = { store: new MaskedLogProbCache(1), model: 'm' };
  const [a, b] = [tokenizer.encode('MKTV'), tokenizer.encode('GSHH')];
  await maskedLogProbs(golden.infer, tokenizer, a, { cache });
  await maskedLogProbs(golden.infer, tokenizer, b, { cache });
  const before = rowsSubmitted();
  await maskedLogProbs(golden.infer, tokenizer, a, { cache });
  assert.equal(rowsSubmitted(), before + 4, 'a was evicted by b');
});

test('a failed inference caches nothing', async () => {
  const { tokenizer } = golden.engine.checkpoint;
  const tokens = tokenizer.encode('MKTVRQ');
  const cache = { store: new MaskedLogProbCache(), model: 'm' };
  const failing: Infer = () => Promise.reject(new Error('replica crashed'));
  await assert.rejects(maskedLogProbs(failing, tokenizer, tokens, { cache }), /replica crashed/);
  assert.equal(cache.store.size, 0);
  const before = rowsSubmitted();
  await maskedLogProbs(golden.infer, tokenizer, tokens, { cache });
  assert.equal(rowsSubmitted(), before + 6);
});
