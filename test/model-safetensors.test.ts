import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CheckpointError } from '../src/model/errors.js';
import {
  bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16, fromBfloat16Bits, fromFloat16Bits, toBfloat16Bits, toFloat16Bits,
} from '../src/model/float-formats.js';
import {
  openSafetensorsDir, SafetensorsFile, writeSafetensors, writeSafetensorsStreaming, type TensorSpec,
} from '../src/model/safetensors.js';
import { tempDir } from './helpers/temp-dir.js';

/** Asserts a rejection is one CheckpointError naming `file` (and `tensor` when given) with a message matching `re`. */
async function rejectsWith(p: Promise<unknown>, file: string, re: RegExp, tensor?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CheckpointError, `expected CheckpointError, got ${String(err)}`);
    assert.equal(err.file, file);
    assert.equal(err.tensor, tensor);
    assert.ok(!err.message.includes('\n'), 'one-line message');
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    if (tensor) assert.ok(err.message.includes(`tensor "${tensor}"`), err.message);
    assert.match(err.message, re);
    return true;
  });
}

/** A file with an arbitrary header object and data section (for malformed-header tests). */
async function rawFile(file: string, header: unknown, data: Buffer, headerLength?: bigint): Promise<void> {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  await writeFile(file, Buffer.concat([prefix, json, data]));
}

describe('float16 conversions', () => {
  test('known values round to nearest even', () => {
    const cases: Array<[number, number]> = [
      [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [1 / 3, 0x3555], [65504, 0x7bff], [65519, 0x7bff],
      [65520, 0x7c00], [1e6, 0x7c00], [-Infinity, 0xfc00], [0, 0x0000], [-0, 0x8000],
      [2 ** -14, 0x0400], [2 ** -24, 0x0001], [1023 * 2 ** -24, 0x03ff], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001],
      [2 ** -26, 0x0000], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [(2047 / 2048) * 2 ** -14, 0x0400],
    ];
    for (const [value, bits] of cases) assert.equal(toFloat16Bits(value), bits, `${value} → 0x${bits.toString(16)}`);
    const nan = toFloat16Bits(NaN);
    assert.equal(nan & 0x7c00, 0x7c00);
    assert.notEqual(nan & 0x3ff, 0);
  });

  test('every one of the 65536 bit patterns decodes and re-encodes exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const values = float16ToFloat32(all);
    const back = float32ToFloat16(values);
    for (let h = 0; h < 65536; h++) {
      const isNan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNan) assert.ok(Number.isNaN(values[h]));
      else assert.equal(back[h], h, `0x${h.toString(16)}`);
    }
    assert.equal(fromFloat16Bits(0x0001), 2 ** -24);
    assert.equal(fromFloat16Bits(0x7bff), 65504);
    assert.equal(fromFloat16Bits(0xfc00), -Infinity);
    assert.ok(Object.is(fromFloat16Bits(0x8000), -0));
  });
});

describe('bfloat16 conversions', () => {
  test('known values round to nearest even', () => {
    const cases: Array<[number, number]> = [
      [1, 0x3f80], [-2, 0xc000], [0.1, 0x3dcd], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82],
      [1 + 2 ** -8 + 2 ** -20, 0x3f81], [3.4028234663852886e38, 0x7f80], [Infinity, 0x7f80], [-0, 0x8000],
    ];
    for (const [value, bits] of cases) assert.equal(toBfloat16Bits(value), bits, `${value}`);
    assert.ok(Number.isNaN(fromBfloat16Bits(toBfloat16Bits(NaN))));
    // A NaN whose payload is only in the low 16 bits must stay NaN, not become infinity.
    const lowPayloadNaN = new Float32Array(new Uint32Array([0x7f800001]).buffer);
    assert.ok(Number.isNaN(bfloat16ToFloat32(float32ToBfloat16(lowPayloadNaN))[0]));
  });

  test('every bit pattern round-trips', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = float32ToBfloat16(bfloat16ToFloat32(all));
    for (let h = 0; h < 65536; h++) {
      const isNan = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
      if (!isNan) assert.equal(back[h], h);
    }
  });
});

describe('safetensors files', () => {
  const values = Float32Array.from([1, -2, 0.1, 1 / 3, 65520, 2 ** -24, 1 + 2 ** -8]);
  const tensors = [
    { name: 'a.f32', dtype: 'F32' as const, shape: [7], data: values },
    { name: 'b.f16', dtype: 'F16' as const, shape: [7, 1], data: values },
    { name: 'c.bf16', dtype: 'BF16' as const, shape: [1, 7], data: values },
    { name: 'scalar', dtype: 'F32' as const, shape: [], data: Float32Array.of(42) },
  ];

  test('round trip F32/F16/BF16 with exact values and metadata', async (t) => {
    const file = path.join(await tempDir(t), 'x.safetensors');
    const result = await writeSafetensors(file, tensors, { format: 'pt' });
    assert.equal(result.bytes, (await stat(file)).size);
    const bytes = await readFile(file);
    assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');

    const st = await SafetensorsFile.open(file);
    t.after(() => st.close());
    assert.deepEqual(st.metadata, { format: 'pt' });
    assert.deepEqual([...st.tensors.keys()], ['a.f32', 'b.f16', 'c.bf16', 'scalar']);
    assert.deepEqual(st.entry('b.f16').shape, [7, 1]);
    assert.deepEqual(await st.readFloat32('a.f32'), values);
    assert.deepEqual(Array.from(await st.readFloat32('b.f16')), [1, -2, 0.0999755859375, 0.333251953125, Infinity, 2 ** -24, 1.00390625]);
    assert.deepEqual(Array.from(await st.readFloat32('c.bf16')), [1, -2, 0.10009765625, 0.333984375, 65536, 2 ** -24, 1]);
    assert.deepEqual(Array.from(await st.readFloat32('scalar')), [42]);
    assert.deepEqual(new Uint16Array(new Uint8Array(await st.readRaw('b.f16')).buffer), float32ToFloat16(values));
    await rejectsWith(st.readFloat32('nope'), file, /not in this file/, 'nope');
  });

  test('streaming writer produces the same bytes from chunks, and refuses a wrong element count', async (t) => {
    const dir = await tempDir(t);
    const whole = path.join(dir, 'whole.safetensors');
    const streamed = path.join(dir, 'streamed.safetensors');
    await writeSafetensors(whole, tensors);
    const specs: TensorSpec[] = tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
    await writeSafetensorsStreaming(streamed, specs, function* (_spec, i) {
      const data = tensors[i].data;
      for (let k = 0; k < data.length; k += 3) yield data.subarray(k, k + 3);
    });
    assert.deepEqual(await readFile(streamed), await readFile(whole));

    const bad = path.join(dir, 'bad.safetensors');
    await assert.rejects(writeSafetensorsStreaming(bad, specs, () => [new Float32Array(2)]), /producer yielded 8 bytes, expected 28/);
    await assert.rejects(stat(bad), { code: 'ENOENT' });
    await assert.rejects(stat(`${bad}.partial`), { code: 'ENOENT' });
  });

  test('reads only what it needs: a header-valid file is opened without reading data', async (t) => {
    const file = path.join(await tempDir(t), 'x.safetensors');
    await writeSafetensors(file, tensors);
    const st = await SafetensorsFile.open(file);
    assert.equal(st.size, (await stat(file)).size);
    assert.equal(st.dataStart, 8 + st.headerBytes.length);
    await st.close();
  });
});

describe('malformed safetensors', () => {
  const entry = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

  test('too short, garbage header length, invalid JSON', async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'm.safetensors');
    await writeFile(file, Buffer.from([1, 2, 3]));
    await rejectsWith(SafetensorsFile.open(file), file, /too short/);
    await rawFile(file, { w: entry }, Buffer.alloc(8), 0x4141414141414141n);
    await rejectsWith(SafetensorsFile.open(file), file, /header length 4702111234474983745 is impossible/);
    await rawFile(file, '{"w": {"dtype": "F32",', Buffer.alloc(8));
    await rejectsWith(SafetensorsFile.open(file), file, /not valid JSON/);
    await rawFile(file, '[1,2]', Buffer.alloc(8));
    await rejectsWith(SafetensorsFile.open(file), file, /not a JSON object/);
  });

  test('offsets past the end, overlaps, size mismatches, unknown dtypes name the tensor', async (t) => {
    const file = path.join(await tempDir(t), 'm.safetensors');
    await rawFile(file, { ok: entry, w: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, Buffer.alloc(12));
    await rejectsWith(SafetensorsFile.open(file), file, /run past the end of the data section \(12 bytes\)/, 'w');
    await rawFile(file, { a: entry, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, Buffer.alloc(16));
    await rejectsWith(SafetensorsFile.open(file), file, /overlap tensor "a"/, 'b');
    await rawFile(file, { w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(12));
    await rejectsWith(SafetensorsFile.open(file), file, /span 8 bytes but F32 \[3\] needs 12/, 'w');
    await rawFile(file, { w: { dtype: 'F12', shape: [2], data_offsets: [0, 8] } }, Buffer.alloc(8));
    await rejectsWith(SafetensorsFile.open(file), file, /unknown dtype "F12"/, 'w');
    await rawFile(file, { w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, Buffer.alloc(8));
    await rejectsWith(SafetensorsFile.open(file), file, /shape/, 'w');
    await rawFile(file, { w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, Buffer.alloc(8));
    await rejectsWith(SafetensorsFile.open(file), file, /data_offsets/, 'w');
  });

  test('a truncated file names the first tensor that no longer fits', async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'x.safetensors');
    await writeSafetensors(file, [
      { name: 'first', dtype: 'F32', shape: [4], data: new Float32Array(4) },
      { name: 'second', dtype: 'F32', shape: [4], data: new Float32Array(4) },
    ]);
    const bytes = await readFile(file);
    await writeFile(file, bytes.subarray(0, bytes.length - 5));
    await rejectsWith(SafetensorsFile.open(file), file, /truncated/, 'second');
  });

  test('an I32 tensor opens but cannot be read as weights', async (t) => {
    const file = path.join(await tempDir(t), 'm.safetensors');
    await rawFile(file, { ids: { dtype: 'I32', shape: [2], data_offsets: [0, 8] } }, Buffer.alloc(8));
    const st = await SafetensorsFile.open(file);
    t.after(() => st.close());
    await rejectsWith(st.readFloat32('ids'), file, /dtype I32 cannot be read/, 'ids');
  });
});

describe('openSafetensorsDir', () => {
  const shardA = [{ name: 'a', dtype: 'F32' as const, shape: [2], data: Float32Array.of(1, 2) }];
  const shardB = [{ name: 'b', dtype: 'F16' as const, shape: [1], data: Float32Array.of(3) }];

  async function shardedDir(t: import('node:test').TestContext, weightMap: Record<string, string>): Promise<string> {
    const dir = await tempDir(t);
    await writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), shardA);
    await writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), shardB);
    await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 10 }, weight_map: weightMap }));
    return dir;
  }

  test('single file and sharded layouts map every name to its file', async (t) => {
    const single = await tempDir(t);
    await writeSafetensors(path.join(single, 'model.safetensors'), [...shardA, ...shardB]);
    const s = await openSafetensorsDir(single);
    assert.deepEqual([...s.tensors.keys()], ['a', 'b']);
    assert.equal(s.indexPath, undefined);
    await s.close();

    const dir = await shardedDir(t, { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' });
    const d = await openSafetensorsDir(dir);
    t.after(() => d.close());
    assert.equal(d.files.length, 2);
    assert.equal(d.source, path.join(dir, 'model.safetensors.index.json'));
    assert.equal(path.basename(d.tensors.get('b')!.file.path), 'model-00002-of-00002.safetensors');
    assert.deepEqual(Array.from(await d.tensors.get('b')!.file.readFloat32('b')), [3]);
  });

  test('a missing shard, a lying weight_map, or a path outside the directory is refused', async (t) => {
    const missing = await shardedDir(t, { a: 'model-00001-of-00002.safetensors', b: 'model-00003-of-00002.safetensors' });
    await rejectsWith(openSafetensorsDir(missing), path.join(missing, 'model-00003-of-00002.safetensors'), /shard listed in model.safetensors.index.json is missing/);
    const lying = await shardedDir(t, { a: 'model-00002-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' });
    await rejectsWith(openSafetensorsDir(lying), path.join(lying, 'model.safetensors.index.json'), /does not contain it/, 'a');
    const outside = await shardedDir(t, { a: '../model-00001-of-00002.safetensors' });
    await rejectsWith(openSafetensorsDir(outside), path.join(outside, 'model.safetensors.index.json'), /not a file name in this directory/, 'a');
  });

  test('an empty directory names model.safetensors', async (t) => {
    const dir = await tempDir(t);
    await rejectsWith(openSafetensorsDir(dir), path.join(dir, 'model.safetensors'), /not found \(and no model.safetensors.index.json\)/);
  });
});
