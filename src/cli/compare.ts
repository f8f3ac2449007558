// `esm2 compare`: a checkpoint and FASTA file run at fp32 and at another precision (int8 by
// default), and how far the second moves embeddings, logits, PLL and a deep mutational scan — the
// check to run before serving a checkpoint with PRECISION=int8.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { parseFasta } from '../model/fasta.js';
import { compareSequence, comparisonTable, worstOf, type SequenceComparison } from '../tasks/precision-compare.js';
import { parsePositiveInt } from './embed.js';
import { DEFAULT_TOKS_PER_BATCH, startLocalEngine, type LocalEngine } from './local-engine.js';

interface CompareCliOptions {
  model: string;
  input: string;
  precision: 'int8' | 'fp16';
  device: string;
  masked: boolean;
  toksPerBatch: number;
  threads: number;
  json: boolean;
}

export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description('run a checkpoint on a FASTA file at fp32 and at --precision, and print how far the outputs move')
    .requiredOption('--model <dir>', 'checkpoint directory (HF layout)')
    .requiredOption('--input <file>', 'FASTA file')
    .addOption(new Option('--precision <p>', 'precision compared with fp32 (int8: cpu only)').choices(['int8', 'fp16']).default('int8'))
    .option('--device <spec>', 'device of the compared precision (fp32 runs on cpu)', 'cpu')
    .option('--no-masked', 'skip PLL and the deep mutational scan (L masked passes per sequence and precision)')
    .option('--toks-per-batch <n>', 'padded-token budget of one batch', parsePositiveInt, DEFAULT_TOKS_PER_BATCH)
    .option('--threads <n>', 'CPU threads for inference', parsePositiveInt, availableParallelism())
    .option('--json', 'print the figures as JSON rather than a table')
    .action((opts: CompareCliOptions) => compare(opts));
}

async function compare(opts: CompareCliOptions): Promise<void> {
  const records = parseFasta(await readFile(opts.input, 'utf8'));
  if (records.length === 0) throw new Error(`${opts.input}: no FASTA records`);
  const log = (message: string) => console.error(message);
  const common = { modelDir: opts.model, toksPerBatch: opts.toksPerBatch, threads: opts.threads, log };
  const reference = await startLocalEngine({ ...common, device: 'cpu', precision: 'fp32' });
  let test: LocalEngine | undefined;
  try {
    test = await startLocalEngine({ ...common, device: opts.device, precision: opts.precision, allowCpuFallback: false });
    const { tokenizer, config } = reference.checkpoint;
    const results: SequenceComparison[] = [];
    const started = performance.now();
    const refRequest = reference.request();
    const testRequest = test.request();
    try {
      for (const record of records) {
        let tokens: Int32Array;
        try {
          tokens = tokenizer.encode(record.sequence);
        } catch (err) {
          throw new Error(`record "${record.id}": ${err instanceof Error ? err.message : String(err)}`);
        }
        results.push(await compareSequence(refRequest.infer, testRequest.infer, tokenizer, tokens, config.numLayers, { masked: opts.masked, windowSize: reference.inference.windowSize }));
        log(`${record.id}: done (${results.length}/${records.length})`);
      }
    } finally {
      refRequest.end();
      testRequest.end();
    }
    const worst = worstOf(results);
    if (opts.json) {
      console.log(JSON.stringify({ model: opts.model, reference: 'fp32', precision: test.precision, device: test.device, sequences: records.map((r, i) => ({ id: r.id, ...results[i] })), worst }, null, 2));
    } else {
      console.log(`${opts.model}: ${test.precision} on ${test.device} against fp32 on cpu`);
      console.log(comparisonTable([...records.map((r, i) => ({ label: r.id, figures: { ...results[i], residues: results[i].length, sequences: 1 } })), { label: 'worst', figures: worst }]));
      console.log('targets for int8: mean cos ≥ 0.999, DMS Spearman ≥ 0.99 (docs/performance.md)');
    }
    log(`compared ${records.length} sequences in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await test?.close();
    await reference.close();
  }
}
