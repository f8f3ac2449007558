// `esm2 embed --shard I/N`: record i of the FASTA belongs to shard i mod N; the shards of a file,
// embedded separately (as an Indexed Job's pods do), hold exactly the unsharded output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SafetensorsFile } from '../src/model/safetensors.js';
import { ShardSpecError, parseShardSpec, selectShard } from '../src/tasks/embed-file.js';
import { goldenCases } from './helpers/golden.js';
import { fixtureModelDir, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

const exec = promisify(execFile);
const cli = join(repoRoot, 'bin', 'esm2.js');
const SHARDS = 4;

async function esm2(args: string[], cacheDir: string) {
  return exec(process.execPath, [cli, ...args], { env: { ...process.env, ESM2_COMPILE_CACHE: cacheDir } });
}

interface Contents {
  metadata: Readonly<Record<string, string>>;
  tensors: Map<string, { shape: number[]; bytes: Buffer }>;
}

async function readAll(path: string): Promise<Contents> {
  const file = await SafetensorsFile.open(path);
  try {
    const tensors = new Map<string, { shape: number[]; bytes: Buffer }>();
    for (const [name, info] of file.tensors) {
      const data = await file.readFloat32(name);
      tensors.set(name, { shape: [...info.shape], bytes: Buffer.from(data.buffer, data.byteOffset, data.byteLength) });
    }
    return { metadata: file.metadata, tensors };
  } finally {
    await file.close();
  }
}

function maxAbsDiff(a: Buffer, b: Buffer): number {
  const x = new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
  const y = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  assert.equal(x.length, y.length);
  let max = 0;
  for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]));
  return max;
}

test('parseShardSpec reads I/N and refuses what is not a shard of N', () => {
  assert.deepEqual(parseShardSpec('0/4'), { index: 0, count: 4 });
  assert.deepEqual(parseShardSpec('3/4'), { index: 3, count: 4 });
  assert.deepEqual(parseShardSpec(' 0 / 1 '), { index: 0, count: 1 });
  const refuses = (spec: string, why: RegExp) =>
    assert.throws(() => parseShardSpec(spec), (err: unknown) => err instanceof ShardSpecError && why.test(err.message), spec);
  refuses('4/4', /shard index 4 is out of range: with 4 shards it must be from 0 to 3/);
  refuses('7/3', /out of range/);
  refuses('0/0', /number of shards N must be at least 1/);
  refuses('-1/4', /expected I\/N/);
  refuses('1', /expected I\/N/);
  refuses('a/b', /expected I\/N/);
  refuses('1.5/4', /expected I\/N/);
  refuses('', /expected I\/N/);
});

test('selectShard: record i goes to shard i mod N; the shards partition the records in order', () => {
  const records = Array.from({ length: 11 }, (_, i) => i);
  const shards = Array.from({ length: SHARDS }, (_, index) => selectShard(records, { index, count: SHARDS }));
  assert.deepEqual(shards, [
    [0, 4, 8],
    [1, 5, 9],
    [2, 6, 10],
    [3, 7],
  ]);
  assert.deepEqual(shards.flat().sort((a, b) => a - b), records);
  assert.deepEqual(selectShard(records, { index: 0, count: 1 }), records);
  assert.deepEqual(selectShard([1, 2], { index: 3, count: 4 }), []);
});

test(`esm2 embed over ${SHARDS} shards equals the unsharded output, record by record`, async (t) => {
  const dir = await tempDir(t);
  const cases = await goldenCases();
  // The golden cases and a few more records: 10 records over 4 shards gives shards of 3, 3, 2, 2.
  const records = [...cases.map((c) => ({ id: c.id, sequence: c.sequence })), { id: 'extra_a', sequence: 'MKTAYIAKQR' }, { id: 'extra_b', sequence: 'GSHMLEDPVDAFQLG' }, { id: 'extra_c', sequence: 'MEEPQSDPSV' }];
  const fasta = join(dir, 'proteins.fasta');
  await writeFile(fasta, records.map((r) => `>${r.id} description ignored\n${r.sequence.match(/.{1,60}/g)!.join('\n')}\n`).join(''));
  const common = ['--model', fixtureModelDir, '--input', fasta, '--include', 'mean,per_tok,bos,logits,contacts', '--repr-layers', '0,-1', '--toks-per-batch', '120', '--no-progress'];

  const whole = join(dir, 'whole.safetensors');
  await esm2(['embed', ...common, '--output', whole], dir); // also fills the compile cache the shards then share
  const shardPaths = Array.from({ length: SHARDS }, (_, i) => join(dir, `shard-${i}-of-${SHARDS}.safetensors`));
  const runs = await Promise.all(shardPaths.map((output, i) => esm2(['embed', ...common, '--shard', `${i}/${SHARDS}`, '--output', output], dir)));

  const expected = await readAll(whole);
  assert.equal(expected.tensors.size, records.length * 8); // 2 layers × (mean, per_tok, bos) + logits + contacts
  const seen = new Map<string, number>();
  for (let shard = 0; shard < SHARDS; shard++) {
    const members = records.filter((_, i) => i % SHARDS === shard).map((r) => r.id);
    assert.match(runs[shard].stderr, new RegExp(`for ${members.length} sequences \\(shard ${shard}/${SHARDS} of ${records.length} records\\)`));
    const got = await readAll(shardPaths[shard]);
    assert.equal(got.metadata.shard, `${shard}/${SHARDS}`);
    const ids = new Set([...got.tensors.keys()].map((name) => name.split('/')[0]));
    assert.deepEqual([...ids].sort(), [...members].sort(), `shard ${shard} holds records i with i mod ${SHARDS} = ${shard}`);
    for (const [name, tensor] of got.tensors) {
      assert.ok(!seen.has(name), `${name} is in shard ${seen.get(name)} and shard ${shard}`);
      seen.set(name, shard);
      const reference = expected.tensors.get(name);
      assert.ok(reference, `${name} (shard ${shard}) is not in the unsharded output`);
      assert.deepEqual(tensor.shape, reference.shape, `${name}: shape`);
      if (name.endsWith('/contacts')) {
        // The contact head's values move by an ulp or two (≤ 3e-7 measured) with the padded length
        // of the batch a sequence shares; every other output is bit-identical whatever the batch.
        const diff = maxAbsDiff(tensor.bytes, reference.bytes);
        assert.ok(diff <= 1e-6, `${name}: differs from the unsharded run by ${diff.toExponential(2)}`);
      } else {
        assert.ok(tensor.bytes.equals(reference.bytes), `${name}: values differ from the unsharded run`);
      }
    }
  }
  assert.deepEqual([...seen.keys()].sort(), [...expected.tensors.keys()].sort(), 'the shards together hold every tensor of the unsharded output');
});

test('esm2 embed --shard refuses an index outside 0 … N−1 before loading anything', async (t) => {
  const dir = await tempDir(t);
  const fasta = join(dir, 'one.fasta');
  await writeFile(fasta, '>p1\nMKTVRQERLK\n');
  for (const [spec, why] of [
    ['4/4', /shard index 4 is out of range: with 4 shards it must be from 0 to 3/],
    ['0/0', /number of shards N must be at least 1/],
    ['two/4', /expected I\/N/],
  ] as const) {
    const output = join(dir, `out-${spec.replace('/', '-')}.safetensors`);
    await assert.rejects(esm2(['embed', '--model', fixtureModelDir, '--input', fasta, '--output', output, '--shard', spec, '--no-progress'], dir), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1, spec);
      assert.match(err.stderr, /--shard/, spec);
      assert.match(err.stderr, why, spec);
      return true;
    });
    assert.ok(!existsSync(output), `${spec}: no output written`);
  }
});

test('esm2 embed --shard with more shards than records writes an empty, valid file', async (t) => {
  const dir = await tempDir(t);
  const fasta = join(dir, 'two.fasta');
  await writeFile(fasta, '>p1\nMKTVRQERLK\n>p2\nMKTAYIAKQR\n');
  const output = join(dir, 'shard-3-of-4.safetensors');
  await esm2(['embed', '--model', fixtureModelDir, '--input', fasta, '--output', output, '--shard', '3/4', '--no-progress'], dir);
  const got = await readAll(output);
  assert.equal(got.tensors.size, 0);
  assert.equal(got.metadata.shard, '3/4');
});
