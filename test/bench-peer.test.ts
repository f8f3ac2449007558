// bench/peer.ts and bench/padding.ts: the peer's locations and presets, its one-line skip reasons
// (nothing here reads the shared folder beside the checkout, or needs torch), and the padding share and tight batches.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { peerConfig, peerMissing, peerPreset } from '../bench/peer.js';
import { paddingShare, tightBatches } from '../bench/padding.js';
import { tokenBudgetBatches } from '../src/scheduler/token-budget.js';
import { tempDir } from './helpers/temp-dir.js';

test('peer locations come from the environment, relative to the root', () => {
  const c = peerConfig({ ESM2_PEER_PYTHON: '/x/python', ESM2_PEER_SCRIPT: 'p/b.py', ESM2_PEER_SRC: '/src' }, '/repo');
  assert.deepEqual(c, { python: '/x/python', script: '/repo/p/b.py', src: '/src' });
  const d = peerConfig({}, '/repo');
  assert.equal(d.script, '/shared/peer/peer_bench.py');
  assert.equal(d.src, '/repo/bench/.cache/peer-src');
});

test('peer presets', () => {
  assert.equal(peerPreset('esm2_t6_8M_UR50D'), 't6');
  assert.equal(peerPreset('esm2_t33_650M_UR50D'), 't33');
  assert.equal(peerPreset('esm2_t48_15B_UR50D'), undefined);
});

test('the peer is skipped with one line naming what is missing', async (t) => {
  const dir = await tempDir(t);
  const missingPython = await peerMissing({ python: `${dir}/no-python`, script: `${dir}/b.py`, src: dir });
  assert.match(missingPython!, /no .*no-python .*ESM2_PEER_PYTHON/);
  const missingScript = await peerMissing({ python: process.execPath, script: `${dir}/b.py`, src: dir });
  assert.match(missingScript!, /no peer script/);
  const missingSrc = await peerMissing({ python: process.execPath, script: process.execPath, src: dir });
  assert.match(missingSrc!, /no fair-esm source/);
  for (const reason of [missingPython, missingScript, missingSrc]) assert.doesNotMatch(reason!, /\n/);
});

test('padding share and tight batches under the same budget', () => {
  assert.equal(paddingShare([10, 10, 5], [[0, 1], [2]]), 0);
  assert.equal(paddingShare([10, 5], [[0, 1]]), 0.25);
  const lengths = [30, 32, 35, 200, 210, 220, 40, 600, 610];
  const tight = tightBatches(lengths, 1300);
  assert.deepEqual(tight.flat().sort((a, b) => a - b), lengths.map((_, i) => i));
  for (const batch of tight) assert.ok(batch.length === 1 || batch.length * Math.max(...batch.map((i) => lengths[i])) <= 1300);
  assert.ok(paddingShare(lengths, tight) <= paddingShare(lengths, tokenBudgetBatches(lengths, 1300)));
});
