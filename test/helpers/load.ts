// What load and reliability tests share: Prometheus text parsed into samples, quantiles, deterministic proteins.
import assert from 'node:assert/strict';
import { parsePrometheus, type Sample } from '../../bench/prometheus.js';

// One parser of the Prometheus text format: the benchmarks' (bench/prometheus.ts).
export { parsePrometheus as parseMetrics, sumOf as metricSum, type Sample } from '../../bench/prometheus.js';

export async function scrape(url: string, headers: Record<string, string> = {}): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`, { headers });
  assert.equal(res.status, 200);
  return parsePrometheus(await res.text());
}

/** The q-quantile (0 … 1) of `values` (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** A deterministic protein of `length` residues (standard amino acids). */
export function protein(length: number, seed: number): string {
  const alphabet = 'ACDEFGHIKLMNPQRSTVWY';
  let s = '';
  let x = seed * 7919 + 17;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += alphabet[x % 20];
  }
  return s;
}
