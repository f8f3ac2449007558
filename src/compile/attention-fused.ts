// The same self-attention with ONNX Runtime contrib ops: RotaryEmbedding (interleaved = 0 is
// ESM's rotate_half convention) and MultiHeadAttention (one kernel for QKᵀ, mask, softmax, ·V).
// No attention probabilities come out, so the contact variant uses attention.ts instead.
import type { GraphBuilder } from './onnx-graph.js';
import type { GraphWeights } from './weights.js';
import type { Esm2Shape, SequenceContext } from './esm2-graph.js';
import { outputProjection, qkvProjection } from './attention.js';

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
  const H = shape.numHeads;
  const p = `layer${layer}/attn`;
  // Biases are added before rotation (MultiHeadAttention's own bias input would come after it).
  const qkv = await qkvProjection(g, w, shape, x, layer);
  const [q, k, v] = g.nodeMulti('Split', [qkv, g.ints([E, E, E])], 3, { attrs: { axis: 2 }, prefix: `${p}/split` });
  const { cosHalf, sinHalf } = ctx.rotary;
  const cosCache = w.computeType === 'float16' ? g.node('Cast', [cosHalf], { attrs: { to: 10 } }) : cosHalf;
  const sinCache = w.computeType === 'float16' ? g.node('Cast', [sinHalf], { attrs: { to: 10 } }) : sinHalf;
  const rotate = (t: string, name: string) =>
    g.node('RotaryEmbedding', [t, ctx.positionIds, cosCache, sinCache], {
      domain: CONTRIB_DOMAIN,
      attrs: { interleaved: 0, num_heads: H },
      prefix: `${p}/${name}_rotated`,
    });
  // q already carries head_dim^−0.5 (folded into its weights), hence scale = 1.
  const context = g.node('MultiHeadAttention', [rotate(q, 'q'), rotate(k, 'k'), v, '', ctx.keyPaddingMask], {
    domain: CONTRIB_DOMAIN,
    attrs: { num_heads: H, scale: { float: 1 } },
    prefix: `${p}/context`,
  });
  return outputProjection(g, w, shape, context, layer);
}
