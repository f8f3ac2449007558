// The same checkpoint re-saved as F16 and BF16 (done in the test) loads and stays within 1e-2.
// Real half-precision checkpoints (esm2_t48 is published in F16) must compile into the same fp32
// graph; the only difference from the F32 original is the rounding of every stored weight.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { SafetensorsFile, type FloatDtype } from '../src/model/safetensors.js';
import { compileCheckpoint, type CompiledModel, type CompileOptions } from '../src/compile/index.js';
import { copyFixture } from './helpers/fixture-copy.js';
import { runGoldenRows } from './helpers/run-graph.js';
import { goldenCases, fixtureModelDir, goldenTensor, relativeError, type GoldenCase } from './helpers/golden.js';

/** 16-bit storage keeps 3 (F16) or 2–3 (BF16) significant digits; 1e-2 is the brief's bound. */
const TOLERANCE = 1e-2;
const QUANTITIES = ['logits', 'last_hidden', 'repr_layer1', 'contacts'] as const;
type Quantity = (typeof QUANTITIES)[number];

let cacheDir: string;
let cases: GoldenCase[];
let options: CompileOptions;

before(async () => {
  cacheDir = await mkdtemp(path.join(tmpdir(), 'esm2-dtypes-'));
  cases = await goldenCases();
  options = { variant: 'contacts', precision: 'fp32', cacheDir };
});
after(() => rm(cacheDir, { recursive: true, force: true }));

/** Copies the fixture with every tensor stored as `dtype` and compiles it; the copy is removed after `t`. */
async function compileCopy(t: TestContext, dtype: FloatDtype): Promise<{ dir: string; compiled: CompiledModel }> {
  const dir = dtype === 'F32' ? await copyFixture(t) : await copyFixture(t, { dtype });
  const checkpoint = await loadCheckpoint(dir);
  try {
    return { dir, compiled: await compileCheckpoint(checkpoint, options) };
  } finally {
    await checkpoint.close();
  }
}

/** Worst relative error over all golden cases, per quantity, running one sequence at a time. */
async function worstErrors(dir: string, compiled: CompiledModel): Promise<Record<Quantity, number>> {
  const checkpoint = await loadCheckpoint(dir);
  const session = await ort.InferenceSession.create(compiled.onnxPath);
  const worst: Record<Quantity, number> = { logits: 0, last_hidden: 0, repr_layer1: 0, contacts: 0 };
  try {
    for (const c of cases) {
      const ids = checkpoint.tokenizer.encode(c.sequence);
      const T = ids.length;
      assert.equal(T, c.num_tokens, `${c.id}: token count`);
      const [actual] = await runGoldenRows(session, [ids], { padTokenId: checkpoint.tokenizer.padId, numLayers: compiled.numLayers, contacts: true });
      for (const q of QUANTITIES) {
        const err = relativeError(actual[q]!, await goldenTensor(c.id, q));
        assert.ok(Number.isFinite(err), `${c.id}.${q}: error ${err}`);
        worst[q] = Math.max(worst[q], err);
      }
    }
  } finally {
    await session.release();
    await checkpoint.close();
  }
  return worst;
}

async function storedDtypes(dir: string): Promise<Set<string>> {
  const file = await SafetensorsFile.open(path.join(dir, 'model.safetensors'));
  try {
    return new Set([...file.tensors.values()].map((e) => e.dtype));
  } finally {
    await file.close();
  }
}

describe('16-bit re-saved checkpoints', () => {
  for (const dtype of ['F16', 'BF16'] as const) {
    test(`${dtype}: every tensor stored as ${dtype}, loads, compiles and matches fair-esm within ${TOLERANCE}`, async (t) => {
      const { dir, compiled } = await compileCopy(t, dtype);
      assert.deepEqual(await storedDtypes(dir), new Set([dtype]));
      const worst = await worstErrors(dir, compiled);
      t.diagnostic(`${dtype} worst relative errors: ${QUANTITIES.map((q) => `${q} ${worst[q].toExponential(2)}`).join(', ')}`);
      for (const q of QUANTITIES) assert.ok(worst[q] <= TOLERANCE, `${dtype} ${q}: relative error ${worst[q].toExponential(2)} > ${TOLERANCE}`);
      // Rounding every weight must show up in the outputs, else the 16-bit copy was not what ran.
      if (dtype === 'F16') for (const q of QUANTITIES) assert.ok(worst[q] > 0, `${dtype} ${q}: error is exactly 0`);
    });
  }

  test('the F32 copy reproduces fair-esm at float32 precision (the reference the 16-bit errors are measured against)', async (t) => {
    const { dir, compiled } = await compileCopy(t, 'F32');
    const worst = await worstErrors(dir, compiled);
    for (const q of QUANTITIES) assert.ok(worst[q] <= 1e-5, `F32 ${q}: relative error ${worst[q].toExponential(2)}`);
  });

  test('the compile cache keys of the F32, F16 and BF16 copies differ', async (t) => {
    const keys = new Map<FloatDtype, string>();
    for (const dtype of ['F32', 'F16', 'BF16'] as const) keys.set(dtype, (await compileCopy(t, dtype)).compiled.cacheKey);
    assert.equal(new Set(keys.values()).size, 3, JSON.stringify(Object.fromEntries(keys)));
    // The F32 copy keys like the original (the directory is not part of the key), so the
    // differences above come from the stored dtypes alone.
    const original = await loadCheckpoint(fixtureModelDir);
    try {
      assert.equal((await compileCheckpoint(original, options)).cacheKey, keys.get('F32'));
    } finally {
      await original.close();
    }
  });
});
