// Pseudo-log-likelihood and fill-mask from the golden checkpoint through real ORT, against the
// fixture's PLLs and fair-esm's logits of the `masked` case.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ACCEPTED_RESIDUES } from '../src/model/tokenizer.js';
import { InputError } from '../src/tasks/errors.js';
import { fillMask } from '../src/tasks/fill-mask.js';
import { pseudoLikelihood, pseudoLikelihoodFromMatrix } from '../src/tasks/pll.js';
import { startGoldenEngine, type GoldenEngine } from './helpers/golden-engine.js';
import { goldenCases, goldenTensor, type GoldenCase } from './helpers/golden.js';

const V = 33;
let golden: GoldenEngine;
let cases: GoldenCase[];

before(async () => {
  golden = await startGoldenEngine();
  cases = await goldenCases();
});
after(() => golden.close());

test('the PLL definition applied to fair-esm masked_log_probs gives the fixture values', async () => {
  for (const c of cases.filter((x) => x.pseudo_log_likelihood !== undefined)) {
    const tokens = golden.engine.checkpoint.tokenizer.encode(c.sequence);
    const r = pseudoLikelihoodFromMatrix(await goldenTensor(c.id, 'masked_log_probs'), tokens, V);
    // fair-esm summed in float32 (here float64): ~1e-6 per residue apart, far inside the tolerance.
    assert.ok(Math.abs(r.pseudo_log_likelihood - c.pseudo_log_likelihood!) / r.length < 1e-5, c.id);
    assert.ok(Math.abs(r.pseudo_perplexity / c.pseudo_perplexity! - 1) < 1e-5, c.id);
  }
});

test('pseudo-log-likelihood of every fixture case within 1e-3 per residue', async () => {
  const withPll = cases.filter((c) => c.pseudo_log_likelihood !== undefined);
  assert.equal(withPll.length, 6);
  for (const c of withPll) {
    const tokens = golden.engine.checkpoint.tokenizer.encode(c.sequence);
    const r = await pseudoLikelihood(golden.infer, golden.engine.checkpoint.tokenizer, tokens);
    const L = c.num_tokens - 2;
    assert.equal(r.length, L);
    const perResidue = Math.abs(r.pseudo_log_likelihood - c.pseudo_log_likelihood!) / L;
    assert.ok(perResidue <= 1e-3, `${c.id}: |ΔPLL|/L = ${perResidue}`);
    assert.ok(Math.abs(r.pseudo_perplexity / c.pseudo_perplexity! - 1) <= 1e-3, `${c.id}: perplexity ${r.pseudo_perplexity} vs ${c.pseudo_perplexity}`);
  }
});

test('fill-mask: at each <mask>, the softmax of fair-esm logits over the whole vocabulary; top-1 the same', async () => {
  const { tokenizer } = golden.engine.checkpoint;
  const c = cases.find((x) => x.id === 'masked')!;
  const tokens = tokenizer.encode(c.sequence);
  const logits = await goldenTensor('masked', 'logits');
  const callsBefore = golden.calls.length;
  const predictions = await fillMask(golden.infer, tokenizer, tokens, ACCEPTED_RESIDUES.length);
  assert.deepEqual(golden.calls.slice(callsBefore), [1], 'one unmasked pass');
  assert.deepEqual(predictions.map((p) => p.position), [7, 16]);
  for (const { position, tokens: ranked } of predictions) {
    const row = logits.subarray(position * V, (position + 1) * V);
    const max = Math.max(...row);
    const z = row.reduce((s, x) => s + Math.exp(x - max), 0);
    const expected = (token: string) => Math.exp(row[tokenizer.id(token)] - max) / z;
    assert.deepEqual(ranked.map((t) => t.token).sort(), [...ACCEPTED_RESIDUES].sort(), 'amino-acid tokens only, each once');
    for (const { token, probability } of ranked) {
      assert.ok(Math.abs(probability - expected(token)) <= 1e-5, `position ${position} ${token}: ${probability} vs ${expected(token)}`);
    }
    const top = [...ACCEPTED_RESIDUES].sort((a, b) => expected(b) - expected(a))[0];
    assert.equal(ranked[0].token, top, `top-1 at position ${position}`);
    for (let k = 1; k < ranked.length; k++) assert.ok(ranked[k - 1].probability >= ranked[k].probability, 'sorted by probability');
  }
});

test('fill-mask returns top_k tokens (5 by default) and refuses a bad top_k or a sequence without <mask>', async () => {
  const { tokenizer } = golden.engine.checkpoint;
  const tokens = tokenizer.encode('MK<mask>V<MASK>');
  const [first, second] = await fillMask(golden.infer, tokenizer, tokens);
  assert.equal(first.tokens.length, 5);
  assert.equal(second.position, 5);
  assert.equal((await fillMask(golden.infer, tokenizer, tokens, 1))[0].tokens.length, 1);
  for (const topK of [0, 26, 2.5, Number.NaN]) {
    await assert.rejects(fillMask(golden.infer, tokenizer, tokens, topK), {
      name: 'InputError',
      message: `top_k: must be a whole number from 1 to 25 (the amino-acid tokens), got ${topK}`,
    });
  }
  const callsBefore = golden.calls.length;
  await assert.rejects(fillMask(golden.infer, tokenizer, tokenizer.encode('MKTV'), 5, 'sequences[2]'), (err: unknown) => {
    assert.ok(err instanceof InputError);
    assert.equal(err.message, 'sequences[2]: has no <mask> token; write <mask> where a residue should be predicted');
    return true;
  });
  assert.equal(golden.calls.length, callsBefore, 'no inference for refused input');
});
