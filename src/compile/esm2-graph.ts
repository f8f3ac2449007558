// The ESM-2 forward pass (fair-esm esm/model/esm2.py) as an ONNX graph, one function per block.
// The residual stream, LayerNorms and softmax stay in float32; MatMuls run in the compute type.
import type { EsmConfig } from '../model/config.js';
import type { GraphBuilder } from './onnx-graph.js';
import type { ComputeType, LinearWeights, WeightSource } from './weights.js';
import { GraphWeights } from './weights.js';
import { plainSelfAttention, rotaryTables, storedInvFreq, type RotaryTables } from './attention.js';
import { fusedSelfAttention } from './attention-fused.js';
import { ContactAccumulator } from './contact-head.js';

/** What the graph depends on: the config plus the tokenizer's cls/eos ids. */
export interface Esm2Shape extends EsmConfig {
  clsTokenId: number;
  eosTokenId: number;
}

export interface GraphOptions {
  /** 'contacts' adds the contact head (needs explicit attention probabilities). */
  variant: 'default' | 'contacts';
  computeType: ComputeType;
  /** int8: every Linear of the encoder quantized (DynamicQuantizeMatMul); the LM head stays in the compute type. */
  linearWeights?: LinearWeights;
  /** Use ORT contrib ops (RotaryEmbedding, MultiHeadAttention) where no probabilities are needed. */
  fusedAttention: boolean;
}

/** An int8 Linear's input channel whose LayerNorm scale |γ| + |β| exceeds this many times the median runs in float32. */
const OUTLIER_FACTOR = 6;

/** fair-esm's token dropout: the training mask ratio 0.15 × 0.8. */
const MASK_RATIO_TRAIN = 0.15 * 0.8;

/** Tensors every block needs: built once from input_ids. */
export interface SequenceContext {
  inputIds: string;
  /** [B, 1, 1, T] float32: 0 for real keys, −inf for padding. */
  keyPaddingBias: string;
  /** [B, T] int32: 1 = keep, 0 = pad (the fused attention's mask). */
  keyPaddingMask: string;
  /** [T] int64: 0 … T−1. */
  positions: string;
  /** [B, T] int64 position ids (the fused rotary op's input). */
  positionIds: string;
  /** ESM-2's rotary tables; null for a family with absolute positions (ESM-1b). */
  rotary: RotaryTables | null;
}

export async function buildEsm2Graph(g: GraphBuilder, source: WeightSource, shape: Esm2Shape, opts: GraphOptions): Promise<void> {
  const w = new GraphWeights(g, source, opts.computeType, opts.linearWeights);
  const inputIds = g.input('input_ids', 'int64', ['batch', 'tokens']);
  const ctx = await sequenceContext(g, w, shape, inputIds);

  await encoderAndHeads(g, w, shape, ctx, inputIds, await embeddings(g, w, shape, inputIds), opts);
}

/** A family's blocks after its embeddings: one transformer layer, the final LayerNorm, the LM head. */
export interface EncoderBlocks {
  layer(x: string, layer: number, contacts: ContactAccumulator | null, fused: boolean): Promise<string>;
  finalNorm(x: string): Promise<string>;
  head(x: string): Promise<string>;
}

/** ESM-2's (and ESM-1b/1v's) blocks. */
export function esm2Blocks(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, ctx: SequenceContext): EncoderBlocks {
  return {
    layer: (x, layer, contacts, fused) => transformerLayer(g, w, shape, ctx, x, layer, contacts, fused),
    finalNorm: (x) => layerNorm(g, w, x, 'encoder.emb_layer_norm_after', shape),
    head: (x) => lmHead(g, w, shape, x),
  };
}

/**
 * What every family shares after its embeddings `x`: the transformer layers, the final LayerNorm,
 * the LM head and, in the contacts variant, the contact head — with every graph output
 * (`hidden_0` … `hidden_L`, `logits`, `contacts`). `blocks`: the family's (ESM-2's by default).
 */
export async function encoderAndHeads(
  g: GraphBuilder,
  w: GraphWeights,
  shape: Esm2Shape,
  ctx: SequenceContext,
  inputIds: string,
  embedded: string,
  opts: GraphOptions,
  blocks: EncoderBlocks = esm2Blocks(g, w, shape, ctx),
): Promise<void> {
  let x = embedded;
  g.output(x, 'hidden_0', 'float32', ['batch', 'tokens', shape.hiddenSize]);
  // The contact head needs attention probabilities, which only the plain attention exposes.
  const contacts = opts.variant === 'contacts' ? await ContactAccumulator.create(g, w, shape, inputIds, ctx.positions) : null;
  const fused = opts.fusedAttention && !contacts;
  for (let layer = 0; layer < shape.numLayers; layer++) {
    x = await blocks.layer(x, layer, contacts, fused);
    if (layer + 1 < shape.numLayers) g.output(x, `hidden_${layer + 1}`, 'float32', ['batch', 'tokens', shape.hiddenSize]);
  }
  const last = await blocks.finalNorm(x);
  g.output(last, `hidden_${shape.numLayers}`, 'float32', ['batch', 'tokens', shape.hiddenSize]);

  const logits = await blocks.head(last);
  g.output(logits, 'logits', 'float32', ['batch', 'tokens', shape.vocabSize]);
  if (contacts) g.output(await contacts.finish(), 'contacts', 'float32', ['batch', 'tokens', 'tokens']);
}

async function sequenceContext(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, inputIds: string): Promise<SequenceContext> {
  const ctx = paddingContext(g, shape, inputIds);
  return { ...ctx, rotary: rotaryTables(g, w, shape, ctx.positions, await storedInvFreq(w, shape)) };
}

/** Everything in SequenceContext but position encodings (shared with esm1b-graph.ts). */
export function paddingContext(g: GraphBuilder, shape: Esm2Shape, inputIds: string): Omit<SequenceContext, 'rotary'> {
  const isPad = g.node('Equal', [inputIds, g.scalar(shape.padTokenId, 'int64')], { prefix: 'is_pad' });
  const negInf = g.scalar(-Infinity);
  const zero = g.scalar(0);
  const bias2d = g.node('Where', [isPad, negInf, zero], { prefix: 'key_padding_bias_2d' });
  const keyPaddingBias = g.node('Unsqueeze', [bias2d, g.ints([1, 2])], { prefix: 'key_padding_bias' });
  const keyPaddingMask = g.node('Cast', [g.node('Not', [isPad])], { attrs: { to: 6 }, prefix: 'key_padding_mask' });

  const tokens = g.node('Gather', [g.node('Shape', [inputIds]), g.scalar(1, 'int64')], { prefix: 'num_tokens' });
  const positions = g.node('Range', [g.scalar(0, 'int64'), tokens, g.scalar(1, 'int64')], { prefix: 'positions' });
  const positionIds = g.node('Expand', [g.node('Unsqueeze', [positions, g.ints([0])]), g.node('Shape', [inputIds])], { prefix: 'position_ids' });
  return { inputIds, keyPaddingBias, keyPaddingMask, positions, positionIds };
}

/** Token embeddings with token-dropout rescaling and padding rows zeroed (ESM2.forward). */
export async function embeddings(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, inputIds: string): Promise<string> {
  const E = shape.hiddenSize;
  const table = await w.float32('embeddings.word_embeddings.weight', [shape.vocabSize, E]);
  const x = g.node('Gather', [table, inputIds], { prefix: 'embed_tokens' });
  const notPad = g.node('Cast', [g.node('Not', [g.node('Equal', [inputIds, g.scalar(shape.padTokenId, 'int64')])])], { attrs: { to: 1 } });
  let rowScale = notPad;
  if (shape.tokenDropout) {
    const isMask = g.node('Cast', [g.node('Equal', [inputIds, g.scalar(shape.maskTokenId, 'int64')])], { attrs: { to: 1 }, prefix: 'is_mask' });
    const masked = g.node('ReduceSum', [isMask, g.ints([1])], { attrs: { keepdims: 1 } });
    const real = g.node('ReduceSum', [notPad, g.ints([1])], { attrs: { keepdims: 1 } });
    const observed = g.node('Div', [masked, real], { prefix: 'mask_ratio_observed' });
    const scale = g.node('Div', [g.scalar(1 - MASK_RATIO_TRAIN), g.node('Sub', [g.scalar(1), observed])], { prefix: 'token_dropout_scale' });
    const keep = g.node('Mul', [notPad, g.node('Sub', [g.scalar(1), isMask])]);
    rowScale = g.node('Mul', [keep, scale], { prefix: 'row_scale' });
  }
  return g.node('Mul', [x, g.node('Unsqueeze', [rowScale, g.ints([2])])], { prefix: 'embeddings' });
}

/** Pre-LayerNorm transformer block: x + attn(LN(x)), then x + fc2(gelu(fc1(LN(x)))). */
export async function transformerLayer(
  g: GraphBuilder,
  w: GraphWeights,
  shape: Esm2Shape,
  ctx: SequenceContext,
  x: string,
  layer: number,
  contacts: ContactAccumulator | null,
  fused: boolean,
): Promise<string> {
  const prefix = `encoder.layer.${layer}`;
  const self = `${prefix}.attention.self`;
  const qkvSmoothing = await smoothing(w, `${prefix}.attention.LayerNorm`, `${self}.qkv`, [`${self}.query`, `${self}.key`, `${self}.value`], shape.hiddenSize);
  const normed = toCompute(g, w, await layerNorm(g, w, x, `${prefix}.attention.LayerNorm`, shape, qkvSmoothing));
  const attention = fused
    ? await fusedSelfAttention(g, w, shape, ctx, normed, layer)
    : await plainSelfAttention(g, w, shape, ctx, normed, layer, contacts);
  const afterAttention = g.node('Add', [x, toFloat32(g, w, attention)], { prefix: `layer${layer}/residual_attn` });

  const fc1Smoothing = await smoothing(w, `${prefix}.LayerNorm`, `${prefix}.intermediate.dense`, [`${prefix}.intermediate.dense`], shape.hiddenSize);
  const normed2 = toCompute(g, w, await layerNorm(g, w, afterAttention, `${prefix}.LayerNorm`, shape, fc1Smoothing));
  const fc1 = await w.linear(`${prefix}.intermediate.dense`, [{ prefix: `${prefix}.intermediate.dense` }], shape.hiddenSize, shape.intermediateSize);
  const hidden = gelu(g, w, g.node('Add', [g.node('MatMul', [normed2, fc1.weight]), fc1.bias]));
  const fc2 = await w.linear(`${prefix}.output.dense`, [{ prefix: `${prefix}.output.dense` }], shape.intermediateSize, shape.hiddenSize);
  const ffn = g.node('Add', [g.node('MatMul', [hidden, fc2.weight]), fc2.bias]);
  return g.node('Add', [afterAttention, toFloat32(g, w, ffn)], { prefix: `layer${layer}/residual_ffn` });
}

/** LM head: dense → gelu → LayerNorm → decoder (tied in ESM-2, its own in ESM C) + bias (`lm_head.bias`, ESM C's `lm_head.decoder.bias`). */
export async function lmHead(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, x: string, decoderBias = 'lm_head.bias'): Promise<string> {
  const E = shape.hiddenSize;
  // Kept in float even in int8: one E×E GEMM against 12·L in the encoder (≤ 0.7 % of the FLOPs at
  // t12), and the logits are what variant scores read (quantized, the fixture's logits error 1.6e-2 → 1.8e-2).
  const dense = await w.linear('lm_head.dense', [{ prefix: 'lm_head.dense' }], E, E, { keepFloat: true });
  const h = gelu(g, w, g.node('Add', [g.node('MatMul', [toCompute(g, w, x), dense.weight]), dense.bias]));
  const normed = toCompute(g, w, await layerNorm(g, w, toFloat32(g, w, h), 'lm_head.layer_norm', shape));
  const decoder = await w.read('lm_head.decoder.weight');
  const decoderT = new Float32Array(E * shape.vocabSize);
  for (let v = 0; v < shape.vocabSize; v++) for (let e = 0; e < E; e++) decoderT[e * shape.vocabSize + v] = decoder[v * E + e];
  const weight = await w.compute('lm_head.decoder.weight', [E, shape.vocabSize], decoderT);
  const decoded = toFloat32(g, w, g.node('MatMul', [normed, weight], { prefix: 'lm_head/decoded' }));
  return g.node('Add', [decoded, await w.float32(decoderBias, [shape.vocabSize])], { prefix: 'lm_head/logits' });
}

/**
 * SmoothQuant's migration (Xiao et al. 2023) with the activation range read off the LayerNorm
 * instead of calibration data: LN output channel j is about |γ_j| + |β_j| in size, so channels a
 * checkpoint made large (outlier channels) would take the whole per-tensor activation range. The LN
 * is divided by s_j and the next Linear's input row j multiplied by it (the same function), with
 * s_j = sqrt(a_j / w_j) (α = 0.5; w_j = the row's largest |weight|). Only for int8 Linears;
 * undefined (nothing changes) otherwise.
 */
export async function smoothing(w: GraphWeights, lnPrefix: string, linearName: string, linearPrefixes: string[], E: number): Promise<Float32Array | undefined> {
  if (w.linearWeights !== 'int8') return undefined;
  const gamma = await w.read(`${lnPrefix}.weight`);
  const beta = await w.read(`${lnPrefix}.bias`);
  const weightMax = new Float32Array(E);
  for (const prefix of linearPrefixes) {
    const weight = await w.read(`${prefix}.weight`); // [out, in]
    for (let o = 0; o < weight.length / E; o++) for (let i = 0; i < E; i++) weightMax[i] = Math.max(weightMax[i], Math.abs(weight[o * E + i]));
  }
  const act = Float32Array.from(gamma, (g, j) => Math.abs(g) + Math.abs(beta[j]));
  // Channels far above the rest (published checkpoints have a few, 20–100×) run in float32 instead.
  const median = [...act].sort((a, b) => a - b)[act.length >> 1];
  w.keepInputsFloat(linearName, [...act.keys()].filter((j) => act[j] > OUTLIER_FACTOR * median));
  const floorA = Math.max(...act) * 1e-3;
  const floorW = Math.max(...weightMax) * 1e-3;
  const s = Float32Array.from(act, (a, j) => Math.sqrt(Math.max(a, floorA) / Math.max(weightMax[j], floorW)));
  w.scaleInputs(linearName, s);
  return s;
}

/**
 * LayerNormalization in float32 (stash_type 1) over the last axis; γ and β divided by `divisor`
 * when given; `bias: false` for a LayerNorm without β (ESM C's q/k and final norms).
 */
export async function layerNorm(
  g: GraphBuilder,
  w: GraphWeights,
  x: string,
  prefix: string,
  shape: Esm2Shape,
  divisor?: Float32Array,
  { bias = true }: { bias?: boolean } = {},
): Promise<string> {
  const E = shape.hiddenSize;
  const divide = async (name: string) => (divisor ? Float32Array.from(await w.read(name), (v, j) => v / divisor[j]) : undefined);
  const gamma = await w.float32(`${prefix}.weight`, [E], await divide(`${prefix}.weight`));
  const beta = bias ? [await w.float32(`${prefix}.bias`, [E], await divide(`${prefix}.bias`))] : [];
  return g.node('LayerNormalization', [x, gamma, ...beta], {
    attrs: { axis: -1, epsilon: { float: shape.layerNormEps }, stash_type: 1 },
    prefix: `${prefix}/out`,
  });
}

/** Exact erf GELU, as fair-esm's `gelu` (ORT fuses MatMul + bias + this into BiasGelu). */
export function gelu(g: GraphBuilder, w: GraphWeights, x: string): string {
  const type = w.computeType;
  const erf = g.node('Erf', [g.node('Div', [x, g.scalar(Math.SQRT2, type)])]);
  return g.node('Mul', [g.node('Mul', [x, g.scalar(0.5, type)]), g.node('Add', [erf, g.scalar(1, type)])], { prefix: 'gelu' });
}

export function toCompute(g: GraphBuilder, w: GraphWeights, x: string): string {
  return w.computeType === 'float16' ? g.node('Cast', [x], { attrs: { to: 10 } }) : x;
}

export function toFloat32(g: GraphBuilder, w: GraphWeights, x: string): string {
  return w.computeType === 'float16' ? g.node('Cast', [x], { attrs: { to: 1 } }) : x;
}
