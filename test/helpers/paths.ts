// Test paths computed from this file's location, so tests work from src (ts) or dist (js) layouts.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
}

export const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
/** The golden fixtures kept in the repository (test/fixtures/golden/README.md). */
export type GoldenFixture = 'esm2_tiny' | 'esm1b_tiny' | 'esmc_tiny';
/** A golden fixture's directory (checkpoint + fair-esm's outputs). */
export function goldenDirOf(fixture: GoldenFixture): string {
  return path.join(repoRoot, 'test/fixtures/golden', fixture);
}
/** The HF-layout checkpoint inside a golden fixture (`layout`: ESM C's other copy, `model_transformers`). */
export function fixtureModelDirOf(fixture: GoldenFixture, layout: 'model' | 'model_transformers' = 'model'): string {
  return path.join(goldenDirOf(fixture), layout);
}
/** The golden ESM-2 tiny fixture, the default of every helper. */
export const goldenDir = goldenDirOf('esm2_tiny');
export const fixtureModelDir = fixtureModelDirOf('esm2_tiny');
