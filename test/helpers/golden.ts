// The golden fixtures: random-weight checkpoints (ESM-2, ESM-1b) plus fair-esm's outputs on them.
// Every helper takes the fixture's name, ESM-2's by default.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { goldenDirOf, type GoldenFixture } from './paths.js';

export { fixtureModelDir, fixtureModelDirOf, type GoldenFixture } from './paths.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';

export interface GoldenCase {
  id: string;
  sequence: string;
  num_tokens: number;
  pseudo_log_likelihood?: number;
  pseudo_perplexity?: number;
  variant_scores?: { mutation: string; masked_marginal: number; wt_marginal: number }[];
}

export async function goldenCases(fixture: GoldenFixture = 'esm2_tiny'): Promise<GoldenCase[]> {
  const raw = JSON.parse(await readFile(join(goldenDirOf(fixture), 'cases.json'), 'utf8')) as { cases: GoldenCase[] };
  return raw.cases;
}

/** fair-esm's output `<case id>.<quantity>` as float32. */
export async function goldenTensor(caseId: string, quantity: string, fixture: GoldenFixture = 'esm2_tiny'): Promise<Float32Array> {
  const file = await SafetensorsFile.open(join(goldenDirOf(fixture), 'expected.safetensors'));
  try {
    return await file.readFloat32(`${caseId}.${quantity}`);
  } finally {
    await file.close();
  }
}

/** ‖actual − expected‖ / ‖expected‖, the fixture's tolerance measure: the one `esm2 compare` reports. */
export { relativeError } from '../../src/tasks/precision-compare.js';
