// Log-probability matrices over the vocabulary, one row per residue, from which variant scores,
// deep mutational scans and pseudo-log-likelihoods are read. Masked: row i comes from a copy of
// the sequence with only residue i + 1 replaced by <mask> (fair-esm's masked marginals; L forward
// passes, submitted together so they batch). Unmasked: every row from one pass of the sequence.
import type { Tokenizer } from '../model/tokenizer.js';
import type { Infer } from './infer.js';
import { windowTokens, type Window } from './windows.js';
import { LruCache } from './lru.js';

/** Masked matrices kept by default: ~64 proteins × L × 33 floats, a few MiB at typical lengths. */
export const DEFAULT_CACHED_PROTEINS = 64;
/** Groups of masked copies submitted at once. */
const GROUPS_IN_FLIGHT = 2;

/**
 * Masked copies per infer call. Every copy returns all of its token rows of logits although one
 * row is kept, so one call for a 1,022-residue protein would hold ~140 MB of logits at once;
 * calls of this many copies, all submitted at once, still batch together and are freed as each
 * one completes.
 */
const MASKED_COPIES_PER_CALL = 128;

/** With a progress callback, progress is reported in about this many steps (not once per group). */
const PROGRESS_STEPS = 50;

/** Natural log-softmax of `width` values at `offset`, in float64 (33 exponentials summed in float32 lose digits). */
export function logSoftmax(values: Float32Array, offset: number, width: number): Float64Array {
  let max = -Infinity;
  for (let v = 0; v < width; v++) max = Math.max(max, values[offset + v]);
  let sum = 0;
  for (let v = 0; v < width; v++) sum += Math.exp(values[offset + v] - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(width);
  for (let v = 0; v < width; v++) out[v] = values[offset + v] - logZ;
  return out;
}

/** The logits of one sequence's result, checked to be all token rows × `vocabSize`. */
function logitsOf(result: { logits?: Float32Array }, tokenCount: number, vocabSize: number): Float32Array {
  const logits = result.logits;
  if (!logits) throw new Error('inference returned no logits');
  if (logits.length !== tokenCount * vocabSize) {
    throw new Error(`inference returned ${logits.length} logits for ${tokenCount} tokens × ${vocabSize} vocabulary entries`);
  }
  return logits;
}

/** A protein's masked matrix, possibly with only some rows computed so far (the others NaN). */
interface MaskedRows {
  /** L × V log-probabilities. */
  data: Float32Array;
  /** 1 where row i has been computed. */
  done: Uint8Array;
}

/**
 * Masked matrices by (model, protein): scoring more mutants of a protein reuses the rows already
 * computed. The model identity belongs in the key because different checkpoints, or the same one
 * at another precision, give different numbers for the same tokens.
 */
export class MaskedLogProbCache {
  private readonly lru: LruCache<string, MaskedRows>;

  constructor(maxProteins = DEFAULT_CACHED_PROTEINS) {
    this.lru = new LruCache(maxProteins);
  }

  get size(): number {
    return this.lru.size;
  }

  clear(): void {
    this.lru.clear();
  }

  /** @internal The stored rows, or undefined. */
  lookup(model: string, tokens: Int32Array): MaskedRows | undefined {
    return this.lru.get(cacheKey(model, tokens));
  }

  /** @internal Stores (or refreshes) a protein's rows. */
  store(model: string, tokens: Int32Array, rows: MaskedRows): void {
    this.lru.set(cacheKey(model, tokens), rows);
  }
}

const cacheKey = (model: string, tokens: Int32Array): string => `${model}\u0000${tokens.join(',')}`;

export interface MaskedLogProbOptions {
  /** 1-based residue positions to compute; all of them when absent. Rows not computed (now or earlier) are NaN. */
  positions?: readonly number[];
  /** Where rows computed earlier are found and new ones kept; `model` identifies the checkpoint and precision. */
  cache?: { store: MaskedLogProbCache; model: string };
  /**
   * Longer sequences are not run whole: each masked copy is the window of this many residues
   * centred on its position (clamped to the sequence), as ESM-2 never saw more than 1022.
   */
  windowSize?: number;
  /**
   * Told (rows done, rows asked for) once the work is known — rows found in the cache count as
   * done — and again as each batch of masked copies completes; the last call has done = total.
   */
  onProgress?: (done: number, total: number) => void;
}

/** The window of `windowSize` residues centred on 1-based `position`, clamped to the sequence. */
export function windowAround(position: number, residues: number, windowSize: number): Window {
  if (residues <= windowSize) return { start: 0, length: residues };
  const start = Math.min(Math.max(position - 1 - Math.floor(windowSize / 2), 0), residues - windowSize);
  return { start, length: windowSize };
}

/** Row positions 1 … L, or the given ones, checked and without repeats. */
function requestedPositions(residues: number, positions: readonly number[] | undefined): number[] {
  if (positions === undefined) return Array.from({ length: residues }, (_, i) => i + 1);
  for (const p of positions) {
    if (!Number.isInteger(p) || p < 1 || p > residues) throw new RangeError(`position ${p} is not one of 1 … ${residues}`);
  }
  return [...new Set(positions)].sort((a, b) => a - b);
}

/**
 * L × V matrix (V = vocabulary size): row i is the log-softmax over the whole vocabulary at residue
 * i + 1 of the sequence with only that residue replaced by <mask>. `tokens` is cls … eos.
 */
export async function maskedLogProbs(
  infer: Infer,
  tokenizer: Tokenizer,
  tokens: Int32Array,
  options: MaskedLogProbOptions = {},
): Promise<Float32Array> {
  const residues = tokens.length - 2;
  if (residues < 1) throw new RangeError('a sequence needs at least one residue between cls and eos');
  const vocabSize = tokenizer.vocab.length;
  const { cache } = options;
  const cached = cache?.store.lookup(cache.model, tokens);
  const rows: MaskedRows = cached ?? {
    data: new Float32Array(residues * vocabSize).fill(Number.NaN),
    done: new Uint8Array(residues),
  };
  const requested = requestedPositions(residues, options.positions);
  const missing = requested.filter((p) => !rows.done[p - 1]);
  const { onProgress } = options;
  let completed = requested.length - missing.length;
  onProgress?.(completed, requested.length);
  // With a progress callback a group's copies go as several calls, submitted together (so they
  // batch as one group would), each reported as it completes.
  const perCall = onProgress ? Math.max(1, Math.ceil(missing.length / PROGRESS_STEPS)) : MASKED_COPIES_PER_CALL;

  // Groups go out GROUPS_IN_FLIGHT at a time: enough to keep every replica busy, and a long
  // protein never floods the queue (all at once, its own groups would trip backpressure).
  const groups: number[][] = [];
  for (let start = 0; start < missing.length; start += MASKED_COPIES_PER_CALL) groups.push(missing.slice(start, start + MASKED_COPIES_PER_CALL));
  const runGroup = (positions: number[]) => {
    const copies = positions.map((p) => {
      const window = windowAround(p, residues, options.windowSize ?? residues);
      const copy = window.length === residues ? tokens.slice() : windowTokens(tokens, window);
      const row = p - window.start; // token p is residue p: token 0 is cls
      copy[row] = tokenizer.maskId;
      return { copy, row };
    });
    const calls: Promise<void>[] = [];
    for (let first = 0; first < copies.length; first += perCall) {
      const part = copies.slice(first, first + perCall);
      calls.push(
        infer(part.map((c) => c.copy), { logits: true }).then((results) => {
          results.forEach((result, k) => {
            const p = positions[first + k];
            const { copy, row } = part[k];
            const logits = logitsOf(result, copy.length, vocabSize);
            rows.data.set(logSoftmax(logits, row * vocabSize, vocabSize), (p - 1) * vocabSize);
            rows.done[p - 1] = 1;
          });
          completed += part.length;
          onProgress?.(completed, requested.length);
        }),
      );
    }
    return Promise.all(calls);
  };
  let next = 0;
  const worker = async () => {
    while (next < groups.length) await runGroup(groups[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(GROUPS_IN_FLIGHT, groups.length) }, worker));
  // A new protein is stored only once every row asked for is in, so a failed call caches nothing.
  if (cache) cache.store.store(cache.model, tokens, rows);
  // A copy: callers may keep or change it without touching the cache.
  return rows.data.slice();
}

/** L × V matrix: row i is the log-softmax over the whole vocabulary at residue i + 1 of one unmasked pass. */
export async function unmaskedLogProbs(infer: Infer, tokens: Int32Array): Promise<Float32Array> {
  const residues = tokens.length - 2;
  if (residues < 1) throw new RangeError('a sequence needs at least one residue between cls and eos');
  const [result] = await infer([tokens], { logits: true });
  const logits = result?.logits;
  if (!logits) throw new Error('inference returned no logits');
  const vocabSize = logits.length / tokens.length;
  if (!Number.isInteger(vocabSize)) throw new Error(`inference returned ${logits.length} logits, not a whole number of rows for ${tokens.length} tokens`);
  const out = new Float32Array(residues * vocabSize);
  for (let i = 0; i < residues; i++) out.set(logSoftmax(logits, (i + 1) * vocabSize, vocabSize), i * vocabSize);
  return out;
}
