// `esm2 embed`: FASTA in, safetensors out, in esm-extract's vocabulary.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { parseFasta } from '../model/fasta.js';
import { INCLUDE_KINDS, ShardSpecError, embedFastaToSafetensors, parseShardSpec, selectShard, type IncludeKind, type Shard } from '../tasks/embed-file.js';
import { NO_CONTACT_HEAD, resolveReprLayers } from '../tasks/embed.js';
import { formatBytes } from './init-random.js';
import { startLocalEngine } from './local-engine.js';
import { ReplicaError } from '../engine/errors.js';
import type { Precision } from '../compile/index.js';

/** --precision's choices (int8: cpu only). */
export const PRECISION_CHOICES = ['auto', 'fp32', 'fp16', 'int8'] as const;

interface EmbedOptions {
  model: string;
  input: string;
  output: string;
  include: IncludeKind[];
  reprLayers: number[];
  toksPerBatch: number;
  device: string;
  precision: 'auto' | Precision;
  threads: number;
  progress: boolean;
  cpuFallback: boolean;
  shard?: Shard;
}

function parseInclude(value: string): IncludeKind[] {
  const kinds = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const kind of kinds) {
    if (!(INCLUDE_KINDS as readonly string[]).includes(kind)) throw new InvalidArgumentError(`unknown output "${kind}" (choose from ${INCLUDE_KINDS.join(', ')})`);
  }
  if (kinds.length === 0) throw new InvalidArgumentError('name at least one output');
  return kinds as IncludeKind[];
}

function parseIntList(value: string): number[] {
  return value.split(',').map((s) => {
    if (!/^-?\d+$/.test(s.trim())) throw new InvalidArgumentError(`"${s}" is not an integer`);
    return Number(s);
  });
}

function parseShard(value: string): Shard {
  try {
    return parseShardSpec(value);
  } catch (err) {
    if (err instanceof ShardSpecError) throw new InvalidArgumentError(err.why);
    throw err;
  }
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function registerEmbed(program: Command): void {
  program
    .command('embed')
    .description('embed the sequences of a FASTA file into a safetensors file (esm-extract outputs)')
    .requiredOption('--model <dir>', 'checkpoint directory (HF layout)')
    .requiredOption('--input <file>', 'FASTA file')
    .requiredOption('--output <file>', 'safetensors file to write')
    .option('--include <kinds>', `outputs, comma-separated: ${INCLUDE_KINDS.join(',')}`, parseInclude, ['mean'] as IncludeKind[])
    .option('--repr-layers <layers>', 'layers, comma-separated (0 = embeddings, -1 = last)', parseIntList, [-1])
    .option('--toks-per-batch <n>', 'padded-token budget of one batch', parsePositiveInt, 4096)
    .option('--device <spec>', 'cpu, cuda:N, tensorrt:N or webgpu', 'cpu')
    .addOption(new Option('--precision <p>', 'graph precision (int8: cpu only)').choices(PRECISION_CHOICES).default('auto'))
    .option('--no-cpu-fallback', 'fail when the --device GPU is unusable, rather than run on cpu')
    .option('--threads <n>', 'CPU threads for inference', parsePositiveInt, availableParallelism())
    .option('--no-progress', 'no progress bar')
    .option('--shard <i/n>', 'embed only shard I of N (0 ≤ I < N): the records whose position in the file, counted from 0, is I mod N', parseShard)
    .action((opts: EmbedOptions) => embed(opts));
}

async function embed(opts: EmbedOptions): Promise<void> {
  const allRecords = parseFasta(await readFile(opts.input, 'utf8'));
  const records = opts.shard ? selectShard(allRecords, opts.shard) : allRecords;
  const log = (message: string) => console.error(message);
  const shardNote = opts.shard ? ` (shard ${opts.shard.index}/${opts.shard.count} of ${allRecords.length} records)` : '';
  const engine = await startLocalEngine({
    modelDir: opts.model,
    device: opts.device,
    precision: opts.precision,
    contacts: opts.include.includes('contacts'),
    toksPerBatch: opts.toksPerBatch,
    threads: opts.threads,
    allowCpuFallback: opts.cpuFallback,
    log,
  }).catch((err: unknown) => {
    throw err instanceof ReplicaError && err.reason === 'device-unavailable' ? new Error(`${err.message} (--no-cpu-fallback)`) : err;
  });
  const { checkpoint } = engine;
  if (opts.include.includes('contacts') && !checkpoint.hasContactHead) {
    await engine.close();
    throw new Error(`--include ${NO_CONTACT_HEAD}`);
  }

  const totalResidues = records.reduce((sum, r) => sum + r.sequence.replace(/\s+/g, '').length, 0);
  const bar = opts.progress
    ? new cliProgress.SingleBar({ stream: process.stderr, format: 'embedding [{bar}] {percentage}% | {value}/{total} residues | {rate} res/s | ETA {eta_formatted}' }, cliProgress.Presets.shades_classic)
    : null;
  const started = performance.now();
  bar?.start(totalResidues, 0, { rate: 0 });
  // The whole command is one request: the first failure ends all of its work.
  const request = engine.request();
  try {
    const result = await embedFastaToSafetensors({
      records,
      tokenizer: checkpoint.tokenizer,
      hiddenSize: checkpoint.config.hiddenSize,
      vocabSize: checkpoint.config.vocabSize,
      include: opts.include,
      reprLayers: resolveReprLayers(opts.reprLayers, checkpoint.config.numLayers),
      lookaheadTokens: engine.inference.inFlightBatches * opts.toksPerBatch,
      output: opts.output,
      run: async (tokens, want) => (await request.infer([tokens], want))[0],
      // What made the file: a reader can tell a GPU's fp16 output from a cpu fallback's fp32.
      metadata: {
        model: opts.model,
        device_requested: engine.requestedDevice,
        device: engine.device,
        precision: engine.precision,
        ...(engine.fallbackReason ? { fallback_reason: engine.fallbackReason } : {}),
        include: opts.include.join(','),
        repr_layers: opts.reprLayers.join(','),
        ...(opts.shard ? { shard: `${opts.shard.index}/${opts.shard.count}` } : {}),
      },
      onProgress: (done) => bar?.update(done, { rate: Math.round(done / ((performance.now() - started) / 1000)) }),
    });
    bar?.stop();
    const seconds = (performance.now() - started) / 1000;
    log(`wrote ${result.tensors} tensors (${formatBytes(result.bytes)}) for ${records.length} sequences${shardNote} to ${opts.output} in ${seconds.toFixed(1)} s`);
  } finally {
    request.end();
    bar?.stop();
    await engine.close();
  }
}
