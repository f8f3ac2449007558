// The same self-attention with ONNX Runtime contrib ops: RotaryEmbedding (interleaved = 0 is
// ESM's rotate_half convention) and MultiHeadAttention (one kernel for QKᵀ, mask, softmax, ·V).
// No attention probabilities come out, so the contact variant uses attention.ts instead.
import type { GraphBuilder } from './onnx-graph.js';
import type { GraphWeights } from './weights.js';
import type { Esm2Shape, SequenceContext } from './esm2-graph.js';
import { outputProjection, qkvProjection, type RotaryTables } from './attention.js';

export const CONTRIB_DOMAIN = 'com.microsoft';

export async function fusedSelfAttention(
  g: GraphBuilder,
  w: GraphWeights,
  shape: Esm2Shape,
  ctx: SequenceContext,
  x: string,
  layer: number,
): Promise<string> {
  const E = shape.hiddenSize;
  // Biases are added before rotation (MultiHeadAttention's own bias input would come after it).
  const qkv = await qkvProjection(g, w, shape, x, layer);
  const [q, k, v] = g.nodeMulti('Split', [qkv, g.ints([E, E, E])], 3, { attrs: { axis: 2 }, prefix: `layer${layer}/attn/split` });
  return outputProjection(g, w, shape, fusedAttend(g, w, shape, ctx, q, k, v, layer), layer);
}

/** MultiHeadAttention on [B, T, E] q (already scaled by head_dim^−0.5), k, v, rotary applied first where the family has it. */
export function fusedAttend(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, ctx: SequenceContext, q: string, k: string, v: string, layer: number): string {
  const H = shape.numHeads;
  const p = `layer${layer}/attn`;
  // q already carries head_dim^−0.5 (folded into its weights), hence scale = 1.
  const rotate = ctx.rotary ? rotation(g, w, ctx, ctx.rotary, H, p) : (t: string) => t; // ESM-1b: no rotary
  return g.node('MultiHeadAttention', [rotate(q, 'q'), rotate(k, 'k'), v, '', ctx.keyPaddingMask], {
    domain: CONTRIB_DOMAIN,
    attrs: { num_heads: H, scale: { float: 1 } },
    prefix: `${p}/context`,
  });
}

/** The RotaryEmbedding contrib op on [B, T, E] q or k, from the graph's rotary tables. */
function rotation(g: GraphBuilder, w: GraphWeights, ctx: SequenceContext, tables: RotaryTables, H: number, p: string): (t: string, name: string) => string {
  const { cosHalf, sinHalf } = tables;
  const cosCache = w.computeType === 'float16' ? g.node('Cast', [cosHalf], { attrs: { to: 10 } }) : cosHalf;
  const sinCache = w.computeType === 'float16' ? g.node('Cast', [sinHalf], { attrs: { to: 10 } }) : sinHalf;
  return (t, name) =>
    g.node('RotaryEmbedding', [t, ctx.positionIds, cosCache, sinCache], {
      domain: CONTRIB_DOMAIN,
      attrs: { interleaved: 0, num_heads: H },
      prefix: `${p}/${name}_rotated`,
    });
}
