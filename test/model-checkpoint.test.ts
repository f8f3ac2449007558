import assert from 'node:assert/strict';
import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { loadCheckpoint, type Esm2Checkpoint } from '../src/model/checkpoint.js';
import { CheckpointError } from '../src/model/errors.js';
import { esm2TensorShapes, hfStoredName, rotaryInvFreq } from '../src/model/esm2-tensors.js';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../src/model/float-formats.js';
import { SafetensorsFile, writeSafetensors } from '../src/model/safetensors.js';
import { copyFixture, editJson, readFixtureTensors, toWritable, type FixtureTensor } from './helpers/fixture-copy.js';
import { fixtureModelDir, fixtureModelDirOf } from './helpers/paths.js';

const fixture = await readFixtureTensors();
const byName = new Map(fixture.map((x) => [x.name, x]));
const QUERY0 = 'encoder.layer.0.attention.self.query.weight';

async function open(t: TestContext, dir: string): Promise<Esm2Checkpoint> {
  const ckpt = await loadCheckpoint(dir);
  t.after(() => ckpt.close());
  return ckpt;
}

/** Every ESM-2 tensor of `ckpt` equals `expected(storedName, values)` element for element. */
async function assertTensors(ckpt: Esm2Checkpoint, expected: (x: FixtureTensor) => Float32Array): Promise<void> {
  for (const spec of esm2TensorShapes(ckpt.config)) {
    const want = expected(byName.get(hfStoredName(spec.name))!);
    assert.deepEqual(await ckpt.readTensor(spec.name), want, spec.name);
  }
}

/** One CheckpointError, one line, naming `file` (by base name) and `tensor`. */
async function rejectsWith(p: Promise<unknown>, file: string, re: RegExp, tensor?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CheckpointError, `expected CheckpointError, got ${String(err)}`);
    assert.equal(path.basename(err.file), file, err.message);
    assert.equal(err.tensor, tensor, err.message);
    assert.ok(!err.message.includes('\n'));
    assert.ok(err.message.includes(file), err.message);
    if (tensor) assert.ok(err.message.includes(`"${tensor}"`), err.message);
    assert.match(err.message, re);
    return true;
  });
}

const without = (...names: string[]) => (ts: FixtureTensor[]) => ts.filter((x) => !names.includes(x.name));

describe('loadCheckpoint on the golden fixture', () => {
  test('loads, validates every tensor, and reads the stored values', async (t) => {
    const ckpt = await open(t, fixtureModelDir);
    assert.equal(ckpt.dir, fixtureModelDir);
    assert.equal(ckpt.config.numLayers, 2);
    assert.equal(ckpt.tokenizer.maskId, 32);
    assert.equal(ckpt.hasStoredInvFreq, true);
    const specs = esm2TensorShapes(ckpt.config);
    assert.equal(specs.length, 45);
    assert.deepEqual(ckpt.tensorNames, specs.map((s) => s.name));
    for (const spec of specs) {
      assert.deepEqual(ckpt.tensorShape(spec.name), spec.shape, spec.name);
      assert.deepEqual(ckpt.tensorShape(spec.name), byName.get(hfStoredName(spec.name))!.shape, spec.name);
      assert.equal(ckpt.tensorDtype(spec.name), 'F32');
      const values = await ckpt.readTensor(spec.name);
      assert.ok(values.every(Number.isFinite), spec.name);
    }
    await assertTensors(ckpt, (x) => x.data);
    assert.deepEqual(await ckpt.readTensor('encoder.layer.1.attention.self.rotary_embeddings.inv_freq'), rotaryInvFreq(8));
    await rejectsWith(ckpt.readTensor('embeddings.position_embeddings.weight'), 'model.safetensors', /not an ESM-2 tensor name/, 'embeddings.position_embeddings.weight');
  });

  test('re-saved F16 and BF16 copies load with exactly rounded values', async (t) => {
    const f16 = await open(t, await copyFixture(t, { dtype: 'F16' }));
    assert.equal(f16.tensorDtype(QUERY0), 'F16');
    await assertTensors(f16, (x) => float16ToFloat32(float32ToFloat16(x.data)));
    const bf16 = await open(t, await copyFixture(t, { dtype: 'BF16' }));
    assert.equal(bf16.tensorDtype(QUERY0), 'BF16');
    await assertTensors(bf16, (x) => bfloat16ToFloat32(float32ToBfloat16(x.data)));
    // Rounding really happened: the copies differ from the float32 original.
    assert.notDeepEqual(await f16.readTensor(QUERY0), byName.get(`esm.${QUERY0}`)!.data);
  });

  test('a sharded copy (2 shards + index) reads identical tensors', async (t) => {
    const dir = await copyFixture(t, { noWeights: true });
    const half = Math.floor(fixture.length / 2);
    const shards = [fixture.slice(0, half), fixture.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const name = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(path.join(dir, name), toWritable(shard, 'F32'));
      for (const x of shard) weightMap[x.name] = name;
    }
    await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    await assertTensors(await open(t, dir), (x) => x.data);

    await rm(path.join(dir, 'model-00002-of-00002.safetensors'));
    await rejectsWith(loadCheckpoint(dir), 'model-00002-of-00002.safetensors', /shard listed in model.safetensors.index.json is missing/);
  });

  test('accepts EsmModel names (no esm. prefix) and a missing decoder (tied to the word embeddings)', async (t) => {
    const unprefixed = await open(t, await copyFixture(t, { edit: (ts) => ts.map((x) => ({ ...x, name: x.name.replace(/^esm\./, '') })) }));
    await assertTensors(unprefixed, (x) => x.data);
    const untied = await open(t, await copyFixture(t, { edit: without('lm_head.decoder.weight') }));
    assert.deepEqual(await untied.readTensor('lm_head.decoder.weight'), byName.get('esm.embeddings.word_embeddings.weight')!.data);
  });

  test('inv_freq is read when stored and computed only when absent', async (t) => {
    const name = 'encoder.layer.0.attention.self.rotary_embeddings.inv_freq';
    const custom = Float32Array.of(1, 0.5, 0.25, 0.125);
    const edited = await open(t, await copyFixture(t, { edit: (ts) => ts.map((x) => (x.name === `esm.${name}` ? { ...x, data: custom } : x)) }));
    assert.deepEqual(await edited.readTensor(name), custom);
    const invFreqs = fixture.filter((x) => x.name.endsWith('inv_freq')).map((x) => x.name);
    const computed = await open(t, await copyFixture(t, { edit: without(...invFreqs, 'esm.embeddings.position_embeddings.weight') }));
    assert.equal(computed.hasStoredInvFreq, false);
    assert.deepEqual(await computed.readTensor(name), byName.get(`esm.${name}`)!.data);
  });
});

describe('loadCheckpoint on the ESM-1b fixture (absolute positions)', () => {
  test('reads the position table and embedding LayerNorm, and has no rotary inv_freq', async (t) => {
    const ckpt = await open(t, fixtureModelDirOf('esm1b_tiny'));
    assert.equal(ckpt.config.family, 'esm1');
    const specs = esm2TensorShapes(ckpt.config);
    assert.deepEqual(ckpt.tensorNames, specs.map((s) => s.name));
    assert.equal(specs.length, 45 - 2 + 3); // no inv_freq per layer; position table + LayerNorm weight and bias
    assert.deepEqual(ckpt.tensorShape('embeddings.position_embeddings.weight'), [1026, 32]);
    assert.deepEqual(ckpt.tensorShape('embeddings.layer_norm.weight'), [32]);
    assert.equal(specs.some((s) => s.name.endsWith('inv_freq')), false);
    await rejectsWith(ckpt.readTensor('encoder.layer.0.attention.self.rotary_embeddings.inv_freq'), 'model.safetensors', /not an ESM-2 tensor name/, 'encoder.layer.0.attention.self.rotary_embeddings.inv_freq');
  });

  test('a missing or misshapen position table or embedding LayerNorm is named', async (t) => {
    const missing = await copyFixture(t, { fixture: 'esm1b_tiny', edit: without('esm.embeddings.layer_norm.bias') });
    await rejectsWith(loadCheckpoint(missing), 'model.safetensors', /missing \(looked for "esm.embeddings.layer_norm.bias"/, 'embeddings.layer_norm.bias');
    const short = await copyFixture(t, {
      fixture: 'esm1b_tiny',
      edit: (ts) => ts.map((x) => (x.name === 'esm.embeddings.position_embeddings.weight' ? { ...x, shape: [514, 32], data: x.data.subarray(0, 514 * 32) } : x)),
    });
    await rejectsWith(loadCheckpoint(short), 'model.safetensors', /expected shape \[1026,32\], found \[514,32\]$/, 'esm.embeddings.position_embeddings.weight');
    // An ESM-2 checkpoint whose config says "absolute" lacks the embedding LayerNorm ESM-1b needs.
    const relabelled = await copyFixture(t);
    await editJson(relabelled, 'config.json', (c) => Object.assign(c, { position_embedding_type: 'absolute', emb_layer_norm_before: true }));
    await rejectsWith(loadCheckpoint(relabelled), 'model.safetensors', /missing/, 'embeddings.layer_norm.weight');
  });

  test('no contact head at all loads without contacts; half of one is refused', async (t) => {
    const headless = await open(t, await copyFixture(t, { fixture: 'esm1b_tiny', edit: without('esm.contact_head.regression.weight', 'esm.contact_head.regression.bias') }));
    assert.equal(headless.hasContactHead, false);
    assert.equal(headless.tensorNames.some((n) => n.startsWith('contact_head.')), false);
    assert.equal((await open(t, fixtureModelDirOf('esm1b_tiny'))).hasContactHead, true);
    const half = await copyFixture(t, { fixture: 'esm1b_tiny', edit: without('esm.contact_head.regression.bias') });
    await rejectsWith(loadCheckpoint(half), 'model.safetensors', /missing/, 'contact_head.regression.bias');
  });
});

describe('loadCheckpoint on the ESM C fixture (two layouts)', () => {
  test('both layouts give the same tensors under the same names; the hub\'s fused q/k/v and gate/up are read as row ranges', async (t) => {
    const hub = await open(t, fixtureModelDirOf('esmc_tiny'));
    const port = await open(t, fixtureModelDirOf('esmc_tiny', 'model_transformers'));
    assert.equal(hub.config.family, 'esmc');
    assert.deepEqual(hub.tensorNames, port.tensorNames);
    assert.equal(hub.hasContactHead, false);
    for (const name of hub.tensorNames) assert.deepEqual(await hub.readTensor(name), await port.readTensor(name), name);
    const fused = (await readFixtureTensors('esmc_tiny')).find((x) => x.name === 'esmc.transformer.blocks.1.attn.layernorm_qkv.weight')!;
    assert.deepEqual(await hub.readTensor('layers.1.self_attn.k_proj.weight'), fused.data.slice(64 * 64, 2 * 64 * 64));
    assert.equal(hub.tokenizer.vocab.length, 64);
    const esm2 = await open(t, fixtureModelDirOf('esm2_tiny'));
    assert.notEqual(await hub.fingerprint(), await esm2.fingerprint());
    assert.equal(await hub.fingerprint(), await hub.fingerprint());
  });

  test('a missing or misshapen ESM C tensor is named by its stored name; tokenizer.json problems name the file', async (t) => {
    const missing = await copyFixture(t, { fixture: 'esmc_tiny', edit: without('esmc.transformer.blocks.1.attn.q_ln.weight') });
    await rejectsWith(loadCheckpoint(missing), 'model.safetensors', /missing \(looked for "esmc.transformer.blocks.1.attn.q_ln.weight" and "transformer.blocks.1.attn.q_ln.weight"/, 'layers.1.self_attn.q_norm.weight');
    const fc1 = 'esmc.transformer.blocks.0.ffn.fc1_weight';
    const short = await copyFixture(t, { fixture: 'esmc_tiny', edit: (ts) => ts.map((x) => (x.name === fc1 ? { ...x, shape: [256, 64], data: x.data.subarray(0, 256 * 64) } : x)) });
    await rejectsWith(loadCheckpoint(short), 'model.safetensors', /expected shape \[512,64\], found \[256,64\]$/, fc1);
    const extra = await copyFixture(t, { fixture: 'esmc_tiny', edit: (ts) => [...ts, { ...ts.find((x) => x.name === 'esmc.transformer.blocks.1.attn.q_ln.weight')!, name: 'esmc.transformer.blocks.2.attn.q_ln.weight' }] });
    await rejectsWith(loadCheckpoint(extra), 'model.safetensors', /layer 2 exists but config.json num_hidden_layers is 2/, 'esmc.transformer.blocks.2.attn.q_ln.weight');
    const gap = await copyFixture(t, { fixture: 'esmc_tiny' });
    await editJson(gap, 'tokenizer.json', (j) => void delete (j.model as { vocab: Record<string, number> }).vocab.L);
    await rejectsWith(loadCheckpoint(gap), 'tokenizer.json', /token ids are not contiguous: no token has id 4/);
  });
});

describe('broken checkpoints give one clear CheckpointError', () => {
  test('missing tensor', async (t) => {
    const dir = await copyFixture(t, { edit: without('esm.encoder.layer.1.output.dense.weight') });
    await rejectsWith(loadCheckpoint(dir), 'model.safetensors',
      /missing \(looked for "esm.encoder.layer.1.output.dense.weight" and "encoder.layer.1.output.dense.weight" in model.safetensors\)/,
      'encoder.layer.1.output.dense.weight');
  });

  test('wrong shape', async (t) => {
    const dir = await copyFixture(t, {
      edit: (ts) => ts.map((x) => (x.name === `esm.${QUERY0}` ? { ...x, shape: [32, 16], data: x.data.subarray(0, 512) } : x)),
    });
    await rejectsWith(loadCheckpoint(dir), 'model.safetensors', /: expected shape \[32,32\], found \[32,16\]$/, `esm.${QUERY0}`);
  });

  test('truncated weights file', async (t) => {
    const dir = await copyFixture(t);
    const file = path.join(dir, 'model.safetensors');
    await truncate(file, (await readFile(file)).length - 100);
    await rejectsWith(loadCheckpoint(dir), 'model.safetensors', /truncated/, 'lm_head.layer_norm.weight');
  });

  test('bad headers: garbage length, invalid JSON, offsets past the end', async (t) => {
    const dir = await copyFixture(t);
    const file = path.join(dir, 'model.safetensors');
    const original = await readFile(file);
    const headerLen = Number(original.readBigUInt64LE(0));

    const garbage = Buffer.from(original);
    garbage.writeBigUInt64LE(0xdeadbeefdeadbeefn, 0);
    await writeFile(file, garbage);
    await rejectsWith(loadCheckpoint(dir), 'model.safetensors', /header length \d+ is impossible/);

    const invalid = Buffer.from(original);
    invalid.write('}', 8);
    await writeFile(file, invalid);
    await rejectsWith(loadCheckpoint(dir), 'model.safetensors', /header is not valid JSON/);

    const header = JSON.parse(original.subarray(8, 8 + headerLen).toString()) as Record<string, { data_offsets: number[] }>;
    const moved = header['lm_head.bias'].data_offsets.map((o) => o + 1_000_000);
    header['lm_head.bias'].data_offsets = moved;
    const json = Buffer.from(JSON.stringify(header));
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    await writeFile(file, Buffer.concat([prefix, json, original.subarray(8 + headerLen)]));
    await rejectsWith(loadCheckpoint(dir), 'model.safetensors', /run past the end of the data section/, 'lm_head.bias');
  });

  test('vocab.txt size differs from config vocab_size', async (t) => {
    const dir = await copyFixture(t);
    const vocab = (await readFile(path.join(dir, 'vocab.txt'), 'utf8')).trimEnd().split('\n');
    await writeFile(path.join(dir, 'vocab.txt'), vocab.filter((v) => v !== '.').join('\n'));
    await rejectsWith(loadCheckpoint(dir), 'vocab.txt', /has 32 tokens but config.json vocab_size is 33/);
  });

  test('mask_token_id disagrees with the vocab', async (t) => {
    const dir = await copyFixture(t);
    await editJson(dir, 'config.json', (c) => (c.mask_token_id = 31));
    await rejectsWith(loadCheckpoint(dir), 'config.json', /mask_token_id is 31 but <mask> is token 32/);
  });

  test('weights with more layers than the config', async (t) => {
    const dir = await copyFixture(t);
    await editJson(dir, 'config.json', (c) => (c.num_hidden_layers = 1));
    await rejectsWith(loadCheckpoint(dir), 'model.safetensors', /layer 1 exists but config.json num_hidden_layers is 1/, 'esm.encoder.layer.1.LayerNorm.bias');
  });

  test('missing config.json and missing weights', async (t) => {
    const noConfig = await copyFixture(t);
    await rm(path.join(noConfig, 'config.json'));
    await rejectsWith(loadCheckpoint(noConfig), 'config.json', /not found/);
    const noWeights = await copyFixture(t, { noWeights: true });
    await rejectsWith(loadCheckpoint(noWeights), 'model.safetensors', /not found/);
  });
});

describe('fingerprint', () => {
  test('depends on content, not location, and sees a changed weight', async (t) => {
    const original = await open(t, fixtureModelDir);
    const fp = await original.fingerprint();
    assert.match(fp, /^[0-9a-f]{64}$/);
    assert.equal(await original.fingerprint(), fp);
    assert.equal(await (await open(t, await copyFixture(t))).fingerprint(), fp);

    const flipped = await copyFixture(t);
    const file = path.join(flipped, 'model.safetensors');
    const bytes = await readFile(file);
    const st = await SafetensorsFile.open(file);
    const offset = st.dataStart + st.entry(`esm.${QUERY0}`).begin;
    await st.close();
    bytes[offset] ^= 1;
    await writeFile(file, bytes);
    assert.notEqual(await (await open(t, flipped)).fingerprint(), fp);

    const eps = await copyFixture(t);
    await editJson(eps, 'config.json', (c) => (c.layer_norm_eps = 1e-6));
    assert.notEqual(await (await open(t, eps)).fingerprint(), fp);
  });
});
