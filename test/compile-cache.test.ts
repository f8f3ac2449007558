// The compile cache verifies an entry before using it: a damaged one (weights zeroed at the same
// size, a truncated weights file, a garbage graph, a manifest without hashes) is reported, moved
// aside and recompiled, and the recompiled graph reproduces fair-esm; an intact entry stays a hit.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { loadCheckpoint, type Esm2Checkpoint } from '../src/model/checkpoint.js';
import { compileCheckpoint, type CompiledModel, type CompileOptions } from '../src/compile/index.js';
import { prepareModel } from '../src/engine/prepare.js';
import { runGoldenRows } from './helpers/run-graph.js';
import { goldenCases, fixtureModelDir, goldenTensor, relativeError, type GoldenCase } from './helpers/golden.js';
import { tempDir } from './helpers/temp-dir.js';

const TOLERANCE = 1e-5;

let checkpoint: Esm2Checkpoint;
let cases: GoldenCase[];

before(async () => {
  checkpoint = await loadCheckpoint(fixtureModelDir);
  cases = await goldenCases();
});
after(() => checkpoint.close());

/** Compiles into a fresh cache of `t`; returns a compile function for that cache and the warnings it reported. */
async function freshCache(t: TestContext): Promise<{ compile: () => Promise<CompiledModel>; warnings: string[]; cacheDir: string }> {
  const cacheDir = await tempDir(t, 'esm2-cache-');
  const warnings: string[] = [];
  const options: CompileOptions = { variant: 'default', precision: 'fp32', cacheDir, onWarning: (m) => warnings.push(m) };
  return { compile: () => compileCheckpoint(checkpoint, options), warnings, cacheDir };
}

/** Every golden case in one padded batch through `compiled`, against fair-esm's tensors. */
async function assertGolden(compiled: CompiledModel): Promise<void> {
  const session = await ort.InferenceSession.create(compiled.onnxPath);
  try {
    const rows = cases.map((c) => checkpoint.tokenizer.encode(c.sequence));
    const results = await runGoldenRows(session, rows, { padTokenId: checkpoint.tokenizer.padId, numLayers: compiled.numLayers, contacts: false });
    for (const [i, c] of cases.entries()) {
      for (const [quantity, actual] of Object.entries(results[i])) {
        const err = relativeError(actual, await goldenTensor(c.id, quantity));
        assert.ok(err <= TOLERANCE, `${c.id}.${quantity}: relative error ${err.toExponential(2)} > ${TOLERANCE}`);
      }
    }
  } finally {
    await session.release();
  }
}

/** Damages a compiled entry, compiles again and checks: one warning naming `file` and matching `problem`, a real compile, golden outputs, nothing left aside. */
async function assertRecompiled(t: TestContext, file: 'model.onnx' | 'model.onnx.data', damage: (path: string) => Promise<void>, problem: RegExp): Promise<void> {
  const { compile, warnings, cacheDir } = await freshCache(t);
  const first = await compile();
  assert.equal(first.compiled, true);
  const path = join(first.onnxPath, '..', file);
  await damage(path);

  const second = await compile();
  assert.equal(second.compiled, true, 'the damaged entry is compiled again');
  assert.equal(second.onnxPath, first.onnxPath);
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.ok(warnings[0].includes(path), `the warning names ${path}: ${warnings[0]}`);
  assert.match(warnings[0], problem);
  await assertGolden(second);
  assert.deepEqual(await readdir(cacheDir), [second.cacheKey], 'the damaged entry is removed, no work directory is left');

  const third = await compile();
  assert.equal(third.compiled, false, 'the recompiled entry is a cache hit');
  assert.equal(warnings.length, 1);
}

test('weights zeroed at the same size are detected by hash and recompiled; outputs match fair-esm', (t) =>
  assertRecompiled(
    t,
    'model.onnx.data',
    async (path) => {
      const { size } = await stat(path);
      await writeFile(path, Buffer.alloc(size));
      assert.equal((await stat(path)).size, size);
    },
    /has sha256 [0-9a-f]{64}, the manifest records [0-9a-f]{64} \(same size, different content\)/,
  ));

test('a truncated weights file is detected by size and recompiled; outputs match fair-esm', (t) =>
  assertRecompiled(t, 'model.onnx.data', async (path) => truncate(path, Math.floor((await stat(path)).size / 2)), /is \d+ bytes, the manifest records \d+/));

test('a garbage graph file is detected and recompiled; outputs match fair-esm', (t) =>
  assertRecompiled(t, 'model.onnx', async (path) => writeFile(path, Buffer.alloc((await stat(path)).size, 0x5a)), /sha256/));

test('an entry from before verification (manifest without file hashes) is recompiled', async (t) => {
  const { compile, warnings } = await freshCache(t);
  const first = await compile();
  const manifestPath = join(first.onnxPath, '..', 'manifest.json');
  const { files: _files, ...old } = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
  await writeFile(manifestPath, JSON.stringify(old));
  const second = await compile();
  assert.equal(second.compiled, true);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /records no file sizes and hashes \(an entry from before cached graphs were verified\)/);
  await assertGolden(second);
});

test('compiles racing on one damaged entry all end with an intact graph, and the cache holds only it', async (t) => {
  const { compile, warnings, cacheDir } = await freshCache(t);
  const first = await compile();
  const dataPath = join(first.onnxPath, '..', 'model.onnx.data');
  await writeFile(dataPath, Buffer.alloc((await stat(dataPath)).size));
  // Interleaved at every await: one moves the entry aside, another finds it gone or already replaced,
  // one rename wins and the others verify the winner. Whatever the order, each ends with a good graph.
  const raced = await Promise.all([compile(), compile(), compile()]);
  assert.ok(warnings.length >= 1 && warnings.length <= 3, JSON.stringify(warnings));
  assert.ok(raced.some((r) => r.compiled));
  for (const r of raced) assert.equal(r.onnxPath, first.onnxPath);
  assert.deepEqual(await readdir(cacheDir), [first.cacheKey]);
  assert.equal((await compile()).compiled, false);
  await assertGolden(raced[0]);
});

test('an intact entry is a cache hit: nothing recompiled or rewritten, and its manifest records every file', async (t) => {
  const { compile, warnings, cacheDir } = await freshCache(t);
  const first = await compile();
  const dir = join(first.onnxPath, '..');
  const names = (await readdir(dir)).sort();
  assert.deepEqual(names, ['manifest.json', 'model.onnx', 'model.onnx.data']);
  const before = await Promise.all(names.map((n) => stat(join(dir, n))));

  const second = await compile();
  assert.equal(second.compiled, false);
  assert.equal(second.compileMs, 0);
  assert.deepEqual(warnings, []);
  assert.deepEqual(await readdir(cacheDir), [first.cacheKey]);
  const after = await Promise.all(names.map((n) => stat(join(dir, n))));
  for (const [i, name] of names.entries()) {
    assert.equal(after[i].ino, before[i].ino, `${name} is the same file`);
    assert.equal(after[i].mtimeMs, before[i].mtimeMs, `${name} is not rewritten`);
  }
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { files: Record<string, { size: number; sha256: string }> };
  for (const name of ['model.onnx', 'model.onnx.data']) {
    const bytes = await readFile(join(dir, name));
    assert.deepEqual(manifest.files[name], { size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') }, name);
  }
  await assertGolden(second);
});

test('prepareModel (esm2 embed, the server) logs a damaged entry at level warn, naming the file', async (t) => {
  const cacheDir = await tempDir(t, 'esm2-cache-');
  const first = await prepareModel({ modelDir: fixtureModelDir, device: 'cpu', cacheDir });
  await first.checkpoint.close();
  const dataPath = join(first.compiled[0].onnxPath, '..', 'model.onnx.data');
  await writeFile(dataPath, Buffer.alloc((await stat(dataPath)).size));

  const logs: { message: string; level?: string }[] = [];
  const second = await prepareModel({ modelDir: fixtureModelDir, device: 'cpu', cacheDir, log: (message, level) => logs.push({ message, level }) });
  await second.checkpoint.close();
  const warnings = logs.filter((l) => l.level === 'warn');
  assert.equal(warnings.length, 1, JSON.stringify(logs));
  assert.ok(warnings[0].message.includes(dataPath), warnings[0].message);
  assert.ok(logs.some((l) => l.level !== 'warn' && /^compiled default graph/.test(l.message)), JSON.stringify(logs));
  await assertGolden(second.compiled[0]);
});
