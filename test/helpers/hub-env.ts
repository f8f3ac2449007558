// A hub environment for tests: the mock hub as HF_ENDPOINT, a fresh temp dir as HF_HOME (so no
// token file or cache of this machine leaks in), quick retries.
import { readdir, lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { hubEnv, type HubEnv } from '../../src/model/hub/index.js';
import { tempDir } from './temp-dir.js';

export async function testHubEnv(t: TestContext, endpoint: string, extra: Record<string, string> = {}): Promise<HubEnv> {
  const home = await tempDir(t, 'esm2-hf-home-');
  return hubEnv({ HF_HOME: home, HF_ENDPOINT: endpoint, ...extra });
}

/** Every entry under `dir`, relative, sorted; symlinks as `name -> target`. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(path.join(dir, rel))) {
      const entry = path.join(rel, name);
      const info = await lstat(path.join(dir, entry));
      if (info.isSymbolicLink()) out.push(`${entry} -> ${await readlink(path.join(dir, entry))}`);
      else if (info.isDirectory()) {
        out.push(`${entry}/`);
        await walk(entry);
      } else out.push(entry);
    }
  };
  await walk('');
  return out.sort();
}
