// Embeds FASTA records into one safetensors file with esm-extract's vocabulary of outputs.
// Records go to the scheduler (the one batcher) a few batches ahead of the writer, which writes
// them in file order as they finish, so memory holds a few batches of results however large the
// input is. Records longer than the window run as windows, as on the server.
import type { FastaRecord } from '../model/fasta.js';
import type { Tokenizer } from '../model/tokenizer.js';
import { writeSafetensorsStreaming, type TensorSpec } from '../model/safetensors.js';
import type { SequenceResult, Want } from '../contract/index.js';
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

/** Runs one sequence (cls … eos, any length) as part of the command's request. */
export type RunSequence = (tokens: Int32Array, want: Want) => Promise<SequenceResult>;

export interface EmbedFileOptions {
  records: FastaRecord[];
  tokenizer: Tokenizer;
  hiddenSize: number;
  vocabSize: number;
  include: IncludeKind[];
  /** Absolute layer numbers 0 … num_layers. */
  reprLayers: number[];
  /** Tokens of records started ahead of the one being written (at least one record). */
  lookaheadTokens: number;
  output: string;
  run: RunSequence;
  metadata?: Record<string, string>;
  onProgress?: (residuesDone: number) => void;
}

interface Slot {
  spec: TensorSpec;
  record: number;
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
  const want: Want = {
    ...(include.includes('mean') ? { mean: reprLayers } : {}),
    ...(include.includes('per_tok') ? { hidden: reprLayers } : {}),
    ...(include.includes('bos') ? { bos: reprLayers } : {}),
    ...(include.includes('logits') ? { logits: true } : {}),
    ...(include.includes('contacts') ? { contacts: true } : {}),
  };

  const slots: Slot[] = [];
  opts.records.forEach((record, index) => {
    const L = tokens[index].length - 2;
    const add = (name: string, shape: number[], take: (r: SequenceResult) => Float32Array) => slots.push({ spec: { name, dtype: 'F32', shape }, record: index, take });
    for (const layer of reprLayers) {
      if (include.includes('mean')) add(`${record.id}/mean/${layer}`, [E], (r) => r.mean![layer]);
      if (include.includes('per_tok')) add(`${record.id}/per_tok/${layer}`, [L, E], (r) => residueRows(r.hidden![layer], E, L));
      if (include.includes('bos')) add(`${record.id}/bos/${layer}`, [E], (r) => r.bos![layer]);
    }
    if (include.includes('logits')) add(`${record.id}/logits`, [L, V], (r) => residueRows(r.logits!, V, L));
    if (include.includes('contacts')) add(`${record.id}/contacts`, [L, L], (r) => r.contacts!);
  });

  const pending = new Map<number, Promise<SequenceResult>>();
  let started = 0;
  let residuesDone = 0;
  /** Starts records after `writing` while their tokens fit the lookahead. */
  const startAhead = (writing: number) => {
    let ahead = 0;
    for (let i = writing; i < started; i++) ahead += tokens[i].length;
    while (started < tokens.length && (started <= writing || ahead + tokens[started].length <= opts.lookaheadTokens)) {
      const index = started++;
      ahead += tokens[index].length;
      const result = opts.run(tokens[index], want).then((out) => {
        residuesDone += tokens[index].length - 2;
        opts.onProgress?.(residuesDone);
        return out;
      });
      result.catch(() => undefined); // a record started ahead fails when the writer awaits it
      pending.set(index, result);
    }
  };
  const result = await writeSafetensorsStreaming(
    opts.output,
    slots.map((s) => s.spec),
    async function* (_spec, index) {
      const slot = slots[index];
      startAhead(slot.record);
      for (const done of pending.keys()) if (done < slot.record) pending.delete(done);
      yield slot.take(await pending.get(slot.record)!);
    },
    { format: 'pt', ...opts.metadata },
  );
  return { tensors: slots.length, bytes: result.bytes };
}
