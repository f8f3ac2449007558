// Seeded synthetic protein workloads for benchmarks: lognormal lengths like UniRef's (median 250),
// clipped to ESM-2's trained range, with random standard residues.
import { readFile } from 'node:fs/promises';
import { parseFasta } from '../src/model/fasta.js';
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

/** A `--lengths` value: `lognormal` (or `lognormal:MEDIAN`), `fixed:N`, or `file:FASTA`. */
export type LengthsSpec = { kind: 'lognormal'; median: number } | { kind: 'fixed'; length: number } | { kind: 'file'; path: string };

export function parseLengthsSpec(text: string): LengthsSpec {
  const spec = text.trim();
  const lognormal = /^lognormal(?::(\d+))?$/.exec(spec);
  if (lognormal) return { kind: 'lognormal', median: lognormal[1] === undefined ? DEFAULT_LENGTHS.median : Number(lognormal[1]) };
  const fixed = /^fixed:(\d+)$/.exec(spec);
  if (fixed && Number(fixed[1]) >= 1) return { kind: 'fixed', length: Number(fixed[1]) };
  if (spec.startsWith('file:') && spec.length > 5) return { kind: 'file', path: spec.slice(5) };
  throw new Error(`--lengths must be lognormal, lognormal:MEDIAN, fixed:N (N ≥ 1) or file:FASTA, got "${text}"`);
}

export interface Workload {
  /** The sequences requests cycle through, in order. */
  sequences: string[];
  /** What they are, for reports. */
  description: string;
  /** FASTA records left out because they are longer than the server takes. */
  skipped: number;
}

/**
 * The sequences of a benchmark: `count` seeded random proteins with lognormal (median, σ 0.6,
 * clipped 30–maxLength) or fixed lengths, or the records of a FASTA file (those longer than
 * `maxLength` left out).
 */
export async function buildWorkload(spec: LengthsSpec, opts: { count: number; seed: number; maxLength: number }): Promise<Workload> {
  const { count, seed, maxLength } = opts;
  if (spec.kind === 'file') {
    const records = parseFasta(await readFile(spec.path, 'utf8'));
    const sequences = records.map((r) => r.sequence).filter((s) => s.length <= maxLength);
    if (sequences.length === 0) throw new Error(`${spec.path}: no record of at most ${maxLength} residues`);
    return { sequences, description: `${sequences.length} records of ${spec.path}`, skipped: records.length - sequences.length };
  }
  if (spec.kind === 'fixed') {
    if (spec.length > maxLength) throw new Error(`--lengths fixed:${spec.length} is longer than the server's ${maxLength}-residue limit`);
    return { sequences: randomProteins(new Array<number>(count).fill(spec.length), seed), description: `${count} random proteins of ${spec.length} residues (seed ${seed})`, skipped: 0 };
  }
  const dist = { ...DEFAULT_LENGTHS, median: spec.median, max: Math.min(DEFAULT_LENGTHS.max, maxLength) };
  const lengths = lognormalLengths(count, seed, dist);
  return {
    sequences: randomProteins(lengths, seed),
    description: `${count} random proteins, lognormal lengths (median ${dist.median}, σ ${dist.sigma}, clipped ${dist.min}–${dist.max}, seed ${seed})`,
    skipped: 0,
  };
}
