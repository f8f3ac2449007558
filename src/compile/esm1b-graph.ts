// The ESM-1b / ESM-1v forward pass (fair-esm esm/model/esm1.py ProteinBertModel, arch
// roberta_large; HF EsmForMaskedLM with position_embedding_type "absolute") as an ONNX graph.
// Only the embeddings differ from ESM-2: learned absolute positions and a LayerNorm before layer 1;
// attention has no rotary tables. The transformer layer, LM head, contact head and LayerNorm are
// ESM-2's (esm2-graph.ts), so a change to a shared block changes both families.
import type { GraphBuilder } from './onnx-graph.js';
import type { WeightSource } from './weights.js';
import { GraphWeights } from './weights.js';
import { embeddings, encoderAndHeads, layerNorm, paddingContext, type Esm2Shape, type GraphOptions, type SequenceContext } from './esm2-graph.js';
import { EMBEDDINGS_LAYER_NORM, POSITION_EMBEDDINGS } from '../model/esm2-tensors.js';

export async function buildEsm1bGraph(g: GraphBuilder, source: WeightSource, shape: Esm2Shape, opts: GraphOptions): Promise<void> {
  if (shape.family !== 'esm1') throw new Error(`buildEsm1bGraph: an ${shape.family} config`);
  const w = new GraphWeights(g, source, opts.computeType, opts.linearWeights);
  const inputIds = g.input('input_ids', 'int64', ['batch', 'tokens']);
  const ctx: SequenceContext = { ...paddingContext(g, shape, inputIds), rotary: null };

  await encoderAndHeads(g, w, shape, ctx, inputIds, await absoluteEmbeddings(g, w, shape, inputIds), opts);
}

/**
 * Token embeddings (with ESM-2's token-dropout rescaling: <mask> rows zeroed, × 0.88 / (1 − mask
 * ratio)), plus learned positions, then emb_layer_norm_before, then padding rows zeroed.
 * Positions: padding_idx + running count of non-pad tokens (fair-esm's make_positions), pad → row
 * padding_idx; so cls → row 2, residue i → row i + 2 with padding_idx 1. A sequence longer than
 * the table is refused before it gets here (model/config.ts familyResidueLimit).
 */
async function absoluteEmbeddings(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, inputIds: string): Promise<string> {
  const E = shape.hiddenSize;
  const tokens = await embeddings(g, w, shape, inputIds); // pad rows are zero here already; zeroed again below
  const notPadBool = g.node('Not', [g.node('Equal', [inputIds, g.scalar(shape.padTokenId, 'int64')])], { prefix: 'positions/not_pad' });
  const notPad = g.node('Cast', [notPadBool], { attrs: { to: 7 } });
  const count = g.node('CumSum', [notPad, g.scalar(1, 'int64')], { prefix: 'positions/count' });
  const positionIds = g.node('Add', [g.node('Mul', [count, notPad]), g.scalar(shape.padTokenId, 'int64')], { prefix: 'positions/ids' });
  const table = await w.float32(POSITION_EMBEDDINGS, [shape.maxPositionEmbeddings, E]);
  let x = g.node('Add', [tokens, g.node('Gather', [table, positionIds], { prefix: 'embed_positions' })], { prefix: 'embeddings/with_positions' });
  if (shape.embLayerNormBefore) x = await layerNorm(g, w, x, EMBEDDINGS_LAYER_NORM, shape);
  const keep = g.node('Unsqueeze', [g.node('Cast', [notPadBool], { attrs: { to: 1 } }), g.ints([2])]);
  return g.node('Mul', [x, keep], { prefix: 'embeddings/pad_zeroed' });
}
