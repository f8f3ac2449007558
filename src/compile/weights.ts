// Reads checkpoint tensors and registers them as graph weights in the layout the graph wants
// (Linear weights transposed to [in, out] for MatMul; float16 where the compute type is half).
import { float32ToFloat16 } from '../model/float-formats.js';
import type { GraphBuilder } from './onnx-graph.js';

/** What the compiler needs of a checkpoint (see model/checkpoint.ts). */
export interface WeightSource {
  readTensor(name: string): Promise<Float32Array>;
}

export type ComputeType = 'float32' | 'float16';
/** How Linear weights are stored: in the compute type, or int8 per output channel (dynamic quantization, float32 activations). */
export type LinearWeights = 'compute' | 'int8';

/**
 * Largest magnitude of a quantized weight. 127 would use all of int8, but x86 without VNNI multiplies
 * u8 activations by s8 weights with vpmaddubsw, whose int16 pair sums saturate past 32767
 * (255·127·2 = 64770): 7-bit weights (|q| ≤ 63, 255·63·2 = 32130) cannot saturate — ORT's
 * own quantizer calls this reduce_range. Measured on the fixture: 127 gives mean-embedding cosine
 * 0.952 against fp32, 63 gives 0.99988 (docs/performance.md).
 */
export const INT8_WEIGHT_MAX = 63;

/** Symmetric per-column quantization of a [rows, cols] row-major matrix: q = round(w / scale), scale = max|w[:, c]| / max. */
export function quantizePerColumn(values: Float32Array, rows: number, cols: number, max = INT8_WEIGHT_MAX): { q: Int8Array; scale: Float32Array } {
  const absMax = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let c = 0; c < cols; c++) absMax[c] = Math.max(absMax[c], Math.abs(values[row + c]));
  }
  const scale = Float32Array.from(absMax, (m) => (m > 0 ? m / max : 1));
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let c = 0; c < cols; c++) q[row + c] = Math.max(-max, Math.min(max, Math.round(values[row + c] / scale[c])));
  }
  return { q, scale };
}

export class GraphWeights {
  /** Per-input-feature factors a Linear's weight rows are multiplied by (smoothing, see esm2-graph.ts), by graph name. */
  private readonly inputScales = new Map<string, Float32Array>();

  constructor(
    private readonly g: GraphBuilder,
    private readonly source: WeightSource,
    readonly computeType: ComputeType,
    readonly linearWeights: LinearWeights = 'compute',
  ) {}

  /** The next `linear(graphName, …)` multiplies input feature i of its weight by `scale[i]`. */
  scaleInputs(graphName: string, scale: Float32Array): void {
    this.inputScales.set(graphName, scale);
  }

  /** Input features of `graphName` computed in float32 beside the int8 product (outlier channels, see esm2-graph.ts). */
  private readonly floatInputs = new Map<string, number[]>();

  keepInputsFloat(graphName: string, features: number[]): void {
    if (features.length) this.floatInputs.set(graphName, features);
  }

  read(name: string): Promise<Float32Array> {
    return this.source.readTensor(name);
  }

  /** A tensor kept in float32 whatever the compute type (LayerNorm parameters, biases added in fp32). */
  async float32(name: string, dims: number[], data?: Float32Array): Promise<string> {
    return this.g.weight(name, 'float32', dims, data ?? (await this.read(name)));
  }

  /** A tensor in the compute type. */
  async compute(name: string, dims: number[], data?: Float32Array): Promise<string> {
    const values = data ?? (await this.read(name));
    if (this.computeType === 'float16') return this.g.weight(name, 'float16', dims, float32ToFloat16(values));
    return this.g.weight(name, 'float32', dims, values);
  }

  /**
   * A Linear layer's weight [out, in] as a MatMul operand [in, out], optionally several Linear
   * layers side by side (fused q/k/v) and scaled row-wise per part (q's 1/sqrt(head_dim)).
   * With int8 linear weights (unless `keepFloat`), the weight is an int8 matrix with per-column
   * scales that MatMul turns into DynamicQuantizeMatMul (GraphBuilder.quantizedOperand).
   */
  async linear(
    graphName: string,
    parts: { prefix: string; scale?: number }[],
    inFeatures: number,
    outFeatures: number,
    opts: { keepFloat?: boolean } = {},
  ): Promise<{ weight: string; bias: string }> {
    const { weight, bias } = await this.build(graphName, parts, inFeatures, outFeatures, opts, true);
    return { weight, bias: bias! };
  }

  /** `linear` for Linear layers without a bias (ESM C): the MatMul operand alone. */
  async matrix(graphName: string, parts: { prefix: string; scale?: number }[], inFeatures: number, outFeatures: number): Promise<string> {
    return (await this.build(graphName, parts, inFeatures, outFeatures, {}, false)).weight;
  }

  private async build(
    graphName: string,
    parts: { prefix: string; scale?: number }[],
    inFeatures: number,
    outFeatures: number,
    opts: { keepFloat?: boolean },
    withBias: boolean,
  ): Promise<{ weight: string; bias?: string }> {
    const width = outFeatures * parts.length;
    const weightT = new Float32Array(inFeatures * width);
    const bias = new Float32Array(width);
    for (const [p, part] of parts.entries()) {
      const w = await this.read(`${part.prefix}.weight`);
      const b = withBias ? await this.read(`${part.prefix}.bias`) : undefined;
      const scale = part.scale ?? 1;
      const inputScale = this.inputScales.get(graphName);
      const column = p * outFeatures;
      for (let o = 0; o < outFeatures; o++) {
        const row = o * inFeatures;
        for (let i = 0; i < inFeatures; i++) weightT[i * width + column + o] = w[row + i] * scale * (inputScale ? inputScale[i] : 1);
        if (b) bias[column + o] = b[o] * scale;
      }
    }
    if (this.linearWeights === 'int8' && !opts.keepFloat) {
      // Outlier input features: their rows leave the int8 matrix (zeroed, so they set no column's
      // scale) for a float32 [k, out] product of those features alone (LLM.int8()'s decomposition).
      const floatInputs = this.floatInputs.get(graphName);
      let outliers;
      if (floatInputs) {
        const rows = new Float32Array(floatInputs.length * width);
        const mask = new Float32Array(inFeatures).fill(1);
        for (const [r, i] of floatInputs.entries()) {
          rows.set(weightT.subarray(i * width, (i + 1) * width), r * width);
          weightT.fill(0, i * width, (i + 1) * width);
          mask[i] = 0;
        }
        outliers = {
          indices: this.g.constant(`${graphName}.outlier_features`, 'int64', [floatInputs.length], floatInputs),
          weight: this.g.weight(`${graphName}.outlier_weight`, 'float32', [floatInputs.length, width], rows),
          mask: this.g.weight(`${graphName}.outlier_mask`, 'float32', [inFeatures], mask),
        };
      }
      const { q, scale } = quantizePerColumn(weightT, inFeatures, width);
      const biasName = withBias ? await this.float32(`${graphName}.bias`, [width], bias) : undefined;
      const weight = this.g.quantizedOperand(`${graphName}.weight`, {
        weight: this.g.weight(`${graphName}.weight_int8`, 'int8', [inFeatures, width], q),
        scale: this.g.weight(`${graphName}.weight_scale`, 'float32', [width], scale),
        ...(biasName ? { bias: biasName } : {}),
        ...(outliers ? { outliers } : {}),
      });
      return { weight, bias: biasName };
    }
    return {
      weight: await this.compute(`${graphName}.weight`, [inFeatures, width], weightT),
      bias: withBias ? await this.compute(`${graphName}.bias`, [width], bias) : undefined,
    };
  }
}
