// Every graph variant the compiler emits, run through real ONNX Runtime on each golden fixture
// (ESM-2 and ESM-1b against fair-esm, ESM C in both layouts against EvolutionaryScale's esm), must
// reproduce the original outputs: one sequence at a time and all cases in one padded batch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { loadCheckpoint, type Esm2Checkpoint } from '../src/model/checkpoint.js';
import { compileCheckpoint, type CompileOptions } from '../src/compile/index.js';
import { runGoldenRows } from './helpers/run-graph.js';
import { goldenCases, fixtureModelDirOf, goldenTensor, relativeError, type GoldenCase, type GoldenFixture } from './helpers/golden.js';

/** The fixture's float32 tolerance; float16 weights and MatMuls keep ~3 significant digits. */
const TOLERANCE = { fp32: 1e-5, fp16: 3e-3 };

/** Each fixture's checkpoint copies: ESM C's in the hub layout and in the Transformers port's. */
const CHECKPOINTS: [GoldenFixture, 'model' | 'model_transformers'][] = [
  ['esm2_tiny', 'model'],
  ['esm1b_tiny', 'model'],
  ['esmc_tiny', 'model'],
  ['esmc_tiny', 'model_transformers'],
];

for (const [fixture, layout] of CHECKPOINTS) {
  describe(`${fixture}/${layout}`, () => {
    let checkpoint: Esm2Checkpoint;
    let cacheDir: string;
    let cases: GoldenCase[];

    before(async () => {
      checkpoint = await loadCheckpoint(fixtureModelDirOf(fixture, layout));
      cacheDir = await mkdtemp(join(tmpdir(), 'esm2-compile-'));
      cases = await goldenCases(fixture);
    });
    after(async () => {
      await checkpoint.close();
      await rm(cacheDir, { recursive: true, force: true });
    });

    async function checkVariant(options: CompileOptions, batched: boolean) {
      const compiled = await compileCheckpoint(checkpoint, { ...options, cacheDir });
      assert.equal(compiled.family, checkpoint.config.family);
      const session = await ort.InferenceSession.create(compiled.onnxPath);
      const rows = cases.map((c) => checkpoint.tokenizer.encode(c.sequence));
      const run = (batch: Int32Array[]) =>
        runGoldenRows(session, batch, { padTokenId: checkpoint.tokenizer.padId, numLayers: compiled.numLayers, contacts: options.variant === 'contacts' });
      const results = batched ? await run(rows) : await Promise.all(rows.map(async (r) => (await run([r]))[0]));
      for (const [i, c] of cases.entries()) {
        assert.equal(rows[i].length, c.num_tokens, `${c.id}: token count`);
        for (const [quantity, actual] of Object.entries(results[i])) {
          const err = relativeError(actual, await goldenTensor(c.id, quantity, fixture));
          const tolerance = TOLERANCE[options.precision as keyof typeof TOLERANCE];
          if (process.env.GOLDEN_REPORT) console.log(`${fixture} ${options.variant}/${options.precision}/${options.fusedAttention ?? true} ${batched ? 'batch' : 'single'} ${c.id}.${quantity} ${err.toExponential(2)}`);
          assert.ok(err <= tolerance, `${c.id}.${quantity}: relative error ${err.toExponential(2)} > ${tolerance}`);
        }
        assert.equal(Object.keys(results[i]).length, options.variant === 'contacts' ? 4 : 3);
      }
      await session.release();
    }

    for (const [label, options] of [
      ['fused attention (contrib ops)', { variant: 'default', precision: 'fp32', fusedAttention: true }],
      ['plain attention (standard ops)', { variant: 'default', precision: 'fp32', fusedAttention: false }],
      ['contacts variant', { variant: 'contacts', precision: 'fp32' }],
      ['float16, fused attention', { variant: 'default', precision: 'fp16', fusedAttention: true }],
      ['float16, contacts variant', { variant: 'contacts', precision: 'fp16' }],
    ] as [string, CompileOptions][]) {
      if (options.variant === 'contacts' && fixture === 'esmc_tiny') continue; // ESM C has no contact head
      describe(`compiled graph, ${label}`, () => {
        test('matches fair-esm one sequence at a time', () => checkVariant(options, false));
        test('matches fair-esm with all cases in one padded batch', () => checkVariant(options, true));
      });
    }
  });
}

test('a second compile of the same checkpoint and options comes from the cache', async (t) => {
  const checkpoint = await loadCheckpoint(fixtureModelDirOf('esm2_tiny'));
  const cacheDir = await mkdtemp(join(tmpdir(), 'esm2-compile-'));
  t.after(async () => {
    await checkpoint.close();
    await rm(cacheDir, { recursive: true, force: true });
  });
  const options: CompileOptions = { variant: 'default', precision: 'fp32', cacheDir };
  const first = await compileCheckpoint(checkpoint, options);
  const second = await compileCheckpoint(checkpoint, options);
  assert.equal(second.compiled, false);
  assert.equal(second.onnxPath, first.onnxPath);
  const other = await compileCheckpoint(checkpoint, { ...options, variant: 'contacts' });
  assert.notEqual(other.cacheKey, first.cacheKey);
});
