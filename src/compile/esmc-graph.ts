// The ESM C forward pass (EvolutionaryScale esm/models/esmc.py ESMC, esm/layers/blocks.py
// UnifiedTransformerBlock, esm/layers/attention.py, esm/layers/regression_head.py) as an ONNX graph.
// Against ESM-2 (esm2-graph.ts): no biases in the encoder, one QKV projection after the block's
// LayerNorm, LayerNorms without bias on q and k over the full width, SwiGLU, both residual
// branches divided by √(layers / 36), a final LayerNorm without bias, an untied head. The padding
// context, rotary tables, attention kernels, LayerNorm, GELU and the encoder loop are shared.
// Tensor names: the Transformers port's (model/esmc-tensors.ts), whichever layout was stored.
import type { GraphBuilder } from './onnx-graph.js';
import type { WeightSource } from './weights.js';
import { GraphWeights } from './weights.js';
import { encoderAndHeads, layerNorm, lmHead, paddingContext, smoothing, toCompute, toFloat32, type EncoderBlocks, type Esm2Shape, type GraphOptions, type SequenceContext } from './esm2-graph.js';
import { attendHeads, rotaryTables, splitHeads } from './attention.js';
import { fusedAttend } from './attention-fused.js';
import { ESMC_WORD_EMBEDDINGS } from '../model/esmc-tensors.js';

export async function buildEsmcGraph(g: GraphBuilder, source: WeightSource, shape: Esm2Shape, opts: GraphOptions): Promise<void> {
  if (shape.family !== 'esmc') throw new Error(`buildEsmcGraph: an ${shape.family} config`);
  if (opts.variant === 'contacts') throw new Error('ESM C has no contact head');
  const w = new GraphWeights(g, source, opts.computeType, opts.linearWeights);
  const inputIds = g.input('input_ids', 'int64', ['batch', 'tokens']);
  // ESMC lets token i attend token j iff both are padding or both are not: for the real rows that
  // is the key padding mask every family uses (pad rows differ, and are never read).
  const padding = paddingContext(g, shape, inputIds);
  const ctx: SequenceContext = { ...padding, rotary: rotaryTables(g, w, shape, padding.positions, esmcInvFreq(shape.hiddenSize / shape.numHeads)) };
  const table = await w.float32(ESMC_WORD_EMBEDDINGS, [shape.vocabSize, shape.hiddenSize]);
  const embedded = g.node('Gather', [table, inputIds], { prefix: 'embed_tokens' });
  await encoderAndHeads(g, w, shape, ctx, inputIds, embedded, opts, esmcBlocks(g, w, shape, ctx));
}

/** ESM C's RotaryEmbedding inv_freq, 1 / 10000^(2i/d), computed in float32 as torch does (not stored, not float16-rounded). */
export function esmcInvFreq(headDim: number): Float32Array {
  const f = Math.fround;
  return Float32Array.from({ length: headDim / 2 }, (_, i) => f(1 / f(Math.pow(10000, f(f(2 * i) / headDim)))));
}

function esmcBlocks(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, ctx: SequenceContext): EncoderBlocks {
  return {
    layer: (x, layer, _contacts, fused) => esmcLayer(g, w, shape, ctx, x, layer, fused),
    finalNorm: (x) => layerNorm(g, w, x, 'norm', shape, undefined, { bias: false }),
    head: (x) => lmHead(g, w, shape, x, 'lm_head.decoder.bias'),
  };
}

/** x + attn(LN(x)) / s, then x + down(silu(gate) · up)(LN(x)) / s, s = √(layers / 36); 1/s is folded into o_proj and down_proj. */
async function esmcLayer(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, ctx: SequenceContext, x: string, layer: number, fused: boolean): Promise<string> {
  const E = shape.hiddenSize;
  const I = shape.intermediateSize;
  const d = E / shape.numHeads;
  const p = `layers.${layer}`;
  const branch = 1 / shape.residueScaling;
  const attnProjections = ['q_proj', 'k_proj', 'v_proj'].map((n) => `${p}.self_attn.${n}`);
  const qkvSmoothing = await smoothing(w, `${p}.input_layernorm`, `${p}.self_attn.qkv`, attnProjections, E);
  const normed = toCompute(g, w, await layerNorm(g, w, x, `${p}.input_layernorm`, shape, qkvSmoothing));
  const qkvWeight = await w.matrix(`${p}.self_attn.qkv`, attnProjections.map((prefix) => ({ prefix })), E, E);
  const qkv = g.node('MatMul', [normed, qkvWeight], { prefix: `layer${layer}/qkv` });
  const [qRaw, kRaw, v] = g.nodeMulti('Split', [qkv, g.ints([E, E, E])], 3, { attrs: { axis: 2 }, prefix: `layer${layer}/attn/split` });
  // q's LayerNorm carries head_dim^−0.5 in its γ (the same function as scaling q after it).
  const qScale = new Float32Array(E).fill(Math.sqrt(d));
  const q = toCompute(g, w, await layerNorm(g, w, toFloat32(g, w, qRaw), `${p}.self_attn.q_norm`, shape, qScale, { bias: false }));
  const k = toCompute(g, w, await layerNorm(g, w, toFloat32(g, w, kRaw), `${p}.self_attn.k_norm`, shape, undefined, { bias: false }));
  const context = fused
    ? fusedAttend(g, w, shape, ctx, q, k, v, layer)
    : attendHeads(g, w, shape, ctx, splitHeads(g, shape, q, `layer${layer}/attn/q`), splitHeads(g, shape, k, `layer${layer}/attn/k`), splitHeads(g, shape, v, `layer${layer}/attn/v`), layer, null);
  const outWeight = await w.matrix(`${p}.self_attn.o_proj`, [{ prefix: `${p}.self_attn.o_proj`, scale: branch }], E, E);
  const attention = g.node('MatMul', [context, outWeight], { prefix: `layer${layer}/attn_out` });
  const afterAttention = g.node('Add', [x, toFloat32(g, w, attention)], { prefix: `layer${layer}/residual_attn` });

  const mlp = [`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`];
  const ffnSmoothing = await smoothing(w, `${p}.post_attention_layernorm`, `${p}.mlp.gate_up`, mlp, E);
  const normed2 = toCompute(g, w, await layerNorm(g, w, afterAttention, `${p}.post_attention_layernorm`, shape, ffnSmoothing));
  const gateUp = g.node('MatMul', [normed2, await w.matrix(`${p}.mlp.gate_up`, mlp.map((prefix) => ({ prefix })), E, I)], { prefix: `layer${layer}/gate_up` });
  const [gate, up] = g.nodeMulti('Split', [gateUp, g.ints([I, I])], 2, { attrs: { axis: 2 }, prefix: `layer${layer}/swiglu/split` });
  const swiglu = g.node('Mul', [g.node('Mul', [gate, g.node('Sigmoid', [gate])], { prefix: `layer${layer}/swiglu/silu` }), up], { prefix: `layer${layer}/swiglu` });
  const downWeight = await w.matrix(`${p}.mlp.down_proj`, [{ prefix: `${p}.mlp.down_proj`, scale: branch }], I, E);
  const ffn = g.node('MatMul', [swiglu, downWeight], { prefix: `layer${layer}/ffn_out` });
  return g.node('Add', [afterAttention, toFloat32(g, w, ffn)], { prefix: `layer${layer}/residual_ffn` });
}
