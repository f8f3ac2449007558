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
/** The golden ESM-2 tiny fixture (checkpoint + fair-esm's outputs), kept in the repository (test/fixtures/golden/README.md). */
export const goldenDir = path.join(repoRoot, 'test/fixtures/golden/esm2_tiny');
/** The HF-layout checkpoint inside the golden fixture. */
export const fixtureModelDir = path.join(goldenDir, 'model');
