// The one list of ESM-2 tensors and their shapes, derived from the config. Checkpoint validation,
// the random-checkpoint writer and the graph compiler all read it from here.
import { headDim, type EsmConfig } from './config.js';
import { roundToFloat16 } from './float-formats.js';

export interface Esm2TensorSpec {
  /** HF name without the `esm.` prefix, e.g. `encoder.layer.0.attention.self.query.weight`. */
  name: string;
  shape: number[];
  /** inv_freq: computed by `rotaryInvFreq` when a checkpoint does not store it. */
  optional?: boolean;
  /** Tensor used when this one is absent (the LM decoder is tied to the word embeddings). */
  fallback?: string;
  /**
   * The contact head's regression: a checkpoint may lack both tensors (no contact head, as
   * EsmModel exports and later families), which turns contacts off, never one without the other.
   */
  contactHead?: boolean;
}

export const WORD_EMBEDDINGS = 'embeddings.word_embeddings.weight';
/**
 * ESM-1b/1v's learned position table. HF ESM-2 checkpoints store one too, unused by rotary models:
 * ignored on load there, written by the random-checkpoint writer for fidelity.
 */
export const POSITION_EMBEDDINGS = 'embeddings.position_embeddings.weight';
/** ESM-1b's LayerNorm on the embeddings (emb_layer_norm_before). */
export const EMBEDDINGS_LAYER_NORM = 'embeddings.layer_norm';
export const LM_DECODER = 'lm_head.decoder.weight';

export function invFreqName(layer: number): string {
  return `encoder.layer.${layer}.attention.self.rotary_embeddings.inv_freq`;
}

/**
 * Every tensor the config's forward pass (MLM head and contact head included) needs, in module
 * order: ESM-2's rotary inv_freq buffers, or ESM-1b/1v's position table and embedding LayerNorm.
 */
export function esm2TensorShapes(config: EsmConfig): Esm2TensorSpec[] {
  const E = config.hiddenSize;
  const I = config.intermediateSize;
  const V = config.vocabSize;
  const specs: Esm2TensorSpec[] = [{ name: WORD_EMBEDDINGS, shape: [V, E] }];
  const linear = (prefix: string, out: number, inp: number): void => {
    specs.push({ name: `${prefix}.weight`, shape: [out, inp] }, { name: `${prefix}.bias`, shape: [out] });
  };
  const layerNorm = (prefix: string): void => {
    specs.push({ name: `${prefix}.weight`, shape: [E] }, { name: `${prefix}.bias`, shape: [E] });
  };
  if (config.family === 'esm1') {
    specs.push({ name: POSITION_EMBEDDINGS, shape: [config.maxPositionEmbeddings, E] });
    if (config.embLayerNormBefore) layerNorm(EMBEDDINGS_LAYER_NORM);
  }
  for (let i = 0; i < config.numLayers; i++) {
    const p = `encoder.layer.${i}`;
    linear(`${p}.attention.self.query`, E, E);
    linear(`${p}.attention.self.key`, E, E);
    linear(`${p}.attention.self.value`, E, E);
    if (config.family === 'esm2') specs.push({ name: invFreqName(i), shape: [headDim(config) / 2], optional: true });
    linear(`${p}.attention.output.dense`, E, E);
    layerNorm(`${p}.attention.LayerNorm`);
    linear(`${p}.intermediate.dense`, I, E);
    linear(`${p}.output.dense`, E, I);
    layerNorm(`${p}.LayerNorm`);
  }
  layerNorm('encoder.emb_layer_norm_after');
  specs.push(
    { name: 'contact_head.regression.weight', shape: [1, config.numLayers * config.numHeads], contactHead: true },
    { name: 'contact_head.regression.bias', shape: [1], contactHead: true },
  );
  linear('lm_head.dense', E, E);
  layerNorm('lm_head.layer_norm');
  specs.push({ name: LM_DECODER, shape: [V, E], fallback: WORD_EMBEDDINGS }, { name: 'lm_head.bias', shape: [V] });
  return specs;
}

/**
 * The name a tensor has in an HF `EsmForMaskedLM` checkpoint: the LM head sits at the top level,
 * everything else under `esm.`.
 */
export function hfStoredName(name: string): string {
  return name.startsWith('lm_head.') ? name : `esm.${name}`;
}

/**
 * Rotary inverse frequencies 1 / 10000^(2i/d) as ESM checkpoints store them: computed in float32
 * (like torch) and rounded through float16 (the original fairseq weights were half precision).
 * Only used when a checkpoint lacks the stored buffer; stored values are always preferred.
 */
export function rotaryInvFreq(headDimension: number): Float32Array {
  if (!Number.isInteger(headDimension) || headDimension <= 0 || headDimension % 2 !== 0) {
    throw new Error(`rotary head dimension must be a positive even integer, got ${headDimension}`);
  }
  const f = Math.fround;
  const out = new Float32Array(headDimension / 2);
  for (let i = 0; i < out.length; i++) {
    const exponent = f(f(2 * i) / headDimension);
    out[i] = roundToFloat16(f(1 / f(Math.pow(10000, exponent))));
  }
  return out;
}
