// The golden fixture: a random-weight ESM-2 checkpoint plus fair-esm's outputs on it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { goldenDir } from './paths.js';

export { fixtureModelDir } from './paths.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';

export interface GoldenCase {
  id: string;
  sequence: string;
  num_tokens: number;
  pseudo_log_likelihood?: number;
  pseudo_perplexity?: number;
  variant_scores?: { mutation: string; masked_marginal: number; wt_marginal: number }[];
}

export async function goldenCases(): Promise<GoldenCase[]> {
  const raw = JSON.parse(await readFile(join(goldenDir, 'cases.json'), 'utf8')) as { cases: GoldenCase[] };
  return raw.cases;
}

/** fair-esm's output `<case id>.<quantity>` as float32. */
export async function goldenTensor(caseId: string, quantity: string): Promise<Float32Array> {
  const file = await SafetensorsFile.open(join(goldenDir, 'expected.safetensors'));
  try {
    return await file.readFloat32(`${caseId}.${quantity}`);
  } finally {
    await file.close();
  }
}

/** ‖actual − expected‖ / ‖expected‖, the fixture's tolerance measure. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length mismatch: ${actual.length} vs ${expected.length}`);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    diff += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return Math.sqrt(diff) / Math.sqrt(norm);
}
