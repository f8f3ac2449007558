// node dist/bench/device/prepare.js --cache DIR --presets a,b [--sequences N --toks-per-batch T]:
// for each preset (checkpoint in DIR/checkpoints/<preset>, written by `esm2 init-random`), compiles
// our fp32 and fp16 graphs (fused attention) into DIR/compiled — the same cache bench:engine uses —
// and writes DIR/workload-<preset>.json: bench:engine's workload as token ids plus the exact
// batches it runs (tokenBudgetBatches), which the Python peers (hf_peer.py, ort_cuda.py) read so
// that every engine times the same work. Prints (and writes with --out) where everything is.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { compileCheckpoint, type Precision } from '../../src/compile/index.js';
import { tokenBudgetBatches } from '../../src/scheduler/token-budget.js';
import { lognormalLengths, randomProteins } from '../workload.js';

const opts = new Command('device-prepare')
  .requiredOption('--cache <dir>', 'bench:engine --cache: checkpoints/<preset> inside, compiled/ written')
  .requiredOption('--presets <names>', 'comma-separated presets')
  .option('--sequences <n>', 'sequences (bench:engine --sequences)', '64')
  .option('--toks-per-batch <n>', 'padded-token budget of a batch', '4096')
  .option('--out <file>', 'also write the summary JSON here')
  .parse()
  .opts<{ cache: string; presets: string; sequences: string; toksPerBatch: string; out?: string }>();

// The same workload as bench:engine (same generator, same seed).
const proteins = randomProteins(lognormalLengths(Number(opts.sequences), 1), 1);
const summary: Record<string, { checkpoint: string; workload: string; residues: number; graphs: Partial<Record<Precision, string>> }> = {};
for (const preset of opts.presets.split(',')) {
  const dir = join(opts.cache, 'checkpoints', preset);
  const checkpoint = await loadCheckpoint(dir);
  try {
    const tokens = proteins.map((p) => checkpoint.tokenizer.encode(p));
    const batches = tokenBudgetBatches(tokens.map((t) => t.length), Number(opts.toksPerBatch));
    const residues = tokens.reduce((n, t) => n + t.length - 2, 0);
    const workload = join(opts.cache, `workload-${preset}.json`);
    writeFileSync(workload, JSON.stringify({ model: preset, residues, pad_token_id: checkpoint.tokenizer.padId, tokens: tokens.map((t) => [...t]), batches }));
    const graphs: Partial<Record<Precision, string>> = {};
    for (const precision of ['fp32', 'fp16'] as Precision[]) {
      graphs[precision] = (await compileCheckpoint(checkpoint, { variant: 'default', precision, fusedAttention: true, cacheDir: join(opts.cache, 'compiled') })).onnxPath;
    }
    summary[preset] = { checkpoint: dir, workload, residues, graphs };
    console.log(`${preset}: ${tokens.length} sequences, ${residues} residues, ${batches.length} batches; graphs ${Object.values(graphs).join(', ')}`);
  } finally {
    await checkpoint.close();
  }
}
if (opts.out) writeFileSync(opts.out, `${JSON.stringify(summary, null, 2)}\n`);
