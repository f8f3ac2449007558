// Reads checkpoint tensors and registers them as graph weights in the layout the graph wants
// (Linear weights transposed to [in, out] for MatMul; float16 where the compute type is half).
import { float32ToFloat16 } from '../model/float-formats.js';
import type { GraphBuilder } from './onnx-graph.js';

/** What the compiler needs of a checkpoint (see model/checkpoint.ts). */
export interface WeightSource {
  readTensor(name: string): Promise<Float32Array>;
}

export type ComputeType = 'float32' | 'float16';

export class GraphWeights {
  constructor(
    private readonly g: GraphBuilder,
    private readonly source: WeightSource,
    readonly computeType: ComputeType,
  ) {}

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
   */
  async linear(
    graphName: string,
    parts: { prefix: string; scale?: number }[],
    inFeatures: number,
    outFeatures: number,
  ): Promise<{ weight: string; bias: string }> {
    const width = outFeatures * parts.length;
    const weightT = new Float32Array(inFeatures * width);
    const bias = new Float32Array(width);
    for (const [p, part] of parts.entries()) {
      const w = await this.read(`${part.prefix}.weight`);
      const b = await this.read(`${part.prefix}.bias`);
      const scale = part.scale ?? 1;
      const column = p * outFeatures;
      for (let o = 0; o < outFeatures; o++) {
        const row = o * inFeatures;
        for (let i = 0; i < inFeatures; i++) weightT[i * width + column + o] = w[row + i] * scale;
        bias[column + o] = b[o] * scale;
      }
    }
    return {
      weight: await this.compute(`${graphName}.weight`, [inFeatures, width], weightT),
      bias: await this.compute(`${graphName}.bias`, [width], bias),
    };
  }
}
