// Floating-point operations of one forward pass (a multiply-add counts 2), for reporting achieved
// GFLOP/s. Elementwise work (LayerNorm, GELU, SwiGLU, softmax) is negligible beside the GEMMs.
import type { EsmConfig } from './config.js';

/** FLOPs for one sequence of `tokens` tokens (cls and eos included). */
export function esm2ForwardFlops(config: EsmConfig, tokens: number): number {
  const E = config.hiddenSize;
  const I = config.intermediateSize;
  // q, k, v, out; fc1, fc2 (ESM C's SwiGLU: gate, up, down)
  const projections = 2 * tokens * (4 * E * E + (config.family === 'esmc' ? 3 : 2) * E * I);
  const attention = 4 * tokens * tokens * E; // QKᵀ and probabilities · V over all heads
  const lmHead = 2 * tokens * (E * E + E * config.vocabSize);
  return config.numLayers * (projections + attention) + lmHead;
}
