// Seeded synthetic protein workloads for benchmarks: lognormal lengths like UniRef's (median 250),
// clipped to ESM-2's trained range, with random standard residues.
import { SeededStream } from '../src/model/seeded-random.js';
import { STANDARD_AMINO_ACIDS } from '../src/model/tokenizer.js';

export interface LengthDistribution {
  median: number;
  /** σ of ln(length). */
  sigma: number;
  min: number;
  max: number;
}

export const DEFAULT_LENGTHS: LengthDistribution = { median: 250, sigma: 0.6, min: 30, max: 1022 };

function uniforms(count: number, seed: number, key: string): Float32Array {
  const out = new Float32Array(count);
  new SeededStream(seed, key).fillUniform(out, 0.5, 0.5);
  return out;
}

export function lognormalLengths(count: number, seed: number, dist: LengthDistribution = DEFAULT_LENGTHS): number[] {
  const u = uniforms(2 * count, seed, 'lengths');
  return Array.from({ length: count }, (_, i) => {
    const z = Math.sqrt(-2 * Math.log(Math.max(u[2 * i], 1e-7))) * Math.cos(2 * Math.PI * u[2 * i + 1]);
    return Math.min(dist.max, Math.max(dist.min, Math.round(dist.median * Math.exp(dist.sigma * z))));
  });
}

export function randomProteins(lengths: readonly number[], seed: number): string[] {
  return lengths.map((length, i) => {
    const u = uniforms(length, seed, `protein-${i}`);
    let s = '';
    for (let j = 0; j < length; j++) s += STANDARD_AMINO_ACIDS[Math.min(19, Math.floor(u[j] * 20))];
    return s;
  });
}
