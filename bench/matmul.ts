// The machine's fp32 GEMM rate through ONNX Runtime: the ceiling a GEMM-bound forward pass can reach.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/compile/onnx-graph.js';

/** Median GFLOP/s of [m, k] · [k, n] over `runs` runs (after one warm-up). */
export async function matmulGflops(m: number, k: number, n: number, threads: number, runs = 7): Promise<number> {
  const g = new GraphBuilder(null);
  const a = g.input('a', 'float32', [m, k]);
  const weights = Float32Array.from({ length: k * n }, (_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
  const product = g.node('MatMul', [a, g.weight('b', 'float32', [k, n], weights)]);
  g.output(product, 'c', 'float32', [m, n]);
  const dir = await mkdtemp(join(tmpdir(), 'esm2-matmul-'));
  try {
    const path = join(dir, 'matmul.onnx');
    await writeFile(path, g.encode({ graphName: 'matmul', opsets: { '': 17 }, metadata: {} }));
    const session = await ort.InferenceSession.create(path, { intraOpNumThreads: threads });
    const feeds = { a: new ort.Tensor('float32', Float32Array.from({ length: m * k }, (_, i) => (i % 97) / 97), [m, k]) };
    // A preallocated output, so the figure is the GEMM and not a fresh 40 MB allocation per run.
    const fetches = { c: new ort.Tensor('float32', new Float32Array(m * n), [m, n]) };
    await session.run(feeds, fetches);
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const started = performance.now();
      await session.run(feeds, fetches);
      times.push(performance.now() - started);
    }
    await session.release();
    return (2 * m * k * n) / (median(times) / 1000) / 1e9;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
