import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { loadCheckpoint, type Esm2Checkpoint } from '../src/model/checkpoint.js';
import { esm2TensorShapes, rotaryInvFreq } from '../src/model/esm2-tensors.js';
import { ESM2_PRESETS, hfConfigJson, presetConfig } from '../src/model/presets.js';
import { writeRandomCheckpoint } from '../src/model/random-checkpoint.js';
import { SafetensorsFile } from '../src/model/safetensors.js';
import { fixtureModelDir, fixtureModelDirOf, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

async function open(t: TestContext, dir: string): Promise<Esm2Checkpoint> {
  const ckpt = await loadCheckpoint(dir);
  t.after(() => ckpt.close());
  return ckpt;
}

/** name → shape of every tensor stored in a safetensors file. */
async function storedShapes(file: string): Promise<Map<string, number[]>> {
  const st = await SafetensorsFile.open(file);
  const out = new Map([...st.tensors].map(([name, e]) => [name, e.shape]));
  await st.close();
  return out;
}

function stats(x: Float32Array): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (const v of x) {
    s += v;
    s2 += v * v;
  }
  const mean = s / x.length;
  return { mean, std: Math.sqrt(s2 / x.length - mean * mean) };
}

describe('presets', () => {
  test('have the published ESM-2, ESM-1b/1v and ESM C shapes', () => {
    const shapes = Object.fromEntries(Object.values(ESM2_PRESETS).map((p) => [p.name, [p.numLayers, p.hiddenSize, p.numHeads, p.intermediateSize]]));
    assert.deepEqual(shapes, {
      tiny: [2, 32, 4, 128],
      esm2_t6_8M_UR50D: [6, 320, 20, 1280],
      esm2_t12_35M_UR50D: [12, 480, 20, 1920],
      esm2_t30_150M_UR50D: [30, 640, 20, 2560],
      esm2_t33_650M_UR50D: [33, 1280, 20, 5120],
      esm2_t36_3B_UR50D: [36, 2560, 40, 10240],
      esm2_t48_15B_UR50D: [48, 5120, 40, 20480],
      esm1b_t33_650M_UR50S: [33, 1280, 20, 5120],
      esm1v_t33_650M_UR90S: [33, 1280, 20, 5120],
      'ESMC-300M': [30, 960, 15, 2560],
      'ESMC-600M': [36, 1152, 18, 3072],
    });
  });

  test('the tiny preset config.json equals the fixture config.json', async () => {
    const fixture = JSON.parse(await readFile(path.join(fixtureModelDir, 'config.json'), 'utf8')) as unknown;
    assert.deepEqual(hfConfigJson(presetConfig(ESM2_PRESETS.tiny)), fixture);
  });
});

describe('writeRandomCheckpoint', () => {
  test('tiny: the fixture layout exactly (files, names, shapes), loadable, plausible values', async (t) => {
    const dir = await tempDir(t);
    const result = await writeRandomCheckpoint({ preset: 'tiny', outDir: dir, seed: 1 });
    assert.equal(result.sharded, false);
    assert.deepEqual((await readdir(dir)).sort(), (await readdir(fixtureModelDir)).sort());
    assert.equal(await readFile(path.join(dir, 'vocab.txt'), 'utf8'), await readFile(path.join(fixtureModelDir, 'vocab.txt'), 'utf8'));
    for (const name of ['tokenizer_config.json', 'special_tokens_map.json', 'config.json']) {
      const ours = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as unknown;
      assert.deepEqual(ours, JSON.parse(await readFile(path.join(fixtureModelDir, name), 'utf8')), name);
    }
    const ours = await storedShapes(path.join(dir, 'model.safetensors'));
    const theirs = await storedShapes(path.join(fixtureModelDir, 'model.safetensors'));
    assert.deepEqual(new Map([...ours].sort()), new Map([...theirs].sort()));

    const ckpt = await open(t, dir);
    assert.equal(ckpt.hasStoredInvFreq, true);
    assert.deepEqual(await ckpt.readTensor('encoder.layer.1.attention.self.rotary_embeddings.inv_freq'), rotaryInvFreq(8));
    assert.deepEqual(await ckpt.readTensor('lm_head.decoder.weight'), await ckpt.readTensor('embeddings.word_embeddings.weight'));
    const ln = stats(await ckpt.readTensor('encoder.layer.0.LayerNorm.weight'));
    assert.ok(Math.abs(ln.mean - 1) < 0.02 && ln.std > 0.005, `LayerNorm weight ${JSON.stringify(ln)}`);
    const w = stats(await ckpt.readTensor('encoder.layer.1.intermediate.dense.weight'));
    assert.ok(Math.abs(w.mean) < 0.003 && Math.abs(w.std - 0.02) < 0.002, `dense weight ${JSON.stringify(w)}`);
    assert.notDeepEqual(await ckpt.readTensor('encoder.layer.0.attention.self.query.weight'), await ckpt.readTensor('encoder.layer.0.attention.self.key.weight'));
  });

  test('same seed gives identical bytes; another seed differs', async (t) => {
    const [a, b, c] = [await tempDir(t), await tempDir(t), await tempDir(t)];
    await writeRandomCheckpoint({ preset: 'tiny', outDir: a, seed: 7 });
    await writeRandomCheckpoint({ preset: 'tiny', outDir: b, seed: 7 });
    await writeRandomCheckpoint({ preset: 'tiny', outDir: c, seed: 8 });
    const bytes = (dir: string) => readFile(path.join(dir, 'model.safetensors'));
    assert.ok((await bytes(a)).equals(await bytes(b)));
    assert.ok(!(await bytes(a)).equals(await bytes(c)));
    assert.equal((await bytes(a)).length, (await bytes(c)).length);
    assert.notEqual(await (await open(t, a)).fingerprint(), await (await open(t, c)).fingerprint());
  });

  test('esm2_t6_8M_UR50D loads with the published shapes', async (t) => {
    const dir = await tempDir(t);
    const result = await writeRandomCheckpoint({ preset: 'esm2_t6_8M_UR50D', outDir: dir, seed: 0 });
    const ckpt = await open(t, dir);
    assert.equal(result.tensorCount, esm2TensorShapes(ckpt.config).length + 1); // + position embeddings
    assert.deepEqual(ckpt.tensorShape('embeddings.word_embeddings.weight'), [33, 320]);
    assert.deepEqual(ckpt.tensorShape('encoder.layer.5.intermediate.dense.weight'), [1280, 320]);
    assert.deepEqual(ckpt.tensorShape('contact_head.regression.weight'), [1, 120]);
    assert.deepEqual(ckpt.tensorShape('encoder.layer.0.attention.self.rotary_embeddings.inv_freq'), [8]);
    const stored = await storedShapes(path.join(dir, 'model.safetensors'));
    assert.deepEqual(stored.get('esm.embeddings.position_embeddings.weight'), [1026, 320]);
    assert.ok(stored.has('lm_head.decoder.weight') && stored.has('esm.contact_head.regression.bias'));
    // The published model has 7,840,794 parameters (position embeddings included); the file also stores
    // the tied decoder copy (33 × 320) and the six inv_freq buffers (8 each).
    assert.equal(result.tensorBytes, (7_840_794 + 33 * 320 + 6 * 8) * 4);
  });

  test('ESM C and ESM-1b shapes: the hub layout of ESM C (tokenizer.json, fused q/k/v), ESM-1b\'s absolute positions; both compile-ready', async (t) => {
    const esmcDir = await tempDir(t);
    const small = { name: 'esmc-small', numLayers: 2, hiddenSize: 64, numHeads: 4, intermediateSize: 256, family: 'esmc' as const };
    const result = await writeRandomCheckpoint({ preset: small, outDir: esmcDir, seed: 3 });
    const files = await readdir(esmcDir);
    assert.ok(files.includes('tokenizer.json') && !files.includes('vocab.txt'));
    const esmc = await open(t, esmcDir);
    assert.equal(esmc.config.family, 'esmc');
    assert.equal(esmc.tokenizer.tokenCount, 33);
    assert.equal(esmc.tokenizer.vocab[31], '|');
    // The same stored names as the fixture's hub layout.
    const fixture = await storedShapes(path.join(fixtureModelDirOf('esmc_tiny'), 'model.safetensors'));
    const written = await storedShapes(path.join(esmcDir, 'model.safetensors'));
    assert.deepEqual([...written.keys()].sort(), [...fixture.keys()].filter((n) => !n.endsWith('_extra_state')).sort());
    assert.equal(result.tensorCount, written.size);
    const qLn = await esmc.readTensor('layers.1.self_attn.q_norm.weight');
    assert.ok(Math.abs(stats(qLn).mean - 1) < 0.01, 'LayerNorm gains near 1');
    assert.deepEqual(presetConfig(ESM2_PRESETS['ESMC-300M']).intermediateSize, 2560);

    const esm1bDir = await tempDir(t);
    await writeRandomCheckpoint({ preset: { ...small, name: 'esm1b-small', hiddenSize: 32, intermediateSize: 128, family: 'esm1' }, outDir: esm1bDir, seed: 3 });
    const esm1b = await open(t, esm1bDir);
    assert.equal(esm1b.config.family, 'esm1');
    assert.equal(esm1b.config.embLayerNormBefore, true);
    assert.deepEqual(esm1b.tensorShape('embeddings.position_embeddings.weight'), [1026, 32]);
    assert.equal(ESM2_PRESETS.esm1v_t33_650M_UR90S.family, 'esm1');
  });

  test('F16 output and forced sharding load and match the F32 single-file values', async (t) => {
    const single = await tempDir(t);
    await writeRandomCheckpoint({ preset: 'tiny', outDir: single, seed: 3 });
    const sharded = await tempDir(t);
    const result = await writeRandomCheckpoint({ preset: 'tiny', outDir: sharded, seed: 3, dtype: 'F16', shardAboveBytes: 0, maxShardBytes: 60_000 });
    assert.equal(result.sharded, true);
    const files = (await readdir(sharded)).filter((f) => f.endsWith('.safetensors')).sort();
    assert.deepEqual(files, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    const index = JSON.parse(await readFile(path.join(sharded, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    assert.equal(index.metadata.total_size, result.tensorBytes);
    assert.equal(Object.keys(index.weight_map).length, 46);

    const a = await open(t, single);
    const b = await open(t, sharded);
    assert.equal(b.tensorDtype('lm_head.dense.weight'), 'F16');
    for (const name of a.tensorNames) {
      const x = await a.readTensor(name);
      const y = await b.readTensor(name);
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= Math.abs(x[i]) * 2 ** -11 + 2 ** -24, `${name}[${i}]`);
    }

    // Re-using the directory for an unsharded checkpoint removes the stale index and shards.
    await writeRandomCheckpoint({ preset: 'tiny', outDir: sharded, seed: 3 });
    assert.deepEqual((await readdir(sharded)).filter((f) => f.includes('safetensors')), ['model.safetensors']);
  });
});

describe('esm2 init-random', () => {
  const run = promisify(execFile);
  const cli = path.join(repoRoot, 'bin', 'esm2.js');

  test('writes a loadable checkpoint and says what it wrote', async (t) => {
    const dir = path.join(await tempDir(t), 'out');
    const { stdout } = await run(process.execPath, [cli, 'init-random', '--preset', 'tiny', '--out', dir, '--seed', '5', '--dtype', 'f16']);
    assert.match(stdout, /wrote tiny .*f16, seed 5/);
    assert.ok(stdout.includes(path.join(dir, 'model.safetensors')), stdout);
    assert.equal((await open(t, dir)).tensorDtype('lm_head.bias'), 'F16');
  });

  test('refuses an unknown preset and a bad seed', async (t) => {
    const dir = await tempDir(t);
    await assert.rejects(run(process.execPath, [cli, 'init-random', '--preset', 'esm3', '--out', dir]), (e: { stderr: string; code: number }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /Allowed choices are tiny, esm2_t6_8M_UR50D/);
      return true;
    });
    await assert.rejects(run(process.execPath, [cli, 'init-random', '--preset', 'tiny', '--out', dir, '--seed', '-1']), /non-negative integer/);
  });
});
