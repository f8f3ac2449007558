// Window layout and assembly for long sequences (pure functions, hand-checkable numbers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assembleWindows, windowTokens, windowWant, windowsFor } from '../src/tasks/windows.js';

test('windows: stride half a window, the last aligned to the end, every residue covered', () => {
  assert.deepEqual(windowsFor(10, 10), [{ start: 0, length: 10 }]);
  assert.deepEqual(windowsFor(3, 10), [{ start: 0, length: 3 }]);
  assert.deepEqual(windowsFor(2500, 1022).map((w) => w.start), [0, 511, 1022, 1478]);
  for (const L of [1023, 1600, 2044, 2500, 9999]) {
    const ws = windowsFor(L, 1022);
    const covered = new Uint8Array(L);
    for (const w of ws) {
      assert.equal(w.length, 1022);
      assert.ok(w.start >= 0 && w.start + w.length <= L);
      covered.fill(1, w.start, w.start + w.length);
    }
    assert.ok(covered.every((c) => c === 1), `L=${L}`);
  }
});

test('window tokens keep cls and eos around the window’s residues', () => {
  const tokens = Int32Array.of(0, 10, 11, 12, 13, 14, 2);
  assert.deepEqual([...windowTokens(tokens, { start: 1, length: 3 })], [0, 11, 12, 13, 2]);
});

test('means are computed from assembled rows', () => {
  assert.deepEqual(windowWant({ mean: [2], hidden: [1], logits: true }), { mean: undefined, hidden: [1, 2], logits: true });
});

test('assembly averages overlapping rows and contacts; means come from the assembled rows', () => {
  // 4 residues, windows of 3 at 0 and 1, hidden width 1, vocab width 1.
  const windows = windowsFor(4, 3);
  assert.deepEqual(windows.map((w) => w.start), [0, 1]);
  const rows = (values: number[]) => Float32Array.from(values);
  const results = [
    { hidden: { 1: rows([100, 1, 2, 3, 200]) }, logits: rows([0, 1, 1, 1, 0]), contacts: rows([1, 1, 1, 1, 1, 1, 1, 1, 1]), bos: { 1: rows([4]) } },
    { hidden: { 1: rows([300, 5, 6, 7, 400]) }, logits: rows([0, 3, 3, 3, 0]), contacts: rows([3, 3, 3, 3, 3, 3, 3, 3, 3]), bos: { 1: rows([8]) } },
  ];
  const out = assembleWindows(4, windows, results, { hidden: [1], mean: [1], logits: true, contacts: true, bos: [1] }, 1, 1);
  // residue 0 only in window 0 (1); residues 1, 2 in both ((2+5)/2, (3+6)/2); residue 3 only in window 1 (7).
  assert.deepEqual([...out.hidden![1]], [200, 1, 3.5, 4.5, 7, 300]);
  assert.deepEqual([...out.mean![1]], [(1 + 3.5 + 4.5 + 7) / 4]);
  assert.deepEqual([...out.logits!], [0, 1, 2, 2, 3, 0]);
  assert.deepEqual([...out.bos![1]], [6]);
  const c = out.contacts!;
  assert.equal(c[0 * 4 + 0], 1); // (0,0) only window 0
  assert.equal(c[1 * 4 + 2], 2); // (1,2) both
  assert.equal(c[3 * 4 + 3], 3); // (3,3) only window 1
  assert.equal(c[0 * 4 + 3], 0); // (0,3) in no window
});

test('a sequence that fits one window is returned unchanged', () => {
  const result = { mean: { 1: Float32Array.of(1, 2) } };
  assert.equal(assembleWindows(5, windowsFor(5, 10), [result], { mean: [1] }, 2, 33), result);
});

test('masked copies of long sequences use the window centred on the position, clamped to the ends', async () => {
  const { windowAround } = await import('../src/tasks/masked-marginals.js');
  assert.deepEqual(windowAround(5, 100, 200), { start: 0, length: 100 });
  assert.deepEqual(windowAround(1, 2500, 1022), { start: 0, length: 1022 });
  assert.deepEqual(windowAround(1200, 2500, 1022), { start: 1200 - 1 - 511, length: 1022 });
  assert.deepEqual(windowAround(2500, 2500, 1022), { start: 2500 - 1022, length: 1022 });
});
