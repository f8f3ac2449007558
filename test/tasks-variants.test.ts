// Variant effects: mutation strings and every way they can be wrong (pure), then scores and the
// deep mutational scan from the golden checkpoint through real ORT against the fixture.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { STANDARD_AMINO_ACIDS } from '../src/model/tokenizer.js';
import { InputError } from '../src/tasks/errors.js';
import { MaskedLogProbCache, logSoftmax } from '../src/tasks/masked-marginals.js';
import { scanMutations, scoreMutations, type ScoreContext } from '../src/tasks/score.js';
import { mutatedPositions, parseMutation, parseMutations } from '../src/tasks/variants.js';
import { startGoldenEngine, type GoldenEngine } from './helpers/golden-engine.js';
import { goldenCases, goldenTensor, type GoldenCase } from './helpers/golden.js';

const V = 33;
const SEQ = Array.from('MKTVRQERLKSIVRILERSKEPVSGAQL'); // the seed example, 28 residues
let golden: GoldenEngine;
let cases: GoldenCase[];

before(async () => {
  golden = await startGoldenEngine();
  cases = await goldenCases();
});
after(() => golden.close());

const rowsSubmitted = () => golden.calls.reduce((a, b) => a + b, 0);

function rejectsInput(texts: string[], field: string, message: string): void {
  assert.throws(
    () => parseMutations(texts, SEQ),
    (err: unknown) => err instanceof InputError && err.field === field && err.message === `${field}: ${message}`,
    `expected "${field}: ${message}"`,
  );
}

test('mutation strings: singles, multi-mutants, lower case, 1-based positions', () => {
  assert.deepEqual(parseMutation('K2A', SEQ, 'm'), { text: 'K2A', parts: [{ position: 2, wildType: 'K', mutant: 'A' }] });
  assert.deepEqual(
    parseMutation(' k2a:L28W ', SEQ, 'm').parts,
    [{ position: 2, wildType: 'K', mutant: 'A' }, { position: 28, wildType: 'L', mutant: 'W' }],
  );
  assert.deepEqual(mutatedPositions(parseMutations(['V4G', 'K2A:V4G', 'M1M'], SEQ)), [1, 2, 4]);
});

test('every malformed or mismatching mutation is an InputError naming the mutation and the problem', () => {
  const hint = 'write wild type, 1-based position and mutant, e.g. K2A; join the parts of a multi-mutant with ":", e.g. K2A:V4G';
  rejectsInput(['K2A', 'K2'], 'mutations[1]', `"K2" is not a mutation; ${hint}`);
  rejectsInput(['2A'], 'mutations[0]', `"2A" is not a mutation; ${hint}`);
  rejectsInput(['K2A:V4'], 'mutations[0]', `"K2A:V4" is not a mutation (part "V4"); ${hint}`);
  rejectsInput(['K2A:'], 'mutations[0]', `"K2A:" is not a mutation; ${hint}`);
  rejectsInput(['K-2A'], 'mutations[0]', `"K-2A" is not a mutation; ${hint}`);
  rejectsInput([''], 'mutations[0]', `empty mutation; ${hint}`);
  rejectsInput(['V4G', 'V4G', 'L29A'], 'mutations[2]', 'L29A: position 29 is out of range; the sequence has 28 residues (positions 1 … 28)');
  rejectsInput(['M0A'], 'mutations[0]', 'M0A: position 0 is out of range; the sequence has 28 residues (positions 1 … 28)');
  rejectsInput(['A2G'], 'mutations[0]', 'A2G: position 2 is K, not A');
  rejectsInput(['K2A:T4G'], 'mutations[0]', 'K2A:T4G: position 4 is V, not T');
  rejectsInput(['J2A'], 'mutations[0]', "J2A: unknown amino acid 'J' as wild type");
  rejectsInput(['K2B'], 'mutations[0]', `K2B: unknown amino acid 'B' as mutant; use one of the 20 standard amino acids ${STANDARD_AMINO_ACIDS.join('')}`);
  rejectsInput(['K2J'], 'mutations[0]', `K2J: unknown amino acid 'J' as mutant; use one of the 20 standard amino acids ${STANDARD_AMINO_ACIDS.join('')}`);
  rejectsInput(['K2A:K2G'], 'mutations[0]', 'K2A:K2G: position 2 is mutated more than once');
  rejectsInput([], 'mutations', 'give at least one mutation');
});

test('every variant_scores entry of the fixture, both methods, within 1e-3', async () => {
  const scored = cases.filter((c) => c.variant_scores);
  assert.equal(scored.length, 2);
  for (const c of scored) {
    const context: ScoreContext = { infer: golden.infer, tokenizer: golden.engine.checkpoint.tokenizer };
    const tokens = context.tokenizer.encode(c.sequence);
    const mutations = c.variant_scores!.map((v) => v.mutation);
    for (const method of ['masked_marginal', 'wt_marginal'] as const) {
      const scores = await scoreMutations(context, tokens, mutations, method);
      scores.forEach((s, i) => {
        const expected = c.variant_scores![i];
        assert.equal(s.mutation, expected.mutation);
        assert.ok(Math.abs(s.score - expected[method]) <= 1e-3, `${c.id} ${s.mutation} ${method}: ${s.score} vs ${expected[method]}`);
      });
    }
  }
});

test('masked scoring computes only the mutated positions, and a second call for the protein runs no inference', async () => {
  const { tokenizer } = golden.engine.checkpoint;
  const context: ScoreContext = { infer: golden.infer, tokenizer, cache: { store: new MaskedLogProbCache(), model: golden.engine.model } };
  const tokens = tokenizer.encode(SEQ.join(''));
  const before = rowsSubmitted();
  const first = await scoreMutations(context, tokens, ['K2A', 'V4G', 'K2A:V4G'], 'masked_marginal');
  assert.equal(rowsSubmitted(), before + 2, 'positions 2 and 4 only');
  const callsBefore = golden.calls.length;
  const second = await scoreMutations(context, tokens, ['K2A:V4G', 'V4W', 'K2C'], 'masked_marginal');
  assert.equal(golden.calls.length, callsBefore, 'no inference at all');
  assert.equal(second[0].score, first[2].score);
  assert.ok(Math.abs(first[2].score - (first[0].score + first[1].score)) < 1e-9, 'a multi-mutant is the sum of its parts');
});

test('a bad mutation fails before any inference runs', async () => {
  const { tokenizer } = golden.engine.checkpoint;
  const callsBefore = golden.calls.length;
  await assert.rejects(
    scoreMutations({ infer: golden.infer, tokenizer }, tokenizer.encode(SEQ.join('')), ['K2A', 'A2G'], 'masked_marginal'),
    { name: 'InputError', message: 'mutations[1]: A2G: position 2 is K, not A' },
  );
  assert.equal(golden.calls.length, callsBefore);
});

test('the deep mutational scan of the 300-residue case equals the per-position masked marginals of the fixture', async () => {
  const { tokenizer } = golden.engine.checkpoint;
  const c = cases.find((x) => x.id === 'long_random')!;
  const tokens = tokenizer.encode(c.sequence);
  const scan = await scanMutations({ infer: golden.infer, tokenizer }, tokens, 'masked_marginal');
  const expected = await goldenTensor('long_random', 'masked_log_probs');
  assert.deepEqual(scan.amino_acids, [...STANDARD_AMINO_ACIDS]);
  assert.equal(scan.matrix.length, 300);
  let worst = 0;
  scan.matrix.forEach((row, i) => {
    assert.equal(row.length, 20);
    const wt = c.sequence[i];
    row.forEach((score, j) => {
      const mt = STANDARD_AMINO_ACIDS[j];
      if (mt === wt) assert.equal(score, 0, `wild-type column at position ${i + 1}`);
      const reference = expected[i * V + tokenizer.id(mt)] - expected[i * V + tokenizer.id(wt)];
      worst = Math.max(worst, Math.abs(score - reference));
    });
  });
  assert.ok(worst <= 1e-3, `largest difference ${worst}`);
});

test('the wt_marginal scan is read from one unmasked pass', async () => {
  const { tokenizer } = golden.engine.checkpoint;
  const c = cases.find((x) => x.id === 'seed_example')!;
  const callsBefore = golden.calls.length;
  const scan = await scanMutations({ infer: golden.infer, tokenizer }, tokenizer.encode(c.sequence), 'wt_marginal');
  assert.deepEqual(golden.calls.slice(callsBefore), [1]);
  const logits = await goldenTensor('seed_example', 'logits');
  const lp = logSoftmax(logits, 2 * V, V); // position 2 (K): token row 2
  const scoreA = scan.matrix[1][STANDARD_AMINO_ACIDS.indexOf('A')];
  assert.ok(Math.abs(scoreA - (lp[tokenizer.id('A')] - lp[tokenizer.id('K')])) <= 1e-4);
  assert.ok(Math.abs(scoreA - c.variant_scores![0].wt_marginal) <= 1e-3);
});
