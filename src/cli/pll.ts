// `esm2 pll`: pseudo-log-likelihood and pseudo-perplexity of every protein in a FASTA file, as CSV
// (id,length,pseudo_log_likelihood,pseudo_perplexity) in input order.
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Command } from 'commander';
import { parseFasta } from '../model/fasta.js';
import { formatCsv } from '../tasks/csv.js';
import { pseudoLikelihood, type PseudoLikelihood } from '../tasks/pll.js';
import { parsePositiveInt } from './embed.js';
import { DEFAULT_TOKS_PER_BATCH, startLocalEngine } from './local-engine.js';

interface PllOptions {
  model: string;
  input: string;
  output?: string;
  device: string;
  toksPerBatch: number;
  threads: number;
}

/**
 * Proteins in flight at once. A protein is L masked copies of L + 2 tokens, so a few keep every
 * batch full (the scheduler mixes their copies) while the queued copies of a large FASTA file are
 * not all in memory at once.
 */
const PROTEINS_IN_FLIGHT = 8;

export function registerPll(program: Command): void {
  program
    .command('pll')
    .description('pseudo-log-likelihood and pseudo-perplexity of every sequence of a FASTA file (CSV)')
    .requiredOption('--model <dir>', 'checkpoint directory (HF layout)')
    .requiredOption('--input <file>', 'FASTA file')
    .option('--output <file>', 'write the CSV here instead of to stdout')
    .option('--device <spec>', 'cpu, cuda:N, tensorrt:N or webgpu', 'cpu')
    .option('--toks-per-batch <n>', 'padded-token budget of one batch', parsePositiveInt, DEFAULT_TOKS_PER_BATCH)
    .option('--threads <n>', 'CPU threads for inference', parsePositiveInt, availableParallelism())
    .action((opts: PllOptions) => pll(opts));
}

async function pll(opts: PllOptions): Promise<void> {
  const records = parseFasta(await readFile(opts.input, 'utf8'));
  const log = (message: string) => console.error(message);
  const engine = await startLocalEngine({ modelDir: opts.model, device: opts.device, toksPerBatch: opts.toksPerBatch, threads: opts.threads, log });
  try {
    const { tokenizer } = engine.checkpoint;
    const tokens = records.map((record) => {
      try {
        return tokenizer.encode(record.sequence);
      } catch (err) {
        throw new Error(`record "${record.id}": ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    const started = performance.now();
    const results: PseudoLikelihood[] = new Array(records.length);
    let next = 0;
    // The whole command is one request (its first failure ends all of its work); masked copies of
    // proteins longer than the window are windows around their position, as on the server.
    const { windowSize } = engine.inference;
    await engine.request().run(async (request) => {
      const worker = async () => {
        while (next < records.length) {
          const index = next++;
          results[index] = await pseudoLikelihood(request.infer, tokenizer, tokens[index], undefined, windowSize);
        }
      };
      await Promise.all(Array.from({ length: Math.min(PROTEINS_IN_FLIGHT, records.length) }, worker));
    });

    const csv = formatCsv({
      header: ['id', 'length', 'pseudo_log_likelihood', 'pseudo_perplexity'],
      rows: results.map((r, i) => [records[i].id, String(r.length), String(r.pseudo_log_likelihood), String(r.pseudo_perplexity)]),
    });
    if (opts.output) await writeFile(opts.output, csv);
    else process.stdout.write(csv);
    const residues = results.reduce((sum, r) => sum + r.length, 0);
    log(`scored ${records.length} sequences (${residues} residues) in ${((performance.now() - started) / 1000).toFixed(1)} s${opts.output ? ` → ${opts.output}` : ''}`);
  } finally {
    await engine.close();
  }
}
