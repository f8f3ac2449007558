// The task code on the ESM-1b fixture through the CLI's engine (prepareModel → one CPU replica →
// scheduler), against fair-esm's numbers; the family's 1022-residue window; and `esm2 pll` and
// `esm2 score` as real processes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { startLocalEngine } from '../src/cli/local-engine.js';
import { parseCsv } from '../src/tasks/csv.js';
import { fillMask } from '../src/tasks/fill-mask.js';
import { maskedLogProbs } from '../src/tasks/masked-marginals.js';
import { pseudoLikelihood } from '../src/tasks/pll.js';
import { scoreMutations } from '../src/tasks/score.js';
import { ACCEPTED_RESIDUES } from '../src/model/tokenizer.js';
import { startGoldenEngine, type GoldenEngine } from './helpers/golden-engine.js';
import { assertFillMaskSoftmax, fixtureModelDirOf, goldenCases, goldenTensor, relativeError, type GoldenCase } from './helpers/golden.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

const FIXTURE = 'esm1b_tiny';
let golden: GoldenEngine;
let cases: GoldenCase[];

before(async () => {
  golden = await startGoldenEngine(4096, FIXTURE);
  cases = await goldenCases(FIXTURE);
});
after(() => golden.close());

const encode = (sequence: string) => golden.engine.checkpoint.tokenizer.encode(sequence);

test('masked log-probabilities match fair-esm for every case (≤ 1e-5 relative)', async () => {
  for (const c of cases.filter((x) => !x.sequence.includes('<mask>'))) {
    const actual = await maskedLogProbs(golden.infer, golden.engine.checkpoint.tokenizer, encode(c.sequence));
    const err = relativeError(actual, await goldenTensor(c.id, 'masked_log_probs', FIXTURE));
    assert.ok(err <= 1e-5, `${c.id}: relative error ${err.toExponential(2)}`);
  }
});

test('variant scores (both methods) and PLL within 1e-3 absolute', async () => {
  const context = { infer: golden.infer, tokenizer: golden.engine.checkpoint.tokenizer };
  for (const c of cases.filter((x) => x.variant_scores)) {
    for (const method of ['masked_marginal', 'wt_marginal'] as const) {
      const scores = await scoreMutations(context, encode(c.sequence), c.variant_scores!.map((v) => v.mutation), method);
      scores.forEach((s, i) => assert.ok(Math.abs(s.score - c.variant_scores![i][method]) <= 1e-3, `${c.id} ${s.mutation} ${method}`));
    }
  }
  for (const c of cases.filter((x) => x.pseudo_log_likelihood !== undefined)) {
    const r = await pseudoLikelihood(golden.infer, golden.engine.checkpoint.tokenizer, encode(c.sequence));
    assert.ok(Math.abs(r.pseudo_log_likelihood - c.pseudo_log_likelihood!) <= 1e-3, `${c.id}: ${r.pseudo_log_likelihood} vs ${c.pseudo_log_likelihood}`);
  }
});

test('fill-mask: the softmax of fair-esm logits at each <mask>', async () => {
  const c = cases.find((x) => x.id === 'masked')!;
  const logits = await goldenTensor(c.id, 'logits', FIXTURE);
  const { tokenizer } = golden.engine.checkpoint;
  const predictions = await fillMask(golden.infer, tokenizer, encode(c.sequence), ACCEPTED_RESIDUES.length);
  assert.deepEqual(predictions.map((p) => p.position), [7, 16]);
  assertFillMaskSoftmax(predictions, logits, tokenizer.vocab);
});

test('the CLI engine caps its window at the family limit, whatever window it is asked for', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'esm2-tasks-'));
  const engine = await startLocalEngine({ modelDir: fixtureModelDirOf(FIXTURE), cacheDir, windowSize: 2000, threads: 1 });
  try {
    assert.equal(engine.inference.windowSize, 1022);
    // 1500 residues run as windows of 1022; whole, they would index past the 1026-row position table.
    const tokens = encode('MKTVRQERLKSIVRILERSKEPVSGAQL'.repeat(60).slice(0, 1500));
    const [result] = await engine.request().run((request) => request.sequences([{ encoded: { tokens, length: 1500, originalLength: 1500, truncated: false } }], { mean: [2] }));
    assert.ok(result.result.mean?.[2]?.every(Number.isFinite));
  } finally {
    await engine.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('esm2 pll and esm2 score (real processes) on the ESM-1b checkpoint match fair-esm', async (t) => {
  const exec = promisify(execFile);
  const dir = await tempDir(t);
  const esm2 = (args: string[]) => exec(process.execPath, [join(repoRoot, 'bin', 'esm2.js'), ...args, '--threads', '1'], { env: { ...process.env, ESM2_COMPILE_CACHE: dir } });
  const model = fixtureModelDirOf(FIXTURE);
  const withPll = cases.filter((c) => c.pseudo_log_likelihood !== undefined);
  const fasta = join(dir, 'cases.fasta');
  await writeFile(fasta, withPll.map((c) => `>${c.id}\n${c.sequence}\n`).join(''));
  const pll = parseCsv((await esm2(['pll', '--model', model, '--input', fasta])).stdout);
  pll.rows.forEach(([id, , value], i) => assert.ok(Math.abs(Number(value) - withPll[i].pseudo_log_likelihood!) <= 1e-3, `${id}: ${value}`));

  const seed = cases.find((c) => c.id === 'seed_example')!;
  const { stdout } = await esm2(['score', '--model', model, '--sequence', seed.sequence, '--mutations', seed.variant_scores!.map((v) => v.mutation).join(',')]);
  parseCsv(stdout).rows.forEach(([mutant, score], i) => {
    assert.equal(mutant, seed.variant_scores![i].mutation);
    assert.ok(Math.abs(Number(score) - seed.variant_scores![i].masked_marginal) <= 1e-3, `${mutant}: ${score}`);
  });
});
