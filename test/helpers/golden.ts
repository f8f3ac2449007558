// The golden fixtures: random-weight checkpoints (ESM-2, ESM-1b) plus fair-esm's outputs on them.
// Every helper takes the fixture's name, ESM-2's by default.
import assert from 'node:assert/strict';
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
import { relativeError } from '../../src/tasks/precision-compare.js';

export { relativeError };

/** One fill-mask answer: a masked position (its token row in the logits) and tokens with probabilities. */
export interface FillMaskPrediction {
  position: number;
  tokens: { token: string; probability: number }[];
}

/**
 * Each prediction's probabilities are the softmax over the whole row of the reference `logits`
 * (token rows × `vocab.length`) at its position, to 1e-5; `vocab`: the id order (placeholders included).
 */
export function assertFillMaskSoftmax(predictions: readonly FillMaskPrediction[], logits: Float32Array, vocab: readonly string[]): void {
  const V = vocab.length;
  for (const p of predictions) {
    const row = logits.subarray(p.position * V, (p.position + 1) * V);
    const max = Math.max(...row);
    const z = row.reduce((sum, x) => sum + Math.exp(x - max), 0);
    for (const t of p.tokens) {
      const expected = Math.exp(row[vocab.indexOf(t.token)] - max) / z;
      assert.ok(Math.abs(t.probability - expected) <= 1e-5, `position ${p.position} ${t.token}: ${t.probability} vs ${expected}`);
    }
  }
}

/** The fixture's float32 tolerance for tensors: ‖actual − reference‖ / ‖reference‖ (README.md beside the fixtures). */
export const TENSOR_TOLERANCE = 1e-5;

/** `actual` within `tolerance` relative error of `reference`, the error named in the message. */
export function checkRelative(label: string, actual: ArrayLike<number>, reference: Float32Array, tolerance = TENSOR_TOLERANCE): void {
  const err = relativeError(actual, reference);
  assert.ok(err <= tolerance, `${label}: relative error ${err.toExponential(2)}`);
}

/** Nested JSON arrays of numbers, flattened in row-major order. */
export const flat = (x: unknown): number[] => (Array.isArray(x) ? (x as unknown[]).flatMap(flat) : [x as number]);
