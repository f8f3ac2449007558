// ESM-2 self-attention with rotary position embeddings, written out in standard ONNX ops
// (fair-esm esm/multihead_attention.py + esm/rotary_embedding.py). This variant exposes the
// attention probabilities, which the contact head needs.
import type { GraphBuilder } from './onnx-graph.js';
import type { GraphWeights } from './weights.js';
import type { Esm2Shape, SequenceContext } from './esm2-graph.js';
import type { ContactAccumulator } from './contact-head.js';

export interface RotaryTables {
  /** [T, head_dim]: cos(emb) with emb = cat(freqs, freqs), in the compute type. */
  cos: string;
  /** [T, head_dim]: cat(−sin(freqs), sin(freqs)), so rotate_half(x)·sin = cat(x2, x1)·sinSigned. */
  sinSigned: string;
  /** [T, head_dim / 2] float32 halves (the fused RotaryEmbedding op's caches). */
  cosHalf: string;
  sinHalf: string;
}

/**
 * ESM-2's stored inv_freq (float16-rounded in published checkpoints; recomputing it would move
 * outputs by ~5e-5). ESM-2 gives every layer its own copy; all copies are equal in practice, and a
 * checkpoint where they differ is refused.
 */
export async function storedInvFreq(w: GraphWeights, shape: Esm2Shape): Promise<Float32Array> {
  const invFreq = await w.read('encoder.layer.0.attention.self.rotary_embeddings.inv_freq');
  for (let layer = 1; layer < shape.numLayers; layer++) {
    const other = await w.read(`encoder.layer.${layer}.attention.self.rotary_embeddings.inv_freq`);
    if (other.some((v, i) => v !== invFreq[i])) {
      throw new Error(`rotary inv_freq of layer ${layer} differs from layer 0; per-layer rotary tables are not supported`);
    }
  }
  return invFreq;
}

/** cos/sin tables for positions 0 … T−1 from `invFreq` [head_dim / 2]. */
export function rotaryTables(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, positions: string, invFreq: Float32Array): RotaryTables {
  const headDim = shape.hiddenSize / shape.numHeads;
  const invFreqName = g.weight('rotary.inv_freq', 'float32', [1, headDim / 2], invFreq);
  const t = g.node('Unsqueeze', [g.node('Cast', [positions], { attrs: { to: 1 } }), g.ints([1])], { prefix: 'rotary/t' });
  const freqs = g.node('Mul', [t, invFreqName], { prefix: 'rotary/freqs' });
  const cosHalf = g.node('Cos', [freqs], { prefix: 'rotary/cos_half' });
  const sinHalf = g.node('Sin', [freqs], { prefix: 'rotary/sin_half' });
  const toCompute = (x: string) => (w.computeType === 'float16' ? g.node('Cast', [x], { attrs: { to: 10 } }) : x);
  const cos = toCompute(g.node('Concat', [cosHalf, cosHalf], { attrs: { axis: 1 }, prefix: 'rotary/cos' }));
  const sinSigned = toCompute(g.node('Concat', [g.node('Neg', [sinHalf]), sinHalf], { attrs: { axis: 1 }, prefix: 'rotary/sin_signed' }));
  return { cos, sinSigned, cosHalf, sinHalf };
}

/** x·cos + rotate_half(x)·sin on [B, H, T, d], rotate_half(x) = cat(−x2, x1). */
function applyRotary(g: GraphBuilder, x: string, tables: RotaryTables, headDim: number, prefix: string): string {
  const half = headDim / 2;
  const axis = g.ints([3]);
  const x1 = g.node('Slice', [x, g.ints([0]), g.ints([half]), axis], { prefix: `${prefix}/x1` });
  const x2 = g.node('Slice', [x, g.ints([half]), g.ints([headDim]), axis], { prefix: `${prefix}/x2` });
  const swapped = g.node('Concat', [x2, x1], { attrs: { axis: 3 } });
  return g.node('Add', [g.node('Mul', [x, tables.cos]), g.node('Mul', [swapped, tables.sinSigned])], { prefix: `${prefix}/rotated` });
}

/**
 * Fused q/k/v projection [E, 3E] with q pre-scaled by head_dim^−0.5 (fair-esm scales q before
 * rotation; rotation is linear, so folding the scale into the weights is the same function).
 */
export async function qkvProjection(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, x: string, layer: number): Promise<string> {
  const self = `encoder.layer.${layer}.attention.self`;
  const headDim = shape.hiddenSize / shape.numHeads;
  const qkv = await w.linear(
    `${self}.qkv`,
    [{ prefix: `${self}.query`, scale: headDim ** -0.5 }, { prefix: `${self}.key` }, { prefix: `${self}.value` }],
    shape.hiddenSize,
    shape.hiddenSize,
  );
  return g.node('Add', [g.node('MatMul', [x, qkv.weight]), qkv.bias], { prefix: `layer${layer}/qkv` });
}

export async function outputProjection(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, x: string, layer: number): Promise<string> {
  const name = `encoder.layer.${layer}.attention.output.dense`;
  const out = await w.linear(name, [{ prefix: name }], shape.hiddenSize, shape.hiddenSize);
  return g.node('Add', [g.node('MatMul', [x, out.weight]), out.bias], { prefix: `layer${layer}/attn_out` });
}

/** Self-attention on LayerNorm output `x` [B, T, E] (compute type); returns [B, T, E]. */
export async function plainSelfAttention(
  g: GraphBuilder,
  w: GraphWeights,
  shape: Esm2Shape,
  ctx: SequenceContext,
  x: string,
  layer: number,
  contacts: ContactAccumulator | null,
): Promise<string> {
  const H = shape.numHeads;
  const d = shape.hiddenSize / H;
  const p = `layer${layer}/attn`;
  const qkv = await qkvProjection(g, w, shape, x, layer);
  const heads = g.node('Transpose', [g.node('Reshape', [qkv, g.ints([0, 0, 3, H, d])])], { attrs: { perm: [2, 0, 3, 1, 4] }, prefix: `${p}/heads` });
  const pick = (i: number, name: string) => g.node('Gather', [heads, g.scalar(i, 'int64')], { attrs: { axis: 0 }, prefix: `${p}/${name}` });
  const context = attendHeads(g, w, shape, ctx, pick(0, 'q'), pick(1, 'k'), pick(2, 'v'), layer, contacts);
  return outputProjection(g, w, shape, context, layer);
}

/** [B, T, E] → [B, H, T, d]. */
export function splitHeads(g: GraphBuilder, shape: Esm2Shape, x: string, prefix: string): string {
  const H = shape.numHeads;
  return g.node('Transpose', [g.node('Reshape', [x, g.ints([0, 0, H, shape.hiddenSize / H])])], { attrs: { perm: [0, 2, 1, 3] }, prefix });
}

/**
 * softmax(q·kᵀ + padding)·v on [B, H, T, d] heads (q already scaled), rotary applied first where
 * the family has it; the probabilities go to the contact head when there is one. Returns [B, T, E].
 */
export function attendHeads(
  g: GraphBuilder,
  w: GraphWeights,
  shape: Esm2Shape,
  ctx: SequenceContext,
  qHeads: string,
  kHeads: string,
  v: string,
  layer: number,
  contacts: ContactAccumulator | null,
): string {
  const d = shape.hiddenSize / shape.numHeads;
  const p = `layer${layer}/attn`;
  // ESM-1b (absolute positions) has no rotary tables: q and k go in as projected.
  const { rotary } = ctx;
  const q = rotary ? applyRotary(g, qHeads, rotary, d, `${p}/q`) : qHeads;
  const k = rotary ? applyRotary(g, kHeads, rotary, d, `${p}/k`) : kHeads;

  let scores = g.node('MatMul', [q, g.node('Transpose', [k], { attrs: { perm: [0, 1, 3, 2] } })], { prefix: `${p}/scores` });
  if (w.computeType === 'float16') scores = g.node('Cast', [scores], { attrs: { to: 1 } });
  const probs = g.node('Softmax', [g.node('Add', [scores, ctx.keyPaddingBias])], { attrs: { axis: -1 }, prefix: `${p}/probs` });
  contacts?.addLayer(probs, layer);
  const probsCompute = w.computeType === 'float16' ? g.node('Cast', [probs], { attrs: { to: 10 } }) : probs;
  const context = g.node('MatMul', [probsCompute, v], { prefix: `${p}/context` });
  return g.node('Reshape', [g.node('Transpose', [context], { attrs: { perm: [0, 2, 1, 3] } }), g.ints([0, 0, shape.hiddenSize])], { prefix: `${p}/merged` });
}
