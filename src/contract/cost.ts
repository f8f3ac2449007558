// What one sequence's work costs in memory, from the model's shape alone: the engine's outputs
// (what a result holds) and a batch's peak working memory on the replica. The scheduler bounds
// batches with replicaBatchBytes; tasks size requests with resultBytes before any work starts.
import type { Want } from './index.js';

/** The model shape every cost is computed from. */
export interface ModelDims {
  numLayers: number;
  numHeads: number;
  hiddenSize: number;
  intermediateSize: number;
  vocabSize: number;
}

const FLOAT = 4;

/** Bytes of one sequence's result of `tokens` tokens (cls … eos) for `want`, as the engine returns it. */
export function resultBytes(dims: ModelDims, tokens: number, want: Want): number {
  const residues = Math.max(0, tokens - 2);
  let floats = 0;
  if (want.logits) floats += tokens * dims.vocabSize;
  floats += (want.hidden?.length ?? 0) * tokens * dims.hiddenSize;
  floats += (want.mean?.length ?? 0) * dims.hiddenSize;
  floats += (want.bos?.length ?? 0) * dims.hiddenSize;
  if (want.contacts) floats += residues * residues;
  return floats * FLOAT;
}

/**
 * Peak working memory of a batch of `sequences` rows padded to `tokens` on a replica, estimated:
 * the residual stream and the widest activations of one layer (ORT frees a layer's intermediates
 * before the next), one layer's attention scores, and the outputs fetched. The contacts graph
 * keeps every layer's attention maps (layers × heads × T² per sequence) for the contact head, and
 * peaks at about 1.5 × their size (measured): 0.75 GB per sequence of 1,022 residues on the 6-layer
 * model, 4.2 GB on the 33-layer one.
 */
export function replicaBatchBytes(dims: ModelDims, tokens: number, sequences: number, want: Want): number {
  const perToken = 4 * dims.hiddenSize + dims.intermediateSize;
  const scores = dims.numHeads * tokens * tokens;
  // Measured on the 6-layer model (fp32, no arena): peak ≈ 1.5 × the maps' floats, i.e. 6 bytes an element.
  const maps = want.contacts ? 1.5 * dims.numLayers * dims.numHeads * tokens * tokens : 0;
  const working = (tokens * perToken + scores + maps) * FLOAT;
  return sequences * (working + resultBytes(dims, tokens, want));
}

/**
 * The scheduler's batch memory bound for a model: a batch of the contacts lane keeps its attention
 * maps; any other is costed as fetching logits (the widest common output). `limitBytes` per batch.
 */
export function batchMemoryBound(dims: ModelDims, limitBytes: number): { limitBytes: number; bytesOf(lane: 'default' | 'contacts', tokens: number, sequences: number): number } {
  return { limitBytes, bytesOf: (lane, tokens, sequences) => replicaBatchBytes(dims, tokens, sequences, lane === 'contacts' ? { contacts: true, logits: true } : { logits: true }) };
}
