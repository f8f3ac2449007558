// fair-esm's ContactPredictionHead, accumulated layer by layer so the [B, layers·heads, T, T]
// stack of attention maps never exists at once: the logistic regression over channels is a
// weighted sum, and APC is per channel, so each layer's share can be added as it is produced.
import type { GraphBuilder } from './onnx-graph.js';
import type { GraphWeights } from './weights.js';
import type { Esm2Shape } from './esm2-graph.js';

export class ContactAccumulator {
  private logits: string | null = null;

  private constructor(
    private readonly g: GraphBuilder,
    private readonly shape: Esm2Shape,
    /** [B, 1, T, T]: 1 where both tokens are residues (not cls, eos or pad). */
    private readonly pairMask: string,
    private readonly layerWeights: string[],
    private readonly bias: string,
  ) {}

  static async create(g: GraphBuilder, w: GraphWeights, shape: Esm2Shape, inputIds: string, positions: string): Promise<ContactAccumulator> {
    const H = shape.numHeads;
    const weight = await w.read('contact_head.regression.weight');
    const layerWeights: string[] = [];
    for (let layer = 0; layer < shape.numLayers; layer++) {
      layerWeights.push(await w.float32(`contact_head.regression.weight.layer${layer}`, [1, H, 1, 1], weight.slice(layer * H, (layer + 1) * H)));
    }
    const bias = await w.float32('contact_head.regression.bias', [1]);

    // fair-esm zeroes eos rows/columns by token value, drops position 0 (cls), and zeroes padding.
    const notToken = (id: number) => g.node('Not', [g.node('Equal', [inputIds, g.scalar(id, 'int64')])]);
    const notFirst = g.node('Greater', [positions, g.scalar(0, 'int64')], { prefix: 'contacts/not_first' });
    const residue = g.node('Cast', [g.node('And', [g.node('And', [notToken(shape.eosTokenId), notToken(shape.padTokenId)]), notFirst])], {
      attrs: { to: 1 },
      prefix: 'contacts/residue_mask',
    });
    const rows = g.node('Unsqueeze', [residue, g.ints([1, 3])]);
    const cols = g.node('Unsqueeze', [residue, g.ints([1, 2])]);
    const pairMask = g.node('Mul', [rows, cols], { prefix: 'contacts/pair_mask' });
    return new ContactAccumulator(g, shape, pairMask, layerWeights, bias);
  }

  /** Adds one layer's attention probabilities [B, H, T, T] (float32). */
  addLayer(probs: string, layer: number): void {
    const g = this.g;
    const p = `contacts/layer${layer}`;
    const masked = g.node('Mul', [probs, this.pairMask], { prefix: `${p}/masked` });
    const symmetric = g.node('Add', [masked, g.node('Transpose', [masked], { attrs: { perm: [0, 1, 3, 2] } })], { prefix: `${p}/sym` });
    const a1 = g.node('ReduceSum', [symmetric, g.ints([3])], { attrs: { keepdims: 1 } });
    const a2 = g.node('ReduceSum', [symmetric, g.ints([2])], { attrs: { keepdims: 1 } });
    const a12 = g.node('ReduceSum', [a1, g.ints([2])], { attrs: { keepdims: 1 } });
    const apc = g.node('Sub', [symmetric, g.node('Div', [g.node('Mul', [a1, a2]), a12])], { prefix: `${p}/apc` });
    const weighted = g.node('ReduceSum', [g.node('Mul', [apc, this.layerWeights[layer]]), g.ints([1])], { attrs: { keepdims: 0 }, prefix: `${p}/weighted` });
    this.logits = this.logits ? g.node('Add', [this.logits, weighted], { prefix: `${p}/sum` }) : weighted;
  }

  /** [B, T, T] contact probabilities; only rows/columns of residues are meaningful. */
  finish(): string {
    if (!this.logits || this.layerWeights.length !== this.shape.numLayers) throw new Error('contact head: no attention layers were added');
    return this.g.node('Sigmoid', [this.g.node('Add', [this.logits, this.bias])], { prefix: 'contacts/probs' });
  }
}
