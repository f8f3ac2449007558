// Shapes of the published models — ESM-2 (facebook/esm2_*), ESM-1b / ESM-1v (facebook/esm1b_*,
// esm1v_*) and ESM C (biohub/ESMC-*) — for random checkpoints that exercise the real sizes without
// downloading weights. `tiny` matches the ESM-2 test fixture in test/fixtures/golden.
import type { EsmConfig, ModelFamily } from './config.js';
import { esm2TensorShapes } from './esm2-tensors.js';
import { esmcFfnHidden, esmcResidueScaling } from './esmc-config.js';
import { esmcHubTensorList } from './esmc-tensors.js';
import { numel } from './safetensors-format.js';
import { ESM2_VOCAB } from './tokenizer.js';

export interface Esm2Preset {
  name: string;
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  intermediateSize: number;
  /** ESM-2 when absent. */
  family?: ModelFamily;
}

const preset = (name: string, numLayers: number, hiddenSize: number, numHeads: number, intermediateSize: number, family?: ModelFamily): Esm2Preset => ({
  name,
  numLayers,
  hiddenSize,
  numHeads,
  intermediateSize,
  ...(family ? { family } : {}),
});

export const ESM2_PRESETS: Readonly<Record<string, Esm2Preset>> = Object.freeze({
  tiny: preset('tiny', 2, 32, 4, 128),
  esm2_t6_8M_UR50D: preset('esm2_t6_8M_UR50D', 6, 320, 20, 1280),
  esm2_t12_35M_UR50D: preset('esm2_t12_35M_UR50D', 12, 480, 20, 1920),
  esm2_t30_150M_UR50D: preset('esm2_t30_150M_UR50D', 30, 640, 20, 2560),
  esm2_t33_650M_UR50D: preset('esm2_t33_650M_UR50D', 33, 1280, 20, 5120),
  esm2_t36_3B_UR50D: preset('esm2_t36_3B_UR50D', 36, 2560, 40, 10240),
  esm2_t48_15B_UR50D: preset('esm2_t48_15B_UR50D', 48, 5120, 40, 20480),
  // ESM-1b and each of the five ESM-1v checkpoints share one shape (roberta_large, 1026 positions).
  esm1b_t33_650M_UR50S: preset('esm1b_t33_650M_UR50S', 33, 1280, 20, 5120, 'esm1'),
  esm1v_t33_650M_UR90S: preset('esm1v_t33_650M_UR90S', 33, 1280, 20, 5120, 'esm1'),
  'ESMC-300M': preset('ESMC-300M', 30, 960, 15, esmcFfnHidden(960), 'esmc'),
  'ESMC-600M': preset('ESMC-600M', 36, 1152, 18, esmcFfnHidden(1152), 'esmc'),
});

export function getPreset(name: string): Esm2Preset {
  const p = ESM2_PRESETS[name];
  if (!p) throw new Error(`unknown preset "${name}"; known: ${Object.keys(ESM2_PRESETS).join(', ')}`);
  return p;
}

/** Constants shared by every published ESM-2 config. */
const ESM2_COMMON = {
  family: 'esm2',
  embLayerNormBefore: false,
  vocabSize: ESM2_VOCAB.length,
  maxPositionEmbeddings: 1026,
  layerNormEps: 1e-5,
  tokenDropout: true,
  maskTokenId: 32,
  padTokenId: 1,
  residueScaling: 1,
} as const;

export function presetConfig(p: Esm2Preset): EsmConfig {
  const shape = { hiddenSize: p.hiddenSize, numLayers: p.numLayers, numHeads: p.numHeads, intermediateSize: p.intermediateSize };
  if (p.family === 'esm1') return { ...shape, ...ESM2_COMMON, family: 'esm1', embLayerNormBefore: true };
  if (p.family === 'esmc') {
    return { ...shape, ...ESM2_COMMON, family: 'esmc', vocabSize: 64, maxPositionEmbeddings: 2048, tokenDropout: false, residueScaling: esmcResidueScaling(p.numLayers) };
  }
  return { ...shape, ...ESM2_COMMON };
}

/** The full HF `config.json` object, with the same fields (and order) as the published checkpoints (ESM C: the hub layout's). */
export function hfConfigJson(config: EsmConfig, torchDtype: 'float32' | 'float16' = 'float32'): Record<string, unknown> {
  if (config.family === 'esmc') {
    return {
      architectures: ['ESMCForMaskedLM'],
      d_model: config.hiddenSize,
      dtype: torchDtype,
      mask_token_id: config.maskTokenId,
      model_type: 'esmc',
      n_heads: config.numHeads,
      n_layers: config.numLayers,
      pad_token_id: config.padTokenId,
      tie_word_embeddings: false,
      vocab_size: config.vocabSize,
    };
  }
  return {
    architectures: ['EsmForMaskedLM'],
    model_type: 'esm',
    attention_probs_dropout_prob: 0.0,
    classifier_dropout: null,
    emb_layer_norm_before: config.embLayerNormBefore,
    esmfold_config: null,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.0,
    hidden_size: config.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: config.intermediateSize,
    is_folding_model: false,
    layer_norm_eps: config.layerNormEps,
    mask_token_id: config.maskTokenId,
    max_position_embeddings: config.maxPositionEmbeddings,
    num_attention_heads: config.numHeads,
    num_hidden_layers: config.numLayers,
    pad_token_id: config.padTokenId,
    position_embedding_type: config.family === 'esm1' ? 'absolute' : 'rotary',
    token_dropout: config.tokenDropout,
    torch_dtype: torchDtype,
    use_cache: true,
    vocab_list: null,
    vocab_size: config.vocabSize,
  };
}

/** Parameter count as stored by HF (includes the unused position embeddings and the tied decoder copy). */
export function storedParameterCount(config: EsmConfig): number {
  if (config.family === 'esmc') return esmcHubTensorList(config).reduce((sum, t) => sum + numel(t.shape), 0);
  const required = esm2TensorShapes(config).reduce((sum, t) => sum + numel(t.shape), 0);
  // ESM-2 stores an unused position table; ESM-1b's is among the required tensors.
  return required + (config.family === 'esm2' ? config.maxPositionEmbeddings * config.hiddenSize : 0);
}
