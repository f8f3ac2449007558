// `esm2 embed` end to end: the real CLI process on the golden fixture, its safetensors output
// compared with fair-esm's tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SafetensorsFile } from '../src/model/safetensors.js';
import { goldenCases, goldenTensor, relativeError } from './helpers/golden.js';
import { startGoldenEngine } from './helpers/golden-engine.js';
import { fixtureModelDir, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

const exec = promisify(execFile);
const cli = join(repoRoot, 'bin', 'esm2.js');

async function esm2(args: string[], cacheDir: string) {
  return exec(process.execPath, [cli, ...args], { env: { ...process.env, ESM2_COMPILE_CACHE: cacheDir } });
}

/** Rows [from, to) of a [rows, width] tensor. */
function rows(data: Float32Array, width: number, from: number, to: number): Float32Array {
  return data.subarray(from * width, to * width);
}

test('esm2 embed writes every esm-extract output, matching fair-esm', async (t) => {
  const dir = await tempDir(t);
  const cases = await goldenCases();
  const fasta = join(dir, 'cases.fasta');
  await writeFile(fasta, cases.map((c) => `>${c.id} golden case\n${c.sequence.match(/.{1,60}/g)!.join('\n')}\n`).join(''));
  const output = join(dir, 'out.safetensors');
  const { stderr } = await esm2(['embed', '--model', fixtureModelDir, '--input', fasta, '--output', output, '--include', 'mean,per_tok,bos,logits,contacts', '--repr-layers', '1,-1', '--toks-per-batch', '200', '--no-progress'], dir);
  assert.match(stderr, /wrote 56 tensors .* for 7 sequences/);

  const file = await SafetensorsFile.open(output);
  t.after(() => file.close());
  assert.equal(file.tensors.size, cases.length * 8); // 2 layers × (mean, per_tok, bos) + logits + contacts
  for (const c of cases) {
    const L = c.num_tokens - 2;
    const lastHidden = await goldenTensor(c.id, 'last_hidden');
    const expected: [string, Float32Array][] = [
      [`${c.id}/mean/2`, await goldenTensor(c.id, 'mean')],
      [`${c.id}/per_tok/2`, rows(lastHidden, 32, 1, L + 1)],
      [`${c.id}/per_tok/1`, rows(await goldenTensor(c.id, 'repr_layer1'), 32, 1, L + 1)],
      [`${c.id}/bos/2`, rows(lastHidden, 32, 0, 1)],
      [`${c.id}/logits`, rows(await goldenTensor(c.id, 'logits'), 33, 1, L + 1)],
      [`${c.id}/contacts`, await goldenTensor(c.id, 'contacts')],
    ];
    for (const [name, reference] of expected) {
      const actual = await file.readFloat32(name);
      const err = relativeError(actual, reference);
      assert.ok(err <= 1e-5, `${name}: relative error ${err.toExponential(2)}`);
    }
    assert.deepEqual(file.tensors.get(`${c.id}/logits`)!.shape, [L, 33]);
    assert.deepEqual(file.tensors.get(`${c.id}/contacts`)!.shape, [L, L]);
  }
});

test('esm2 embed defaults to the mean of the last layer', async (t) => {
  const dir = await tempDir(t);
  const fasta = join(dir, 'one.fasta');
  await writeFile(fasta, '>p1\nMKTVRQERLKSIVRILERSKEPVSGAQL\n');
  const output = join(dir, 'out.safetensors');
  await esm2(['embed', '--model', fixtureModelDir, '--input', fasta, '--output', output, '--no-progress'], dir);
  const file = await SafetensorsFile.open(output);
  t.after(() => file.close());
  assert.deepEqual([...file.tensors.keys()], ['p1/mean/2']);
  assert.ok(relativeError(await file.readFloat32('p1/mean/2'), await goldenTensor('seed_example', 'mean')) <= 1e-5);
});

test('esm2 embed with a damaged compile cache warns, naming the file, recompiles and still matches fair-esm', async (t) => {
  const dir = await tempDir(t);
  const cacheDir = join(dir, 'compiled');
  const fasta = join(dir, 'one.fasta');
  await writeFile(fasta, '>p1\nMKTVRQERLKSIVRILERSKEPVSGAQL\n');
  const output = join(dir, 'out.safetensors');
  const args = ['embed', '--model', fixtureModelDir, '--input', fasta, '--output', output, '--no-progress'];
  await esm2(args, cacheDir);
  const [key] = await readdir(cacheDir);
  const data = join(cacheDir, key, 'model.onnx.data');
  await writeFile(data, Buffer.alloc((await stat(data)).size)); // zeroed weights, same size

  const { stderr } = await esm2(args, cacheDir);
  assert.ok(stderr.includes(`warning: cached graph ${join(cacheDir, key)} is damaged: ${data} has sha256 `), stderr);
  const file = await SafetensorsFile.open(output);
  t.after(() => file.close());
  assert.ok(relativeError(await file.readFloat32('p1/mean/2'), await goldenTensor('seed_example', 'mean')) <= 1e-5);
});

test('esm2 embed names the record, character and position of a bad residue', async (t) => {
  const dir = await tempDir(t);
  const fasta = join(dir, 'bad.fasta');
  await writeFile(fasta, '>ok\nMKT\n>broken\nMKT1V\n');
  await assert.rejects(
    esm2(['embed', '--model', fixtureModelDir, '--input', fasta, '--output', join(dir, 'out.safetensors'), '--no-progress'], dir),
    (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /record "broken": invalid character '1' at position 4/);
      const errors = err.stderr.split('\n').filter((line) => line.startsWith('esm2:'));
      assert.equal(errors.length, 1, 'one error line');
      return true;
    },
  );
});

test('esm2 embed --device cuda:0 without a GPU: runs fp32 on cpu, warns, and the file records device and precision', async (t) => {
  const dir = await tempDir(t);
  const fasta = join(dir, 'one.fasta');
  await writeFile(fasta, '>p1\nMKTVRQERLKSIVRILERSKEPVSGAQL\n');
  const output = join(dir, 'gpu.safetensors');
  const { stderr } = await esm2(['embed', '--model', fixtureModelDir, '--input', fasta, '--output', output, '--device', 'cuda:0', '--no-progress'], dir);
  assert.match(stderr, /warning: cuda:0 unavailable, running on cpu \(fp32\): cuda:0 unavailable: \S/);
  const file = await SafetensorsFile.open(output);
  t.after(() => file.close());
  const { fallback_reason: reason, ...metadata } = file.metadata;
  assert.deepEqual(metadata, { format: 'pt', model: fixtureModelDir, device_requested: 'cuda:0', device: 'cpu', precision: 'fp32', include: 'mean', repr_layers: '-1' });
  assert.match(reason ?? '', /^cuda:0 unavailable: \S/);
  // fp32 numerics (the GPU's fp16 graph would be ~5e-4 off fair-esm).
  const err = relativeError(await file.readFloat32('p1/mean/2'), await goldenTensor('seed_example', 'mean'));
  assert.ok(err <= 1e-5, `relative error ${err.toExponential(2)}`);

  const cpuOutput = join(dir, 'cpu.safetensors');
  await esm2(['embed', '--model', fixtureModelDir, '--input', fasta, '--output', cpuOutput, '--no-progress'], dir);
  const cpu = await SafetensorsFile.open(cpuOutput);
  t.after(() => cpu.close());
  assert.deepEqual([cpu.metadata.device_requested, cpu.metadata.device, cpu.metadata.precision, cpu.metadata.fallback_reason], ['cpu', 'cpu', 'fp32', undefined]);
});

test('esm2 embed --device cuda:0 --no-cpu-fallback without a GPU: exit 1, one line naming device, reason and flag, no file', async (t) => {
  const dir = await tempDir(t);
  const fasta = join(dir, 'one.fasta');
  await writeFile(fasta, '>p1\nMKTVRQ\n');
  const output = join(dir, 'out.safetensors');
  await assert.rejects(esm2(['embed', '--model', fixtureModelDir, '--input', fasta, '--output', output, '--device', 'cuda:0', '--no-cpu-fallback', '--no-progress'], dir), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    const errors = err.stderr.split('\n').filter((line) => line.startsWith('esm2:'));
    assert.equal(errors.length, 1, err.stderr);
    assert.match(errors[0], /^esm2: replica 0 \(cuda:0\): cuda:0 unavailable: \S.*; falling back to cpu is not allowed \(--no-cpu-fallback\)$/);
    return true;
  });
  assert.equal(existsSync(output), false);
});

test('esm2 embed runs a record longer than 1,022 residues as windows, as the server does, and assembles them', async (t) => {
  const dir = await tempDir(t);
  const sequence = Array.from({ length: 1100 }, (_, i) => 'ACDEFGHIKLMNPQRSTVWY'[(i * 7 + 3) % 20]).join('');
  const fasta = join(dir, 'long.fasta');
  await writeFile(fasta, `>long\n${sequence}\n`);
  const output = join(dir, 'long.safetensors');
  await esm2(['embed', '--model', fixtureModelDir, '--input', fasta, '--output', output, '--include', 'per_tok', '--no-progress'], dir);
  const file = await SafetensorsFile.open(output);
  t.after(() => file.close());
  const got = await file.readFloat32('long/per_tok/2');
  assert.equal(got.length, 1100 * 32);

  // The two windows (residues 0–1021 and 78–1099) run alone, averaged where they overlap.
  const golden = await startGoldenEngine();
  t.after(() => golden.close());
  const tokens = golden.engine.checkpoint.tokenizer.encode(sequence);
  const windowRows = async (start: number) => {
    const w = new Int32Array(1024);
    w[0] = tokens[0];
    w.set(tokens.subarray(1 + start, 1 + start + 1022), 1);
    w[1023] = tokens[tokens.length - 1];
    const [result] = await golden.infer([w], { hidden: [2] });
    return result.hidden![2];
  };
  const [a, b] = [await windowRows(0), await windowRows(78)];
  let worst = 0;
  for (const residue of [0, 77, 78, 500, 1021, 1022, 1099]) {
    for (let d = 0; d < 32; d++) {
      const inA = residue < 1022 ? a[(residue + 1) * 32 + d] : undefined;
      const inB = residue >= 78 ? b[(residue - 78 + 1) * 32 + d] : undefined;
      const expected = inA !== undefined && inB !== undefined ? (inA + inB) / 2 : (inA ?? inB)!;
      worst = Math.max(worst, Math.abs(got[residue * 32 + d] - expected));
    }
  }
  assert.ok(worst < 1e-5, `largest difference from the window assembly ${worst}`);
});
