// Writable copies of the golden checkpoint, optionally with edited tensors, for loader tests.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { SafetensorsFile, writeSafetensors, type FloatDtype, type TensorToWrite } from '../../src/model/safetensors.js';
import { fixtureModelDirOf, type GoldenFixture } from './paths.js';
import { tempDir } from './temp-dir.js';

export const FIXTURE_TEXT_FILES = ['config.json', 'vocab.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

export interface FixtureTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Every tensor of the fixture with its stored (HF) name, in file order. */
export async function readFixtureTensors(fixture: GoldenFixture = 'esm2_tiny'): Promise<FixtureTensor[]> {
  const file = await SafetensorsFile.open(path.join(fixtureModelDirOf(fixture), 'model.safetensors'));
  try {
    const out: FixtureTensor[] = [];
    // Float tensors only: ESM C's hub layout also stores empty U8 `_extra_state` entries, never read.
    for (const [name, entry] of file.tensors) if (entry.dtype !== 'U8') out.push({ name, shape: [...entry.shape], data: await file.readFloat32(name) });
    return out;
  } finally {
    await file.close();
  }
}

export interface CopyOptions {
  /** Edit the tensor list before it is written (drop, rename, reshape). */
  edit?: (tensors: FixtureTensor[]) => FixtureTensor[];
  dtype?: FloatDtype;
  /** Write the text files only (the caller writes weights). */
  noWeights?: boolean;
  /** Which golden fixture to copy (default ESM-2's). */
  fixture?: GoldenFixture;
}

/** Copies the fixture into a fresh temp dir; weights are byte-identical unless edited or re-typed. */
export async function copyFixture(t: TestContext, options: CopyOptions = {}): Promise<string> {
  const dir = await tempDir(t);
  const fixtureModelDir = fixtureModelDirOf(options.fixture ?? 'esm2_tiny');
  for (const name of FIXTURE_TEXT_FILES) {
    if (existsSync(path.join(fixtureModelDir, name))) await writeFile(path.join(dir, name), await readFile(path.join(fixtureModelDir, name)));
  }
  if (options.noWeights) return dir;
  const target = path.join(dir, 'model.safetensors');
  if (!options.edit && !options.dtype) {
    await writeFile(target, await readFile(path.join(fixtureModelDir, 'model.safetensors')));
    return dir;
  }
  let tensors = await readFixtureTensors(options.fixture);
  if (options.edit) tensors = options.edit(tensors);
  await writeSafetensors(target, toWritable(tensors, options.dtype ?? 'F32'), { format: 'pt' });
  return dir;
}

export function toWritable(tensors: FixtureTensor[], dtype: FloatDtype): TensorToWrite[] {
  return tensors.map((x) => ({ name: x.name, dtype, shape: x.shape, data: x.data }));
}

/** Replaces one JSON file's content in a checkpoint copy. */
export async function editJson(dir: string, file: string, edit: (obj: Record<string, unknown>) => void): Promise<void> {
  const obj = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Record<string, unknown>;
  edit(obj);
  await writeFile(path.join(dir, file), JSON.stringify(obj, null, 2));
}
