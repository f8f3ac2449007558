// The golden checkpoint behind a real Infer (prepareModel → replica pool of one CPU replica →
// scheduler, exactly the CLI's engine), with every infer call counted, so tests can check what
// inference a task ran. Compiled graphs go to a temp dir removed on close.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalEngine, type LocalEngine } from '../../src/cli/local-engine.js';
import type { Infer } from '../../src/tasks/inference.js';
import { fixtureModelDirOf, type GoldenFixture } from './paths.js';

export interface GoldenEngine {
  engine: LocalEngine;
  /** engine.infer, counted. */
  infer: Infer;
  /** Number of token rows of each infer call so far. */
  calls: number[];
  close(): Promise<void>;
}

export async function startGoldenEngine(toksPerBatch = 4096, fixture: GoldenFixture = 'esm2_tiny'): Promise<GoldenEngine> {
  const cacheDir = await mkdtemp(join(tmpdir(), 'esm2-tasks-'));
  const engine = await startLocalEngine({ modelDir: fixtureModelDirOf(fixture), cacheDir, toksPerBatch, threads: 1 });
  const calls: number[] = [];
  return {
    engine,
    calls,
    infer: (tokens, want) => {
      calls.push(tokens.length);
      return engine.infer(tokens, want);
    },
    async close() {
      await engine.close();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
}
