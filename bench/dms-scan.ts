// npm run bench:dms — wall time of a deep mutational scan (masked marginals: L masked copies of an
// L-residue protein, batched through the CLI's scheduler engine) on a random checkpoint of a
// published ESM-2 shape. Reports the machine's load average too: other work on the CPUs shows there.
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { writeRandomCheckpoint } from '../src/model/random-checkpoint.js';
import type { BatchReport } from '../src/scheduler/types.js';
import { startLocalEngine } from '../src/cli/local-engine.js';
import { scanMutations } from '../src/tasks/score.js';
import { randomProteins } from './workload.js';
import { median } from './matmul.js';

const program = new Command('bench:dms')
  .option('--preset <name>', 'random checkpoint shape', 'esm2_t6_8M_UR50D')
  .option('--length <n>', 'residues of the random protein', '300')
  .option('--toks-per-batch <list>', 'padded-token budgets to compare, comma-separated', '4096')
  .option('--repeats <n>', 'timed scans per budget (median reported)', '3')
  .option('--threads <n>', 'ORT intra-op threads', String(availableParallelism()))
  .option('--device <spec>', 'cpu, cuda:N, …', 'cpu')
  .option('--cache <dir>', 'where random checkpoints and compiled graphs go', join(process.cwd(), 'bench', '.cache'))
  .parse();
const opts = program.opts<{ preset: string; length: string; toksPerBatch: string; repeats: string; threads: string; device: string; cache: string }>();

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const length = Number(opts.length);
const modelDir = join(opts.cache, 'checkpoints', opts.preset);
if (!existsSync(join(modelDir, 'config.json'))) await writeRandomCheckpoint({ preset: opts.preset, outDir: modelDir, seed: 1 });
const [protein] = randomProteins([length], 7);
console.log(`DMS scan: ${opts.preset} (random weights), ${length} residues → ${length} masked passes of ${length + 2} tokens, ${opts.threads} threads on ${opts.device}, ${availableParallelism()} CPUs`);
console.log(`load average before: ${load()}`);

for (const budget of opts.toksPerBatch.split(',').map(Number)) {
  const engine = await startLocalEngine({ modelDir, device: opts.device, toksPerBatch: budget, threads: Number(opts.threads), cacheDir: join(opts.cache, 'compiled') });
  try {
    const tokens = engine.checkpoint.tokenizer.encode(protein);
    const context = { infer: engine.infer, tokenizer: engine.checkpoint.tokenizer };
    await engine.infer([tokens], { logits: true }); // warm-up: session and allocator caches
    const times: number[] = [];
    let batches: BatchReport[] = [];
    for (let r = 0; r < Number(opts.repeats); r++) {
      batches = [];
      const onBatch = (report: BatchReport) => batches.push(report);
      engine.scheduler.on('batch', onBatch);
      const started = performance.now();
      const scan = await scanMutations(context, tokens, 'masked_marginal'); // no cache: every scan runs all L passes
      times.push((performance.now() - started) / 1000);
      engine.scheduler.off('batch', onBatch);
      if (scan.matrix.length !== length) throw new Error(`scan has ${scan.matrix.length} rows`);
    }
    const seconds = median(times);
    const tokensRun = batches.reduce((s, b) => s + b.tokens, 0);
    console.log(
      `toks-per-batch ${budget}: ${seconds.toFixed(2)} s median of ${times.map((t) => t.toFixed(2)).join(', ')} | ` +
        `${batches.length} batches of ≤ ${Math.max(...batches.map((b) => b.sequences))} | ${Math.round(tokensRun / seconds)} tokens/s | ` +
        `${(seconds * 1000 / length).toFixed(1)} ms per position`,
    );
  } finally {
    await engine.close();
  }
}
console.log(`load average after: ${load()}`);
