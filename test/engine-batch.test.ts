import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  meanRows,
  outputsToFetch,
  padTokens,
  sliceContacts,
  splitResults,
  type BatchOutput,
} from '../src/engine/batch.js';
import { float16ToFloat32 } from '../src/model/float-formats.js';

const CLS = 0;
const PAD = 1;
const EOS = 2;

test('padTokens right-pads every row to the longest with the pad id', () => {
  const batch = padTokens([Int32Array.of(CLS, 5, 6, EOS), Int32Array.of(CLS, 7, EOS)], PAD);
  assert.equal(batch.batchSize, 2);
  assert.equal(batch.seqLen, 4);
  assert.deepEqual([...batch.ids], [0n, 5n, 6n, 2n, 0n, 7n, 2n, 1n]);
});

test('padTokens rejects an empty batch and rows without cls and eos', () => {
  assert.throws(() => padTokens([], PAD), /at least one sequence/);
  assert.throws(() => padTokens([Int32Array.of(CLS, 5, EOS), Int32Array.of(CLS)], PAD), /sequence 1 has 1 tokens/);
});

test('outputsToFetch asks for each needed output once and nothing else', () => {
  assert.deepEqual(outputsToFetch({ logits: true, hidden: [2], mean: [0, 2], bos: [1], contacts: true }), [
    'logits',
    'hidden_0',
    'hidden_1',
    'hidden_2',
    'contacts',
  ]);
  assert.deepEqual(outputsToFetch({ mean: [6] }), ['hidden_6']);
  assert.deepEqual(outputsToFetch({}), []);
});

// Batch of 2, T = 4, width 2. Sequence 0 = cls r r eos (L = 2); sequence 1 = cls r eos pad (L = 1).
// cls, eos and pad rows hold values that would spoil a mean that included them.
const hidden: BatchOutput = {
  dims: [2, 4, 2],
  data: Float32Array.of(
    ...[1000, 1000, 1, -1, 2, -3, 2000, 2000], // sequence 0
    ...[1000, 1000, 11, -11, 2000, 2000, 9999, 9999], // sequence 1
  ),
};
// contacts[b, i, j] = 100 b + 10 i + j
const contacts: BatchOutput = {
  dims: [2, 4, 4],
  data: Float32Array.from({ length: 32 }, (_, k) => 100 * Math.floor(k / 16) + 10 * Math.floor((k % 16) / 4) + (k % 4)),
};

test('mean covers residue rows only: cls, eos and pad are excluded', () => {
  const [first, second] = splitResults({ hidden_1: hidden }, [4, 3], { mean: [1] });
  assert.deepEqual([...first.mean![1]], [1.5, -2]);
  assert.deepEqual([...second.mean![1]], [11, -11]);
});

test('mean accumulates in float64', () => {
  // In float32, 2^24 + 1 + 1 + 2 sums to 2^24 + 2; the exact mean is 2^22 + 1.
  const rows: BatchOutput = { dims: [1, 6, 1], data: Float32Array.of(0, 2 ** 24, 1, 1, 2, 0) };
  assert.equal(meanRows(rows, 0, 1, 5)[0], 2 ** 22 + 1);
});

test('hidden and logits keep all token rows of the sequence; bos is row 0', () => {
  const [first, second] = splitResults({ hidden_2: hidden, logits: hidden }, [4, 3], {
    logits: true,
    hidden: [2],
    bos: [2],
  });
  assert.deepEqual([...first.hidden![2]], [1000, 1000, 1, -1, 2, -3, 2000, 2000]);
  assert.deepEqual([...second.logits!], [1000, 1000, 11, -11, 2000, 2000]);
  assert.deepEqual([...second.bos![2]], [1000, 1000]);
  // Copies, not views into the batch output.
  assert.notEqual(second.logits!.buffer, hidden.data.buffer);
});

test('contacts are the L × L block at rows/cols 1 … L', () => {
  assert.deepEqual([...sliceContacts(contacts, 0, 2)], [11, 12, 21, 22]);
  const [first, second] = splitResults({ contacts }, [4, 3], { contacts: true });
  assert.deepEqual([...first.contacts!], [11, 12, 21, 22]);
  assert.deepEqual([...second.contacts!], [111]);
});

test('splitResults names a missing output', () => {
  assert.throws(() => splitResults({}, [3], { mean: [4] }), /output "hidden_4"/);
});

test('float16ToFloat32 decodes normals, subnormals, infinities and NaN', () => {
  const decoded = float16ToFloat32(Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x3555, 0x0000));
  assert.deepEqual([...decoded.slice(0, 6)], [1, -2, 65504, 2 ** -24, Infinity, -Infinity]);
  assert.equal(decoded[6], Math.fround(0.333251953125));
  assert.ok(Number.isNaN(float16ToFloat32(Uint16Array.of(0x7e00))[0]));
});
