import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { familyResidueLimit, loadConfig, parseEsmConfig } from '../src/model/config.js';
import { CheckpointError } from '../src/model/errors.js';
import { fixtureModelDir, fixtureModelDirOf } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

const fixtureRaw = JSON.parse(readFileSync(path.join(fixtureModelDir, 'config.json'), 'utf8')) as Record<string, unknown>;
const esm1bRaw = JSON.parse(readFileSync(path.join(fixtureModelDirOf('esm1b_tiny'), 'config.json'), 'utf8')) as Record<string, unknown>;

function refused(edit: (c: Record<string, unknown>) => void, field: string, detail?: RegExp, base = fixtureRaw): void {
  const raw = structuredClone(base);
  edit(raw);
  assert.throws(
    () => parseEsmConfig(raw, 'some/config.json'),
    (err: unknown) => {
      assert.ok(err instanceof CheckpointError, String(err));
      assert.equal(err.file, 'some/config.json');
      assert.ok(err.message.startsWith('some/config.json: '), err.message);
      assert.ok(err.message.includes(`"${field}"`), `message should name ${field}: ${err.message}`);
      assert.ok(!err.message.includes('\n'));
      if (detail) assert.match(err.message, detail);
      return true;
    },
  );
}

describe('parseEsmConfig', () => {
  test('reads the fixture config', () => {
    assert.deepEqual(parseEsmConfig(fixtureRaw, 'config.json'), {
      family: 'esm2',
      embLayerNormBefore: false,
      hiddenSize: 32,
      numLayers: 2,
      numHeads: 4,
      intermediateSize: 128,
      layerNormEps: 1e-5,
      tokenDropout: true,
      maskTokenId: 32,
      padTokenId: 1,
      vocabSize: 33,
      maxPositionEmbeddings: 1026,
      residueScaling: 1,
    });
  });

  test('ESM C in the hub layout and the Transformers port layout read as the same config', () => {
    const read = (layout: 'model' | 'model_transformers') => JSON.parse(readFileSync(path.join(fixtureModelDirOf('esmc_tiny', layout), 'config.json'), 'utf8')) as Record<string, unknown>;
    const hub = parseEsmConfig(read('model'), 'config.json');
    assert.deepEqual(hub, parseEsmConfig(read('model_transformers'), 'config.json'));
    assert.deepEqual(hub, {
      family: 'esmc',
      embLayerNormBefore: false,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      intermediateSize: 256, // 8/3 × 64 rounded up to 256
      layerNormEps: 1e-5,
      tokenDropout: false,
      maskTokenId: 32,
      padTokenId: 1,
      vocabSize: 64,
      maxPositionEmbeddings: 2048,
      residueScaling: Math.sqrt(2 / 36),
    });
    assert.equal(familyResidueLimit(hub), Infinity);
    // The published widths: ESM C 300M (960 wide) and 600M (1152 wide).
    assert.equal(parseEsmConfig({ ...read('model'), d_model: 960, n_heads: 15, n_layers: 30 }, 'c').intermediateSize, 2560);
    assert.equal(parseEsmConfig({ ...read('model'), d_model: 1152, n_heads: 18, n_layers: 36 }, 'c').intermediateSize, 3072);
    const port = read('model_transformers');
    refused((c) => (c.hidden_act = 'gelu'), 'hidden_act', /"silu"/, port);
    refused((c) => (c.num_key_value_heads = 2), 'num_key_value_heads', /grouped-query/, port);
    refused((c) => (c.rope_parameters = { rope_type: 'default', rope_theta: 500000 }), 'rope_parameters.rope_theta', /10000/, port);
    refused((c) => (c.tie_word_embeddings = true), 'tie_word_embeddings', /own output head/, read('model'));
    refused((c) => delete c.d_model, 'd_model', /missing/, read('model'));
    refused((c) => (c.model_type = 'esm3'), 'model_type', /"esm" \(ESM-2, ESM-1b\/1v\) or "esmc" \(ESM C\)/);
  });

  test('absolute position embeddings are the ESM-1b / ESM-1v family, with its 1022-residue limit', () => {
    const config = parseEsmConfig(esm1bRaw, 'config.json');
    assert.equal(config.family, 'esm1');
    assert.equal(config.embLayerNormBefore, true);
    assert.equal(familyResidueLimit(config), 1022);
    assert.equal(familyResidueLimit(parseEsmConfig(fixtureRaw, 'config.json')), Infinity);
    // An ESM-2 config that only says "absolute" becomes ESM-1 too: the tensors then decide (checkpoint.ts).
    assert.equal(parseEsmConfig({ ...fixtureRaw, position_embedding_type: 'absolute' }, 'config.json').family, 'esm1');
  });

  test('refuses unknown position embeddings and ESM-1b settings on ESM-2', () => {
    refused((c) => (c.position_embedding_type = 'relative_key'), 'position_embedding_type', /expected "rotary" \(ESM-2\) or "absolute" \(ESM-1b\/ESM-1v\)/);
    refused((c) => delete c.position_embedding_type, 'position_embedding_type', /missing/);
    refused((c) => (c.emb_layer_norm_before = 'yes'), 'emb_layer_norm_before', /true or false/, esm1bRaw);
    refused((c) => (c.max_position_embeddings = 4), 'max_position_embeddings', /no room/, esm1bRaw);
  });

  test('refuses each unsupported setting, naming the field', () => {
    refused((c) => (c.emb_layer_norm_before = true), 'emb_layer_norm_before');
    refused((c) => (c.hidden_size = 30), 'hidden_size', /not divisible by num_attention_heads 4/);
    refused((c) => Object.assign(c, { hidden_size: 36, num_attention_heads: 12 }), 'num_attention_heads', /odd/);
    refused((c) => (c.hidden_act = 'relu'), 'hidden_act');
    refused((c) => (c.is_folding_model = true), 'is_folding_model');
    refused((c) => (c.model_type = 'bert'), 'model_type');
    refused((c) => (c.mask_token_id = 33), 'mask_token_id', /outside the vocabulary/);
  });

  test('refuses missing and non-numeric fields', () => {
    for (const field of ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'vocab_size',
      'max_position_embeddings', 'mask_token_id', 'pad_token_id', 'layer_norm_eps', 'token_dropout']) {
      refused((c) => delete c[field], field, /missing/);
    }
    refused((c) => (c.hidden_size = '32'), 'hidden_size', /integer/);
    refused((c) => (c.num_hidden_layers = 2.5), 'num_hidden_layers', /integer/);
    refused((c) => (c.num_hidden_layers = 0), 'num_hidden_layers', /at least 1/);
    refused((c) => (c.layer_norm_eps = 'tiny'), 'layer_norm_eps');
    refused((c) => (c.token_dropout = 1), 'token_dropout');
  });

  test('refuses a non-object', () => {
    assert.throws(() => parseEsmConfig([1, 2], 'config.json'), CheckpointError);
    assert.throws(() => parseEsmConfig(null, 'config.json'), CheckpointError);
  });
});

describe('loadConfig', () => {
  test('names the file when it is missing or not JSON', async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'config.json');
    await assert.rejects(loadConfig(dir), (e: unknown) => e instanceof CheckpointError && e.file === file && /not found/.test(e.message));
    await writeFile(file, '{"hidden_size": 32,');
    await assert.rejects(loadConfig(dir), (e: unknown) => e instanceof CheckpointError && e.file === file && /invalid JSON/.test(e.message));
  });
});
