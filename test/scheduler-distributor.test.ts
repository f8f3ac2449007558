// Device distribution for /predict/batch: the seed's contiguous table, and balanced load.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { distribute, distributionInfo } from '../src/scheduler/distributor.js';

/** mulberry32: seeded, so a failing random case reproduces. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const load = (lengths: number[], indices: number[]) => indices.reduce((sum, i) => sum + lengths[i], 0);

describe('distribute: contiguous (the seed algorithm)', () => {
  test('20 sequences on 8 devices: 3,3,3,3,2,2,2,2 in contiguous chunks', () => {
    const assignment = distribute(new Array(20).fill(10), 8, 'contiguous');
    assert.deepEqual(assignment, [
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
      [9, 10, 11],
      [12, 13],
      [14, 15],
      [16, 17],
      [18, 19],
    ]);
    assert.deepEqual(distributionInfo(assignment), {
      total_sequences: 20,
      num_gpus_used: 8,
      sequences_per_gpu: { gpu_0: 3, gpu_1: 3, gpu_2: 3, gpu_3: 3, gpu_4: 2, gpu_5: 2, gpu_6: 2, gpu_7: 2 },
      gpu_assignments: {
        gpu_0: [0, 1, 2],
        gpu_1: [3, 4, 5],
        gpu_2: [6, 7, 8],
        gpu_3: [9, 10, 11],
        gpu_4: [12, 13],
        gpu_5: [14, 15],
        gpu_6: [16, 17],
        gpu_7: [18, 19],
      },
    });
  });

  test('fewer sequences than devices: empty devices are skipped in the info', () => {
    const assignment = distribute([5, 9, 7], 8, 'contiguous');
    assert.deepEqual(assignment.slice(0, 3), [[0], [1], [2]]);
    assert.ok(assignment.slice(3).every((indices) => indices.length === 0));
    assert.deepEqual(distributionInfo(assignment), {
      total_sequences: 3,
      num_gpus_used: 3,
      sequences_per_gpu: { gpu_0: 1, gpu_1: 1, gpu_2: 1 },
      gpu_assignments: { gpu_0: [0], gpu_1: [1], gpu_2: [2] },
    });
  });

  test('contiguous ignores lengths; one device takes everything in order', () => {
    assert.deepEqual(distribute([100, 1, 50], 1, 'contiguous'), [[0, 1, 2]]);
    assert.deepEqual(distribute([], 3, 'contiguous'), [[], [], []]);
    assert.deepEqual(distributionInfo([[], [], []]), { total_sequences: 0, num_gpus_used: 0, sequences_per_gpu: {}, gpu_assignments: {} });
  });
});

describe('distribute: balanced', () => {
  test('every device finishes together: max load − min load ≤ the longest sequence', () => {
    const random = seededRandom(7);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(random() * 64);
      const devices = 1 + Math.floor(random() * 8);
      const lengths = Array.from({ length: n }, () => 3 + Math.floor(random() * 1022));
      const assignment = distribute(lengths, devices, 'balanced');
      const label = `trial ${trial}: ${n} on ${devices}`;
      assert.equal(assignment.length, devices, label);
      assert.deepEqual(assignment.flat().sort((a, b) => a - b), lengths.map((_, i) => i), `${label}: each index once`);
      for (const indices of assignment) assert.deepEqual(indices, [...indices].sort((a, b) => a - b), `${label}: sorted`);
      if (n >= devices) {
        const loads = assignment.map((indices) => load(lengths, indices));
        assert.ok(Math.max(...loads) - Math.min(...loads) <= Math.max(...lengths), `${label}: loads ${loads}`);
      }
    }
  });

  test('beats contiguous on skewed lengths, where contiguous puts the long ones together', () => {
    const lengths = [1000, 1000, 1000, 1000, 10, 10, 10, 10];
    const makespan = (assignment: number[][]) => Math.max(...assignment.map((indices) => load(lengths, indices)));
    assert.equal(makespan(distribute(lengths, 2, 'contiguous')), 4000);
    assert.equal(makespan(distribute(lengths, 2, 'balanced')), 2020);
    assert.deepEqual(distribute(lengths, 2, 'balanced'), [
      [0, 2, 4, 6],
      [1, 3, 5, 7],
    ]);
  });

  test('fewer sequences than devices: one each, the rest empty', () => {
    const assignment = distribute([5, 9], 4, 'balanced');
    assert.deepEqual(assignment, [[1], [0], [], []]);
    assert.equal(distributionInfo(assignment).num_gpus_used, 2);
  });
});

test('distribute refuses 0, negative or fractional device counts, and unknown strategies', () => {
  for (const devices of [0, -1, 1.5, NaN]) {
    assert.throws(() => distribute([1, 2], devices, 'contiguous'), RangeError, `devices ${devices}`);
    assert.throws(() => distribute([1, 2], devices, 'balanced'), RangeError, `devices ${devices}`);
  }
  assert.throws(() => distribute([1], 2, 'random' as never), RangeError);
});
