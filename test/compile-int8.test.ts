// PRECISION=int8: the fixture through real ONNX Runtime in int8 against fp32 of the same graph,
// the quantizer, the cache entry of its own, the setting, and the refusal on GPU devices.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { loadCheckpoint, type Esm2Checkpoint } from '../src/model/checkpoint.js';
import { compileCheckpoint } from '../src/compile/index.js';
import { INT8_WEIGHT_MAX, quantizePerColumn } from '../src/compile/weights.js';
import { checkPrecisionForDevice } from '../src/engine/prepare.js';
import { loadSettings } from '../src/server/settings.js';
import { buildApp } from '../src/server/app.js';
import { startTestServer } from './helpers/server.js';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { SafetensorsFile } from '../src/model/safetensors.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';
import { copyFixture } from './helpers/fixture-copy.js';
import { startLocalEngine } from '../src/cli/local-engine.js';
import { compareSequence, cosine, relativeError, spearman } from '../src/tasks/precision-compare.js';
import { runGoldenRows } from './helpers/run-graph.js';
import { goldenCases, fixtureModelDir, fixtureModelDirOf, type GoldenCase } from './helpers/golden.js';

/*
 * Bounds for the fixture (hidden 32, 2 layers), measured on AVX2 without VNNI: worst case over the
 * golden cases mean cosine 0.99989, logits 1.4e-2, rows 1.3e-2 (batched: up to 1.7e-2, the
 * activation scale being the batch's); 300-residue scan Spearman 0.9995.
 * The cosine target 0.999 holds even at hidden 32; the relative errors are those of 7-bit weights
 * (≈ 1/126 of a channel's range each) through a net this small, so their bound is 3e-2 with margin.
 */
const MIN_MEAN_COSINE = 0.999;
/**
 * ESM C's fixture (hidden 64, residual branches × 1/√(2/36) = 4.2) measured worst logits 3.8e-2,
 * rows 3.4e-2, mean cosine 0.99970 (INT8_REPORT=1 prints them): its bound is 5e-2.
 */
const MAX_RELATIVE_ERROR = { esm2_tiny: 3e-2, esmc_tiny: 5e-2 };
const MIN_DMS_SPEARMAN = 0.99;

let checkpoint: Esm2Checkpoint;
/** The ESM-2 fixture's checkpoint, for the tests that loop over fixtures. */
let fixtureCheckpoint: Esm2Checkpoint;
let cacheDir: string;
let cases: GoldenCase[];

before(async () => {
  checkpoint = await loadCheckpoint(fixtureModelDir);
  fixtureCheckpoint = checkpoint;
  cacheDir = await mkdtemp(join(tmpdir(), 'esm2-int8-'));
  cases = await goldenCases();
});
after(async () => {
  await checkpoint.close();
  await rm(cacheDir, { recursive: true, force: true });
});

test('int8 weights: per output channel, |q| ≤ 63 (no u8·s8 saturation without VNNI), within half a step of the weight', () => {
  const rows = 5;
  const cols = 3;
  const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 1.7) * (1 + (i % cols) * 10));
  const { q, scale } = quantizePerColumn(w, rows, cols);
  assert.equal(INT8_WEIGHT_MAX, 63);
  for (let c = 0; c < cols; c++) {
    let max = 0;
    for (let r = 0; r < rows; r++) max = Math.max(max, Math.abs(q[r * cols + c]));
    assert.equal(max, 63, `column ${c} uses the whole 7-bit range`);
    for (let r = 0; r < rows; r++) assert.ok(Math.abs(q[r * cols + c] * scale[c] - w[r * cols + c]) <= scale[c] / 2 + 1e-7);
  }
});

for (const fixture of ['esm2_tiny', 'esmc_tiny'] as const) {
  test(`${fixture} in int8 against fp32 of the same graph: mean cosine ≥ 0.999, logits and rows within ${MAX_RELATIVE_ERROR[fixture]}, one at a time and batched`, async (t) => {
    const checkpoint = fixture === 'esm2_tiny' ? fixtureCheckpoint : await loadCheckpoint(fixtureModelDirOf(fixture));
    if (checkpoint !== fixtureCheckpoint) t.after(() => checkpoint.close());
    const cases = await goldenCases(fixture);
    const fp32 = await compileCheckpoint(checkpoint, { variant: 'default', precision: 'fp32', cacheDir });
    const int8 = await compileCheckpoint(checkpoint, { variant: 'default', precision: 'int8', cacheDir });
    const rows = cases.map((c) => checkpoint.tokenizer.encode(c.sequence));
    const outputs = [];
    for (const compiled of [fp32, int8]) {
      const session = await ort.InferenceSession.create(compiled.onnxPath);
      const run = (batch: Int32Array[]) => runGoldenRows(session, batch, { padTokenId: checkpoint.tokenizer.padId, numLayers: compiled.numLayers, contacts: false });
      outputs.push({ single: await Promise.all(rows.map(async (r) => (await run([r]))[0])), batched: await run(rows) });
      await session.release();
    }
    const [ref, got] = outputs;
    const E = checkpoint.config.hiddenSize;
    const mean = (h: Float32Array, tokens: number) => {
      const m = new Float64Array(E);
      for (let t = 1; t < tokens - 1; t++) for (let e = 0; e < E; e++) m[e] += h[t * E + e];
      return m;
    };
    for (const mode of ['single', 'batched'] as const) {
      for (const [i, c] of cases.entries()) {
        const a = got[mode][i];
        const b = ref.single[i];
        const cos = cosine(mean(a.last_hidden!, rows[i].length), mean(b.last_hidden!, rows[i].length));
        if (process.env.INT8_REPORT) console.log(fixture, mode, c.id, 'cosine', cos.toFixed(6), ['logits', 'last_hidden', 'repr_layer1'].map((q) => relativeError(a[q as 'logits']!, b[q as 'logits']!).toExponential(2)).join(' '));
        assert.ok(cos >= MIN_MEAN_COSINE, `${c.id} (${mode}): mean cosine ${cos}`);
        for (const quantity of ['logits', 'last_hidden', 'repr_layer1'] as const) {
          const err = relativeError(a[quantity]!, b[quantity]!);
          assert.ok(err <= MAX_RELATIVE_ERROR[fixture], `${c.id}.${quantity} (${mode}): relative error ${err.toExponential(2)}`);
        }
      }
    }
  });
}

test('a 300-residue deep mutational scan in int8 ranks like fp32 (Spearman ≥ 0.99) and PLL moves little', async () => {
  const common = { modelDir: fixtureModelDir, cacheDir, threads: 1 };
  const reference = await startLocalEngine({ ...common, precision: 'fp32' });
  const quantized = await startLocalEngine({ ...common, precision: 'int8' });
  try {
    assert.equal(quantized.precision, 'int8');
    assert.match(quantized.model, /\(int8\)$/);
    const letters = 'ACDEFGHIKLMNPQRSTVWY';
    const sequence = Array.from({ length: 300 }, (_, i) => letters[(i * 7 + ((i * i) % 13)) % 20]).join('');
    const tokens = checkpoint.tokenizer.encode(sequence);
    const result = await compareSequence(reference.infer, quantized.infer, checkpoint.tokenizer, tokens, checkpoint.config.numLayers, { masked: true });
    assert.ok(result.dmsSpearman! >= MIN_DMS_SPEARMAN, `DMS Spearman ${result.dmsSpearman}`);
    assert.ok(result.meanCosine >= MIN_MEAN_COSINE, `mean cosine ${result.meanCosine}`);
    assert.ok(result.pllDiffPerResidue! < 0.1, `|ΔPLL|/L ${result.pllDiffPerResidue}`);
  } finally {
    await quantized.close();
    await reference.close();
  }
});

test('the int8 graph is cached apart from fp32, quantizes every encoder Linear, and a second compile is a hit', async () => {
  const fp32 = await compileCheckpoint(checkpoint, { variant: 'default', precision: 'fp32', cacheDir });
  const int8 = await compileCheckpoint(checkpoint, { variant: 'default', precision: 'int8', cacheDir });
  assert.notEqual(int8.cacheKey, fp32.cacheKey);
  assert.notEqual(int8.onnxPath, fp32.onnxPath);
  assert.equal(int8.precision, 'int8');
  const again = await compileCheckpoint(checkpoint, { variant: 'default', precision: 'int8', cacheDir });
  assert.equal(again.compiled, false);
  assert.equal(again.onnxPath, int8.onnxPath);
  const model = onnxProto.onnx.ModelProto.decode(await readFile(int8.onnxPath));
  const ops = model.graph!.node!.map((n) => n.opType);
  // q/k/v fused, output, fc1, fc2 per block; the LM head stays float.
  assert.equal(ops.filter((op) => op === 'DynamicQuantizeMatMul').length, 4 * checkpoint.config.numLayers);
  assert.equal(ops.filter((op) => op === 'MatMul').length, 2);
  const fp32Ops = onnxProto.onnx.ModelProto.decode(await readFile(fp32.onnxPath)).graph!.node!.map((n) => n.opType);
  assert.equal(fp32Ops.filter((op) => op === 'DynamicQuantizeMatMul').length, 0);
});

test('PRECISION=int8 is accepted; int8 on a GPU device is refused with the reason, cpu is fine', () => {
  assert.equal(loadSettings({ PRECISION: 'int8' }).precision, 'int8');
  assert.throws(() => checkPrecisionForDevice('cuda:0', 'int8'), /int8 runs on cpu only/);
  assert.doesNotThrow(() => checkPrecisionForDevice('cpu', 'int8'));
  assert.doesNotThrow(() => checkPrecisionForDevice('cuda:0', 'fp16'));
});

test('Spearman: ties get their average rank', () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  assert.ok(Math.abs(spearman([1, 1, 2, 3], [1, 2, 3, 4]) - 0.9486832980505138) < 1e-12);
});

test('PRECISION=int8 serves: /v1/models reports int8 per replica; with a GPU device start-up fails with one line', async (t) => {
  const server = await startTestServer({ PRECISION: 'int8' });
  t.after(() => server.close());
  const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { precision: string; devices: { device: string; precision: string }[] };
  assert.equal(models.precision, 'int8');
  assert.deepEqual(models.devices.map((d) => [d.device, d.precision]), [['cpu', 'int8']]);

  const settings = loadSettings({ MODEL_NAME: fixtureModelDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', DEVICES: 'cuda:0', PRECISION: 'int8' });
  const { app, runtime } = await buildApp(settings, { version: 'test', logger: false });
  t.after(() => app.close());
  await assert.rejects(runtime.start(), /^Error: precision int8 runs on cpu only .*cuda:0/);
});

const esm2 = (args: string[], cache: string) =>
  promisify(execFile)(process.execPath, [join(repoRoot, 'bin', 'esm2.js'), ...args], { env: { ...process.env, ESM2_COMPILE_CACHE: cache } });

test('esm2 embed --precision int8 records int8; esm2 compare prints the figures against fp32 (table and --json)', async (t) => {
  const dir = await tempDir(t);
  const fasta = join(dir, 'two.fasta');
  await writeFile(fasta, '>p1\nMKTVRQERLKSIVRILERSKEPVSGAQL\n>p2\nMSGSHHHHHHSSGLVPRGSH\n');
  const output = join(dir, 'int8.safetensors');
  await esm2(['embed', '--model', fixtureModelDir, '--input', fasta, '--output', output, '--precision', 'int8', '--no-progress'], cacheDir);
  const file = await SafetensorsFile.open(output);
  t.after(() => file.close());
  assert.equal(file.metadata.precision, 'int8');

  const table = await esm2(['compare', '--model', fixtureModelDir, '--input', fasta, '--threads', '1'], cacheDir);
  assert.match(table.stdout, /int8 on cpu against fp32 on cpu/);
  assert.match(table.stdout, /^worst\s+2\s+48\s+0\.99\d+/m);
  const { stdout } = await esm2(['compare', '--model', fixtureModelDir, '--input', fasta, '--threads', '1', '--json', '--no-masked'], cacheDir);
  const json = JSON.parse(stdout) as { precision: string; sequences: { id: string; meanCosine: number; dmsSpearman?: number }[]; worst: { meanCosine: number } };
  assert.equal(json.precision, 'int8');
  assert.deepEqual(json.sequences.map((r) => [r.id, r.dmsSpearman]), [['p1', undefined], ['p2', undefined]]);
  assert.ok(json.worst.meanCosine >= MIN_MEAN_COSINE);
});

/*
 * 2 of 32 channels at 30–50× is far harsher than a published checkpoint (a handful of 320–5120):
 * measured worst case mean cosine 0.99886 (the case with <mask> tokens), logits 7.5e-2, hence
 * bounds 0.998 and 0.1 here; t12 with 4 such channels meets 0.999 (bench:int8-accuracy).
 */
test('outlier channels (LayerNorm weights 30–50× on a few dims) run in float32 beside the int8 product, within bounds', async (t) => {
  const outliers: [number, number][] = [[3, 30], [17, 50]];
  const dir = await copyFixture(t, {
    edit: (tensors) => tensors.map((x) => (/layer\.\d+\.(attention\.)?LayerNorm\.weight$/.test(x.name) ? { ...x, data: x.data.map((v, i) => v * (outliers.find(([c]) => c === i)?.[1] ?? 1)) } : x)),
  });
  const edited = await loadCheckpoint(dir);
  t.after(() => edited.close());
  const int8 = await compileCheckpoint(edited, { variant: 'default', precision: 'int8', cacheDir });
  const ops = onnxProto.onnx.ModelProto.decode(await readFile(int8.onnxPath)).graph!.node!.map((n) => n.opType);
  // qkv and fc1 of each block read LayerNorm output: each gets a float32 product of the 2 outlier features.
  assert.equal(ops.filter((op) => op === 'Gather').length - 2, 2 * edited.config.numLayers, 'one Gather per decomposed Linear (besides the embedding and the token count)');
  assert.equal(ops.filter((op) => op === 'MatMul').length, 2 + 2 * edited.config.numLayers);

  const common = { modelDir: dir, cacheDir, threads: 1 };
  const reference = await startLocalEngine({ ...common, precision: 'fp32' });
  const quantized = await startLocalEngine({ ...common, precision: 'int8' });
  try {
    for (const c of cases) {
      const result = await compareSequence(reference.infer, quantized.infer, edited.tokenizer, edited.tokenizer.encode(c.sequence), edited.config.numLayers, { masked: false });
      assert.ok(result.meanCosine >= 0.998, `${c.id}: mean cosine ${result.meanCosine}`);
      assert.ok(result.logitsRelError <= 0.1, `${c.id}: logits ${result.logitsRelError}`);
    }
  } finally {
    await quantized.close();
    await reference.close();
  }
});
