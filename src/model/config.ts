import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError } from './errors.js';
import { parseEsmcConfig } from './esmc-config.js';

/**
 * The model family: `model_type` "esmc" is ESM C (compile/esmc-graph.ts, esmc-config.ts); for
 * `model_type` "esm", `position_embedding_type` "rotary" is ESM-2 and "absolute" is ESM-1b /
 * ESM-1v (learned positions with the padding-index offset, compile/esm1b-graph.ts).
 */
export type ModelFamily = 'esm2' | 'esm1' | 'esmc';

export const FAMILY_NAMES: Readonly<Record<ModelFamily, string>> = { esm2: 'ESM-2', esm1: 'ESM-1b / ESM-1v', esmc: 'ESM C' };

/** The subset of the HF `EsmConfig` that the forward passes depend on. */
export interface EsmConfig {
  family: ModelFamily;
  /** ESM-1b's LayerNorm on token + position embeddings before layer 1 (always false for ESM-2). */
  embLayerNormBefore: boolean;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  layerNormEps: number;
  tokenDropout: boolean;
  maskTokenId: number;
  padTokenId: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  /** ESM C divides each block's residual branches by √(layers / 36); 1 for the other families. */
  residueScaling: number;
}

export const CONFIG_FILE = 'config.json';

/** Per-head width; rotary embeddings need it even. */
export function headDim(config: EsmConfig): number {
  return config.hiddenSize / config.numHeads;
}

/**
 * Validates a parsed HF `config.json`. Anything this server cannot run faithfully is refused here,
 * naming the field, rather than producing silently wrong numbers later.
 */
export function parseEsmConfig(raw: unknown, file: string): EsmConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CheckpointError(file, 'expected a JSON object');
  }
  const obj = raw as Record<string, unknown>;
  const fail = (field: string, problem: string): never => {
    throw new CheckpointError(file, `field "${field}": ${problem}`);
  };

  const int = (field: string, min: number): number => {
    const v = obj[field];
    if (v === undefined || v === null) return fail(field, 'missing');
    if (typeof v !== 'number' || !Number.isInteger(v)) return fail(field, `expected an integer, found ${JSON.stringify(v)}`);
    if (v < min) return fail(field, `must be at least ${min}, found ${v}`);
    return v;
  };

  // Refuse other architectures first: their errors explain more than a missing numeric field would.
  if (obj.model_type === 'esmc') return parseEsmcConfig(obj, file);
  if (obj.model_type !== undefined && obj.model_type !== 'esm') {
    fail('model_type', `expected "esm" (ESM-2, ESM-1b/1v) or "esmc" (ESM C), found ${JSON.stringify(obj.model_type)}`);
  }
  if (obj.is_folding_model === true) {
    fail('is_folding_model', 'ESMFold checkpoints are not supported; use an ESM-2 language model checkpoint');
  }
  const positions = obj.position_embedding_type;
  if (positions === undefined) fail('position_embedding_type', 'missing ("rotary" for ESM-2, "absolute" for ESM-1b/ESM-1v)');
  if (positions !== 'rotary' && positions !== 'absolute') {
    fail(
      'position_embedding_type',
      `expected "rotary" (ESM-2) or "absolute" (ESM-1b/ESM-1v), found ${JSON.stringify(positions)}`,
    );
  }
  const family: ModelFamily = positions === 'absolute' ? 'esm1' : 'esm2';
  const embLayerNormBefore = obj.emb_layer_norm_before;
  if (embLayerNormBefore !== undefined && embLayerNormBefore !== null && typeof embLayerNormBefore !== 'boolean') {
    fail('emb_layer_norm_before', `expected true or false, found ${JSON.stringify(embLayerNormBefore)}`);
  }
  if (family === 'esm2' && embLayerNormBefore === true) {
    fail('emb_layer_norm_before', 'true is an ESM-1b-style embedding LayerNorm; ESM-2 (rotary) has none (must be false)');
  }
  if (obj.hidden_act !== undefined && obj.hidden_act !== 'gelu') {
    fail('hidden_act', `expected "gelu", found ${JSON.stringify(obj.hidden_act)}`);
  }

  const hiddenSize = int('hidden_size', 1);
  const numLayers = int('num_hidden_layers', 1);
  const numHeads = int('num_attention_heads', 1);
  const intermediateSize = int('intermediate_size', 1);
  const vocabSize = int('vocab_size', 1);
  const maxPositionEmbeddings = int('max_position_embeddings', 3);
  const maskTokenId = int('mask_token_id', 0);
  const padTokenId = int('pad_token_id', 0);

  if (hiddenSize % numHeads !== 0) {
    fail('hidden_size', `${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  }
  if (family === 'esm2' && (hiddenSize / numHeads) % 2 !== 0) {
    fail('num_attention_heads', `head size ${hiddenSize}/${numHeads} = ${hiddenSize / numHeads} is odd; rotary embeddings need an even head size`);
  }
  if (family === 'esm1' && maxPositionEmbeddings < padTokenId + 4) {
    fail('max_position_embeddings', `${maxPositionEmbeddings} leaves no room for a residue after the padding offset (pad_token_id ${padTokenId})`);
  }
  if (maskTokenId >= vocabSize) fail('mask_token_id', `${maskTokenId} is outside the vocabulary (vocab_size ${vocabSize})`);
  if (padTokenId >= vocabSize) fail('pad_token_id', `${padTokenId} is outside the vocabulary (vocab_size ${vocabSize})`);

  const eps = obj.layer_norm_eps;
  if (eps === undefined || eps === null) fail('layer_norm_eps', 'missing');
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0 || eps >= 1) {
    fail('layer_norm_eps', `expected a small positive number, found ${JSON.stringify(eps)}`);
  }
  // token_dropout changes the embedding scale, so a silent default would give wrong numbers.
  const tokenDropout = obj.token_dropout;
  if (typeof tokenDropout !== 'boolean') {
    fail('token_dropout', tokenDropout === undefined ? 'missing' : `expected true or false, found ${JSON.stringify(tokenDropout)}`);
  }

  return {
    family,
    embLayerNormBefore: embLayerNormBefore === true,
    hiddenSize,
    numLayers,
    numHeads,
    intermediateSize,
    layerNormEps: eps as number,
    tokenDropout: tokenDropout as boolean,
    maskTokenId,
    padTokenId,
    vocabSize,
    maxPositionEmbeddings,
    residueScaling: 1,
  };
}

/**
 * The most residues one sequence may have on this model, whatever MAX_SEQUENCE_LENGTH says:
 * ESM-1b/1v's learned position table has `max_position_embeddings` rows, of which rows 0 … pad
 * are never a token's (positions start at pad_token_id + 1, fair-esm's LearnedPositionalEmbedding),
 * so cls + residues + eos ≤ max_position_embeddings − pad_token_id − 1 (1026 − 1 − 1 = 1024
 * tokens, 1022 residues). ESM-2's rotary positions have no limit (Infinity).
 */
export function familyResidueLimit(config: EsmConfig): number {
  return config.family === 'esm1' ? config.maxPositionEmbeddings - config.padTokenId - 1 - 2 : Infinity;
}

/** Reads and validates `<dir>/config.json`. */
export async function loadConfig(dir: string): Promise<EsmConfig> {
  const file = path.join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CheckpointError(file, describeReadError(err));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(file, `invalid JSON (${(err as Error).message})`);
  }
  return parseEsmConfig(raw, file);
}

/** "not found" for ENOENT, the system message otherwise. */
export function describeReadError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'not found';
  return `cannot be read (${e.message})`;
}
