// esm2ForwardFlops against an independent count: every GEMM of the ESM-2 forward pass listed as
// (m × k) · (k × n), each costing 2·m·k·n FLOPs (a multiply-add counts 2), plus hand-worked totals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { esm2ForwardFlops } from '../src/model/flops.js';
import { getPreset, presetConfig } from '../src/model/presets.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { fixtureModelDir } from './helpers/golden.js';

interface Gemm {
  what: string;
  m: number;
  k: number;
  n: number;
}

interface Shape {
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  vocab: number;
}

/** The matrix products of one sequence of T tokens through ESM-2, written out one by one. */
function forwardGemms(s: Shape, T: number): Gemm[] {
  const headDim = s.hidden / s.heads;
  const gemms: Gemm[] = [];
  for (let layer = 0; layer < s.layers; layer++) {
    for (const proj of ['q', 'k', 'v', 'out']) gemms.push({ what: `${layer}.${proj}`, m: T, k: s.hidden, n: s.hidden });
    for (let h = 0; h < s.heads; h++) {
      gemms.push({ what: `${layer}.head${h}.scores`, m: T, k: headDim, n: T }); // Q_h · K_hᵀ
      gemms.push({ what: `${layer}.head${h}.context`, m: T, k: T, n: headDim }); // P_h · V_h
    }
    gemms.push({ what: `${layer}.fc1`, m: T, k: s.hidden, n: s.intermediate });
    gemms.push({ what: `${layer}.fc2`, m: T, k: s.intermediate, n: s.hidden });
  }
  gemms.push({ what: 'lm_head.dense', m: T, k: s.hidden, n: s.hidden });
  gemms.push({ what: 'lm_head.decoder', m: T, k: s.hidden, n: s.vocab });
  return gemms;
}

function countFlops(s: Shape, T: number): number {
  return forwardGemms(s, T).reduce((sum, g) => sum + 2 * g.m * g.k * g.n, 0);
}

const TINY: Shape = { layers: 2, hidden: 32, heads: 4, intermediate: 128, vocab: 33 };
const T6: Shape = { layers: 6, hidden: 320, heads: 20, intermediate: 1280, vocab: 33 };

test('the shapes used here are the presets and the golden checkpoint', async () => {
  for (const [name, shape] of [
    ['tiny', TINY],
    ['esm2_t6_8M_UR50D', T6],
  ] as const) {
    const c = presetConfig(getPreset(name));
    assert.deepEqual(
      { layers: c.numLayers, hidden: c.hiddenSize, heads: c.numHeads, intermediate: c.intermediateSize, vocab: c.vocabSize },
      shape,
      name,
    );
  }
  const golden = await loadCheckpoint(fixtureModelDir);
  try {
    assert.equal(golden.config.hiddenSize, TINY.hidden);
    assert.equal(golden.config.numLayers, TINY.layers);
    assert.equal(golden.config.vocabSize, TINY.vocab);
  } finally {
    await golden.close();
  }
});

test('hand-worked totals agree with the GEMM enumeration', () => {
  // t6, T=100 per layer: q,k,v,out 4·2·100·320·320 = 81,920,000; fc1+fc2 2·2·100·320·1280 =
  // 163,840,000; scores+context 2·2·100·100·320 = 12,800,000 → 258,560,000 × 6 = 1,551,360,000.
  // LM head: 2·100·320·320 = 20,480,000 + 2·100·320·33 = 2,112,000.
  assert.equal(countFlops(T6, 100), 1_573_952_000);
  // tiny, T=30 per layer: 245,760 + 491,520 + 115,200 = 852,480 × 2 = 1,704,960; LM 61,440 + 63,360.
  assert.equal(countFlops(TINY, 30), 1_829_760);
});

test('esm2ForwardFlops matches the independent count for the t6 shape at T=100', () => {
  const config = presetConfig(getPreset('esm2_t6_8M_UR50D'));
  assert.equal(esm2ForwardFlops(config, 100), countFlops(T6, 100));
  assert.equal(esm2ForwardFlops(config, 100), 1_573_952_000);
});

test('esm2ForwardFlops matches the independent count for the tiny checkpoint at every golden length', async () => {
  const golden = await loadCheckpoint(fixtureModelDir);
  try {
    for (const T of [1, 3, 13, 22, 30, 100, 131, 302, 1026]) {
      assert.equal(esm2ForwardFlops(golden.config, T), countFlops(TINY, T), `T=${T}`);
    }
  } finally {
    await golden.close();
  }
});

test('attention makes cost superlinear in length: doubling T more than doubles FLOPs', () => {
  const config = presetConfig(getPreset('esm2_t6_8M_UR50D'));
  const ratio = esm2ForwardFlops(config, 1000) / esm2ForwardFlops(config, 500);
  assert.equal(ratio, countFlops(T6, 1000) / countFlops(T6, 500));
  assert.ok(ratio > 2, `ratio ${ratio}`);
});

test('ESM C counts its SwiGLU as three E × I GEMMs (gate, up, down) where ESM-2 has two', () => {
  const esmc = presetConfig(getPreset('ESMC-300M'));
  const T = 100;
  const asEsm2 = esm2ForwardFlops({ ...esmc, family: 'esm2' }, T);
  assert.equal(esm2ForwardFlops(esmc, T) - asEsm2, esmc.numLayers * 2 * T * esmc.hiddenSize * esmc.intermediateSize);
});
