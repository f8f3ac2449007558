// ESM C's config.json (EvolutionaryScale's ESMC, model_type "esmc"), in either layout the issue
// names: the hub repositories' own (`d_model`, `n_heads`, `n_layers`) or the Transformers port's
// (`hidden_size`, `num_attention_heads`, `num_hidden_layers`, `intermediate_size`, …). Both become
// the same EsmConfig; anything the ESM C graph (compile/esmc-graph.ts) does not compute is refused.
import { CheckpointError } from './errors.js';
import type { EsmConfig } from './config.js';

/** ESMC's `swiglu_correction_fn`: the SwiGLU hidden width, 8/3 × d_model rounded up to a multiple of 256. */
export function esmcFfnHidden(dModel: number, expansionRatio = 8 / 3): number {
  return Math.floor((expansionRatio * dModel + 255) / 256) * 256;
}

/** ESMC's `residue_scaling_factor` √(n_layers / 36): every block divides its residual branches by it. */
export function esmcResidueScaling(numLayers: number): number {
  return Math.sqrt(numLayers / 36);
}

/** ESM C has rotary positions and no learned table; the Transformers port records 2048 (its training context). */
const ESMC_CONTEXT = 2048;

export function parseEsmcConfig(obj: Record<string, unknown>, file: string): EsmConfig {
  const fail = (field: string, problem: string): never => {
    throw new CheckpointError(file, `field "${field}": ${problem}`);
  };
  const int = (field: string, min: number, fallback?: number): number => {
    const v = obj[field];
    if (v === undefined || v === null) return fallback ?? fail(field, 'missing');
    if (typeof v !== 'number' || !Number.isInteger(v)) return fail(field, `expected an integer, found ${JSON.stringify(v)}`);
    if (v < min) return fail(field, `must be at least ${min}, found ${v}`);
    return v;
  };
  const expect = (field: string, allowed: unknown, what: string) => {
    const v = obj[field];
    if (v !== undefined && v !== null && v !== allowed) fail(field, `expected ${JSON.stringify(allowed)} (${what}), found ${JSON.stringify(v)}`);
  };
  // The Transformers port names the widths; the hub layout derives them from d_model.
  const port = obj.hidden_size !== undefined;
  const hiddenSize = port ? int('hidden_size', 1) : int('d_model', 1);
  const numHeads = port ? int('num_attention_heads', 1) : int('n_heads', 1);
  const numLayers = port ? int('num_hidden_layers', 1) : int('n_layers', 1);
  if (hiddenSize % numHeads !== 0) fail(port ? 'hidden_size' : 'd_model', `${hiddenSize} is not divisible by the ${numHeads} heads`);
  if ((hiddenSize / numHeads) % 2 !== 0) fail(port ? 'num_attention_heads' : 'n_heads', `head size ${hiddenSize / numHeads} is odd; rotary embeddings need an even head size`);
  const intermediateSize = port ? int('intermediate_size', 1) : esmcFfnHidden(hiddenSize);
  if (port) {
    expect('head_dim', hiddenSize / numHeads, 'hidden_size / num_attention_heads');
    expect('num_key_value_heads', numHeads, 'ESM C has no grouped-query attention');
    expect('hidden_act', 'silu', 'SwiGLU');
    expect('attention_bias', false, 'ESM C has no biases');
    expect('mlp_bias', false, 'ESM C has no biases');
    const rope = obj.rope_parameters as Record<string, unknown> | undefined;
    const theta = rope?.rope_theta ?? obj.rope_theta;
    if (theta !== undefined && theta !== 10000) fail('rope_parameters.rope_theta', `expected 10000 (ESM C's rotary base), found ${JSON.stringify(theta)}`);
    if (rope?.rope_type !== undefined && rope.rope_type !== 'default') fail('rope_parameters.rope_type', `expected "default", found ${JSON.stringify(rope.rope_type)}`);
  }
  expect('tie_word_embeddings', false, 'ESM C has its own output head');
  const scaleResidue = obj.scale_residue ?? true;
  if (typeof scaleResidue !== 'boolean') fail('scale_residue', `expected true or false, found ${JSON.stringify(scaleResidue)}`);
  const vocabSize = int('vocab_size', 1);
  const maskTokenId = int('mask_token_id', 0);
  const padTokenId = int('pad_token_id', 0);
  if (maskTokenId >= vocabSize) fail('mask_token_id', `${maskTokenId} is outside the vocabulary (vocab_size ${vocabSize})`);
  if (padTokenId >= vocabSize) fail('pad_token_id', `${padTokenId} is outside the vocabulary (vocab_size ${vocabSize})`);
  const eps = obj.layer_norm_eps ?? 1e-5; // ESMC's nn.LayerNorm default
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0 || eps >= 1) fail('layer_norm_eps', `expected a small positive number, found ${JSON.stringify(eps)}`);
  return {
    family: 'esmc',
    embLayerNormBefore: false,
    hiddenSize,
    numLayers,
    numHeads,
    intermediateSize,
    layerNormEps: eps as number,
    tokenDropout: false,
    maskTokenId,
    padTokenId,
    vocabSize,
    maxPositionEmbeddings: int('max_position_embeddings', 3, ESMC_CONTEXT),
    residueScaling: scaleResidue ? esmcResidueScaling(numLayers) : 1,
  };
}
