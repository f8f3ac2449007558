// int8 against fp32 of the same graph: the golden fixture, random checkpoints of published shapes,
// and the same random checkpoints with a few large-magnitude hidden channels (published transformers
// have such outlier channels; random weights do not, and they are what per-tensor activation
// quantization suffers from). Prints one table: the worst of each figure over the sequences, PLL
// and the Spearman of a deep mutational scan from the scan sequence's L masked passes.
//   npm run bench:int8-accuracy -- [--presets fixture,esm2_t12_35M_UR50D,esm2_t30_150M_UR50D]
//     [--outliers esm2_t12_35M_UR50D] [--sequences 4] [--dms-length 300] [--threads N]
import { mkdtemp, open, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeRandomCheckpoint } from '../src/model/random-checkpoint.js';
import { hfStoredName } from '../src/model/esm2-tensors.js';
import { SINGLE_FILE } from '../src/model/safetensors.js';
import { startLocalEngine } from '../src/cli/local-engine.js';
import { compareSequence, comparisonTable, worstOf, type SequenceComparison } from '../src/tasks/precision-compare.js';
import { fixtureModelDir, goldenCases } from '../test/helpers/golden.js';

const { values } = parseArgs({
  options: {
    presets: { type: 'string', default: 'fixture,esm2_t12_35M_UR50D,esm2_t30_150M_UR50D' },
    outliers: { type: 'string', default: 'esm2_t12_35M_UR50D,esm2_t30_150M_UR50D' },
    sequences: { type: 'string', default: '4' },
    'dms-length': { type: 'string', default: '300' },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});
const threads = Number(values.threads);
const dmsLength = Number(values['dms-length']);
const sequenceCount = Number(values.sequences);

/** Outlier channels and their factor on every block's two LayerNorm weights (as in published checkpoints: a few dims 20–50× the rest). */
const OUTLIER_CHANNELS: [channel: number, factor: number][] = [
  [7, 20],
  [101, 30],
  [222, 40],
  [301, 50],
];
const STANDARD = 'ACDEFGHIKLMNPQRSTVWY';

/** mulberry32: the same sequences every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomProtein(rng: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += STANDARD[Math.floor(rng() * STANDARD.length)];
  return s;
}

/** Multiplies channels of every block's LayerNorm weights in a single-file F32 checkpoint, in place. */
async function addOutlierChannels(dir: string, numLayers: number, hiddenSize: number): Promise<void> {
  const file = await open(join(dir, SINGLE_FILE), 'r+');
  try {
    const head = Buffer.alloc(8);
    await file.read(head, 0, 8, 0);
    const headerLength = Number(head.readBigUInt64LE(0));
    const header = Buffer.alloc(headerLength);
    await file.read(header, 0, headerLength, 8);
    const entries = JSON.parse(header.toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    for (let layer = 0; layer < numLayers; layer++) {
      for (const name of [`encoder.layer.${layer}.attention.LayerNorm.weight`, `encoder.layer.${layer}.LayerNorm.weight`]) {
        const entry = entries[hfStoredName(name)];
        if (!entry || entry.dtype !== 'F32') throw new Error(`${name}: not an F32 tensor of ${dir}`);
        const start = 8 + headerLength + entry.data_offsets[0];
        const data = Buffer.alloc(hiddenSize * 4);
        await file.read(data, 0, data.length, start);
        for (const [channel, factor] of OUTLIER_CHANNELS) data.writeFloatLE(data.readFloatLE(channel * 4) * factor, channel * 4);
        await file.write(data, 0, data.length, start);
      }
    }
  } finally {
    await file.close();
  }
}

interface Row {
  label: string;
  figures: ReturnType<typeof worstOf>;
  dms: SequenceComparison;
}

async function measure(label: string, modelDir: string, sequences: string[], dmsSequence: string, cacheDir: string): Promise<Row> {
  const common = { modelDir, cacheDir, threads, log: (m: string) => console.error(`  ${m}`) };
  const reference = await startLocalEngine({ ...common, precision: 'fp32' });
  const test = await startLocalEngine({ ...common, precision: 'int8' });
  try {
    const { tokenizer, config } = reference.checkpoint;
    const results: SequenceComparison[] = [];
    for (const sequence of sequences) {
      results.push(await compareSequence(reference.infer, test.infer, tokenizer, tokenizer.encode(sequence), config.numLayers, { masked: false }));
    }
    const started = performance.now();
    const dms = await compareSequence(reference.infer, test.infer, tokenizer, tokenizer.encode(dmsSequence), config.numLayers, { masked: true });
    console.error(`  ${label}: ${dmsSequence.length}-residue scan at both precisions in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return { label, figures: worstOf([...results, dms]), dms };
  } finally {
    await test.close();
    await reference.close();
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'esm2-int8-accuracy-'));
  const rng = seeded(14);
  const lengths = [60, 150, 250, 400, 700, 1000].slice(0, sequenceCount);
  const randomSequences = lengths.map((n) => randomProtein(rng, n));
  const dmsSequence = randomProtein(rng, dmsLength);
  const rows: Row[] = [];
  try {
    const cacheDir = join(work, 'compiled');
    const outliers = new Set(values.outliers.split(',').filter(Boolean));
    for (const preset of values.presets.split(',').filter(Boolean)) {
      if (preset === 'fixture') {
        const cases = await goldenCases();
        rows.push(await measure('fixture esm2_tiny (golden cases)', fixtureModelDir, cases.map((c) => c.sequence), dmsSequence, cacheDir));
        continue;
      }
      const dir = join(work, preset);
      const { config } = await writeRandomCheckpoint({ preset, outDir: dir, seed: 1 });
      rows.push(await measure(`${preset} random`, dir, randomSequences, dmsSequence, cacheDir));
      if (outliers.has(preset)) {
        await addOutlierChannels(dir, config.numLayers, config.hiddenSize);
        // A cache of its own: the checkpoint fingerprint samples the file, and may miss this in-place edit.
        rows.push(await measure(`${preset} random + outlier channels`, dir, randomSequences, dmsSequence, join(work, `compiled-${preset}-outliers`)));
      }
      await rm(dir, { recursive: true, force: true });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  console.log(`int8 against fp32 of the same graph, ${threads} threads; worst over ${sequenceCount} random sequences (${lengths.join(', ')} residues; the fixture: its golden cases) and the ${dmsLength}-residue scan sequence; |ΔPLL|/L and DMS Spearman from the scan sequence`);
  console.log(`outlier channels: ${OUTLIER_CHANNELS.map(([c, f]) => `${c}×${f}`).join(', ')} on both LayerNorm weights of every block`);
  console.log(comparisonTable(rows.map((r) => ({ label: r.label, figures: { ...r.figures, pllDiffPerResidue: r.dms.pllDiffPerResidue, dmsSpearman: r.dms.dmsSpearman } }))));
  console.log('targets: mean cos ≥ 0.999, DMS Spearman ≥ 0.99');
}

await main();
