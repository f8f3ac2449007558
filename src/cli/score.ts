// `esm2 score`: variant effect scores of one protein's mutations, given on the command line or as
// a CSV column (fair-esm's variant-prediction script: the table comes back with a score column
// named after the method; an existing column of that name is overwritten).
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { Command, Option } from 'commander';
import { formatCsv, parseCsv, type CsvTable } from '../tasks/csv.js';
import { scoreParsedMutations } from '../tasks/score.js';
import { encodeSequence } from '../tasks/sequences.js';
import { SCORE_METHODS, parseMutation, residueLetters, type ScoreMethod } from '../tasks/variants.js';
import { parsePositiveInt } from './embed.js';
import { DEFAULT_TOKS_PER_BATCH, startLocalEngine } from './local-engine.js';

interface ScoreOptions {
  model: string;
  sequence: string;
  mutations?: string[];
  mutationsCsv?: string;
  column: string;
  output?: string;
  method: ScoreMethod;
  device: string;
  toksPerBatch: number;
  threads: number;
}

const splitList = (value: string): string[] => value.split(',').map((s) => s.trim()).filter(Boolean);

export function registerScore(program: Command): void {
  program
    .command('score')
    .description('score mutations of one protein (masked or wild-type marginals); a CSV comes back with a score column')
    .requiredOption('--model <dir>', 'checkpoint directory (HF layout)')
    .requiredOption('--sequence <seq>', 'wild-type protein sequence')
    .option('--mutations <list>', 'mutations, comma-separated, 1-based: K2A,V4G,K2A:V4G (":" joins a multi-mutant)', splitList)
    .option('--mutations-csv <file>', 'CSV file with a column of mutations')
    .option('--column <name>', 'the CSV column holding the mutations', 'mutant')
    .option('--output <file>', 'write the CSV here instead of to stdout')
    .addOption(new Option('--method <method>', 'scoring method').choices(SCORE_METHODS).default('masked_marginal'))
    .option('--device <spec>', 'cpu, cuda:N, tensorrt:N or webgpu', 'cpu')
    .option('--toks-per-batch <n>', 'padded-token budget of one batch', parsePositiveInt, DEFAULT_TOKS_PER_BATCH)
    .option('--threads <n>', 'CPU threads for inference', parsePositiveInt, availableParallelism())
    .action((opts: ScoreOptions) => score(opts));
}

/** The table to fill in and, per row, the mutation text and what to call it in an error. */
async function readMutationTable(opts: ScoreOptions): Promise<{ table: CsvTable; column: number; where: (row: number) => string }> {
  if ((opts.mutations === undefined) === (opts.mutationsCsv === undefined)) {
    throw new Error('give the mutations with either --mutations or --mutations-csv (exactly one of them)');
  }
  if (opts.mutations) {
    if (opts.mutations.length === 0) throw new Error('--mutations: give at least one mutation, e.g. K2A');
    return { table: { header: [opts.column], rows: opts.mutations.map((m) => [m]) }, column: 0, where: (row) => `mutations[${row}]` };
  }
  const file = opts.mutationsCsv!;
  const table = parseCsv(await readFile(file, 'utf8'), file);
  const column = table.header.indexOf(opts.column);
  if (column < 0) throw new Error(`${file}: no column "${opts.column}" (columns: ${table.header.join(', ')}); choose one with --column`);
  if (table.rows.length === 0) throw new Error(`${file}: no rows below the header`);
  return { table, column, where: (row) => `${basename(file)} row ${row + 1}` };
}

async function score(opts: ScoreOptions): Promise<void> {
  // Everything that can be wrong with the input is found before the model is loaded.
  const { table, column, where } = await readMutationTable(opts);
  const log = (message: string) => console.error(message);
  const engine = await startLocalEngine({ modelDir: opts.model, device: opts.device, toksPerBatch: opts.toksPerBatch, threads: opts.threads, log });
  try {
    const { tokenizer } = engine.checkpoint;
    const { tokens } = encodeSequence(tokenizer, opts.sequence, 'sequence', Infinity);
    const residues = residueLetters(tokenizer, tokens);
    const mutations = table.rows.map((row, r) => parseMutation(row[column], residues, where(r)));
    const { windowSize } = engine.inference;
    const scores = await engine.request().run((request) => scoreParsedMutations({ infer: request.infer, tokenizer, windowSize }, tokens, mutations, opts.method));

    let scoreColumn = table.header.indexOf(opts.method);
    if (scoreColumn < 0) {
      scoreColumn = table.header.length;
      table.header.push(opts.method);
    }
    table.rows.forEach((row, r) => (row[scoreColumn] = String(scores[r])));
    const csv = formatCsv(table);
    if (opts.output) {
      await writeFile(opts.output, csv);
      log(`wrote ${opts.method} scores of ${scores.length} mutations to ${opts.output}`);
    } else {
      process.stdout.write(csv);
    }
  } finally {
    await engine.close();
  }
}
