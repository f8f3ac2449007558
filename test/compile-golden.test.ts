// Every graph variant the compiler emits, run through real ONNX Runtime on the golden fixture,
// must reproduce fair-esm's outputs: one sequence at a time and all cases in one padded batch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { loadCheckpoint, type Esm2Checkpoint } from '../src/model/checkpoint.js';
import { compileCheckpoint, type CompileOptions } from '../src/compile/index.js';
import { goldenCases, goldenModelDir, goldenTensor, relativeError, type GoldenCase } from './helpers/golden.js';

/** The fixture's float32 tolerance; float16 weights and MatMuls keep ~3 significant digits. */
const TOLERANCE = { fp32: 1e-5, fp16: 3e-3 };

let checkpoint: Esm2Checkpoint;
let cacheDir: string;
let cases: GoldenCase[];

before(async () => {
  checkpoint = await loadCheckpoint(goldenModelDir);
  cacheDir = await mkdtemp(join(tmpdir(), 'esm2-compile-'));
  cases = await goldenCases();
});
after(async () => {
  await checkpoint.close();
  await rm(cacheDir, { recursive: true, force: true });
});

/** Runs token rows (right-padded) through a session; returns outputs and the padded length. */
async function run(session: ort.InferenceSession, rows: Int32Array[], fetches: string[]) {
  const T = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * T).fill(BigInt(checkpoint.tokenizer.padId));
  rows.forEach((r, b) => r.forEach((id, t) => (ids[b * T + t] = BigInt(id))));
  const out = await session.run({ input_ids: new ort.Tensor('int64', ids, [rows.length, T]) }, fetches);
  return { out, T };
}

/** Rows [0, n) of batch item b of a [B, T, width] output. */
function rowsOf(tensor: ort.Tensor, b: number, n: number): Float32Array {
  const [, T, width] = tensor.dims as number[];
  return (tensor.data as Float32Array).slice(b * T * width, (b * T + n) * width);
}

/** Residue block [1, L] × [1, L] of batch item b of a [B, T, T] output. */
function contactBlock(tensor: ort.Tensor, b: number, L: number): Float32Array {
  const T = tensor.dims[1];
  const data = tensor.data as Float32Array;
  const out = new Float32Array(L * L);
  for (let i = 0; i < L; i++) out.set(data.subarray(b * T * T + (i + 1) * T + 1, b * T * T + (i + 1) * T + 1 + L), i * L);
  return out;
}

async function checkVariant(options: CompileOptions, batched: boolean) {
  const compiled = await compileCheckpoint(checkpoint, { ...options, cacheDir });
  const session = await ort.InferenceSession.create(compiled.onnxPath);
  const last = compiled.numLayers;
  const fetches = ['logits', 'hidden_1', `hidden_${last}`, ...(options.variant === 'contacts' ? ['contacts'] : [])];
  const rows = cases.map((c) => checkpoint.tokenizer.encode(c.sequence));
  const batch = batched ? await run(session, rows, fetches) : null;
  for (const [i, c] of cases.entries()) {
    const { out } = batch ?? (await run(session, [rows[i]], fetches));
    const b = batch ? i : 0;
    const T = c.num_tokens;
    assert.equal(rows[i].length, T, `${c.id}: token count`);
    const checks: [string, Float32Array][] = [
      ['logits', rowsOf(out.logits, b, T)],
      ['repr_layer1', rowsOf(out.hidden_1, b, T)],
      ['last_hidden', rowsOf(out[`hidden_${last}`], b, T)],
    ];
    if (out.contacts) checks.push(['contacts', contactBlock(out.contacts, b, T - 2)]);
    for (const [quantity, actual] of checks) {
      const err = relativeError(actual, await goldenTensor(c.id, quantity));
      const tolerance = TOLERANCE[options.precision];
      assert.ok(err <= tolerance, `${c.id}.${quantity}: relative error ${err.toExponential(2)} > ${tolerance}`);
    }
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
  describe(`compiled graph, ${label}`, () => {
    test('matches fair-esm one sequence at a time', () => checkVariant(options, false));
    test('matches fair-esm with all cases in one padded batch', () => checkVariant(options, true));
  });
}

test('a second compile of the same checkpoint and options comes from the cache', async () => {
  const options: CompileOptions = { variant: 'default', precision: 'fp32', cacheDir };
  const first = await compileCheckpoint(checkpoint, options);
  const second = await compileCheckpoint(checkpoint, options);
  assert.equal(second.compiled, false);
  assert.equal(second.onnxPath, first.onnxPath);
  const other = await compileCheckpoint(checkpoint, { ...options, variant: 'contacts' });
  assert.notEqual(other.cacheKey, first.cacheKey);
});
