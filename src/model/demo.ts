// The built-in demo checkpoint: random weights of the tiny shape, generated once into the cache so
// that the server starts on a fresh machine with no model configured. Never mistaken for a real
// model: its name says so, and the server warns.
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeRandomCheckpoint } from './random-checkpoint.js';

export const DEMO_MODEL_NAME = 'esm2-demo (random weights — not a trained model)';
const DEMO_DIR_NAME = 'esm2-demo-tiny-seed1';

export function defaultDemoCacheDir(): string {
  return process.env.ESM2_DEMO_CACHE || join(homedir(), '.cache', 'esm2-serve', 'demo');
}

/** Returns the demo checkpoint's directory, writing it first if needed (atomically). */
export async function ensureDemoCheckpoint(cacheDir = defaultDemoCacheDir()): Promise<string> {
  const dir = join(cacheDir, DEMO_DIR_NAME);
  if (existsSync(join(dir, 'config.json'))) return dir;
  await mkdir(cacheDir, { recursive: true });
  const work = join(cacheDir, `.${DEMO_DIR_NAME}.${process.pid}.tmp`);
  await rm(work, { recursive: true, force: true });
  await writeRandomCheckpoint({ preset: 'tiny', outDir: work, seed: 1 });
  try {
    await rename(work, dir);
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    if (!existsSync(join(dir, 'config.json'))) throw err; // else another process won the race
  }
  return dir;
}
