// Embeds FASTA records into one safetensors file with esm-extract's vocabulary of outputs.
// Tensors are written in batch order as batches finish (one batch computed ahead), so memory
// holds about two batches of results however large the input is.
import type { FastaRecord } from '../model/fasta.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { writeSafetensorsStreaming, type TensorSpec } from '../model/safetensors.js';
import { tokenBudgetBatches } from '../scheduler/token-budget.js';
import type { SequenceResult, Want } from '../engine/batch.js';
import { residueRows } from './embed.js';

export const INCLUDE_KINDS = ['mean', 'per_tok', 'bos', 'logits', 'contacts'] as const;
export type IncludeKind = (typeof INCLUDE_KINDS)[number];

/** One of `count` disjoint parts of a FASTA file: record i belongs to shard i mod count. */
export interface Shard {
  index: number;
  count: number;
}

export class ShardSpecError extends Error {
  constructor(
    spec: string,
    readonly why: string,
  ) {
    super(`--shard ${JSON.stringify(spec)}: ${why}`);
    this.name = 'ShardSpecError';
  }
}

/** Reads "I/N" (shard I of N, 0 ≤ I < N), as an Indexed Job passes `$JOB_COMPLETION_INDEX/N`. */
export function parseShardSpec(spec: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  if (!match) throw new ShardSpecError(spec, 'expected I/N, shard I of N counted from 0 (e.g. 0/4 … 3/4)');
  const [index, count] = [Number(match[1]), Number(match[2])];
  if (!Number.isSafeInteger(count) || count < 1) throw new ShardSpecError(spec, 'the number of shards N must be at least 1');
  if (!Number.isSafeInteger(index) || index >= count) {
    throw new ShardSpecError(spec, `shard index ${match[1]} is out of range: with ${count} shard${count === 1 ? '' : 's'} it must be from 0 to ${count - 1}`);
  }
  return { index, count };
}

/** The records of one shard, in file order: record i when i mod count = index. */
export function selectShard<T>(records: readonly T[], shard: Shard): T[] {
  return records.filter((_, i) => i % shard.count === shard.index);
}

/** Runs one batch of token rows; the engine (a replica, later the scheduler) behind it. */
export type RunBatch = (tokens: Int32Array[], want: Want) => Promise<SequenceResult[]>;

export interface EmbedFileOptions {
  records: FastaRecord[];
  tokenizer: Tokenizer;
  hiddenSize: number;
  vocabSize: number;
  include: IncludeKind[];
  /** Absolute layer numbers 0 … num_layers. */
  reprLayers: number[];
  toksPerBatch: number;
  output: string;
  run: RunBatch;
  metadata?: Record<string, string>;
  onProgress?: (residuesDone: number) => void;
}

interface Slot {
  spec: TensorSpec;
  batch: number;
  position: number;
  /** Cuts this tensor out of the sequence's result. */
  take(result: SequenceResult): Float32Array;
}

export async function embedFastaToSafetensors(opts: EmbedFileOptions): Promise<{ tensors: number; bytes: number }> {
  const { include, reprLayers, hiddenSize: E, vocabSize: V } = opts;
  const tokens = opts.records.map((record) => {
    try {
      return opts.tokenizer.encode(record.sequence);
    } catch (err) {
      throw new Error(`record "${record.id}": ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  const batches = tokenBudgetBatches(tokens.map((t) => t.length), opts.toksPerBatch);
  const want: Want = {
    ...(include.includes('mean') ? { mean: reprLayers } : {}),
    ...(include.includes('per_tok') ? { hidden: reprLayers } : {}),
    ...(include.includes('bos') ? { bos: reprLayers } : {}),
    ...(include.includes('logits') ? { logits: true } : {}),
    ...(include.includes('contacts') ? { contacts: true } : {}),
  };

  const slots: Slot[] = [];
  batches.forEach((members, batch) =>
    members.forEach((recordIndex, position) => {
      const id = opts.records[recordIndex].id;
      const L = tokens[recordIndex].length - 2;
      const add = (name: string, shape: number[], take: (r: SequenceResult) => Float32Array) =>
        slots.push({ spec: { name, dtype: 'F32', shape }, batch, position, take });
      for (const layer of reprLayers) {
        if (include.includes('mean')) add(`${id}/mean/${layer}`, [E], (r) => r.mean![layer]);
        if (include.includes('per_tok')) add(`${id}/per_tok/${layer}`, [L, E], (r) => residueRows(r.hidden![layer], E, L));
        if (include.includes('bos')) add(`${id}/bos/${layer}`, [E], (r) => r.bos![layer]);
      }
      if (include.includes('logits')) add(`${id}/logits`, [L, V], (r) => residueRows(r.logits!, V, L));
      if (include.includes('contacts')) add(`${id}/contacts`, [L, L], (r) => r.contacts!);
    }),
  );

  const pending = new Map<number, Promise<SequenceResult[]>>();
  let residuesDone = 0;
  const start = (batch: number) => {
    if (batch >= batches.length || pending.has(batch)) return;
    const members = batches[batch];
    const results = opts.run(members.map((i) => tokens[i]), want).then((out) => {
      residuesDone += members.reduce((sum, i) => sum + tokens[i].length - 2, 0);
      opts.onProgress?.(residuesDone);
      return out;
    });
    results.catch(() => undefined); // a prefetched batch's failure surfaces when the writer awaits it
    pending.set(batch, results);
  };
  start(0);
  const result = await writeSafetensorsStreaming(
    opts.output,
    slots.map((s) => s.spec),
    async function* (_spec, index) {
      const slot = slots[index];
      start(slot.batch + 1); // keep the engine busy while this batch is written
      pending.delete(slot.batch - 1);
      const results = await pending.get(slot.batch)!;
      yield slot.take(results[slot.position]);
    },
    { format: 'pt', ...opts.metadata },
  );
  return { tensors: slots.length, bytes: result.bytes };
}
