// Log-probability matrices over the vocabulary, one row per residue, from which variant scores,
// deep mutational scans and pseudo-log-likelihoods are read. Masked: row i comes from a copy of
// the sequence with only residue i + 1 replaced by <mask> (fair-esm's masked marginals; L forward
// passes, submitted together so they batch). Unmasked: every row from one pass of the sequence.
import type { Tokenizer } from '../model/tokenizer.js';
import type { Infer } from './inference.js';
import { windowTokens, type Window } from './windows.js';
import { LruCache } from './lru.js';

/** Masked matrices kept by default: ~64 proteins × L × 33 floats, a few MiB at typical lengths. */
export const DEFAULT_CACHED_PROTEINS = 64;

/**
 * Masked copies per infer call. Every copy returns all of its token rows of logits although one
 * row is kept: a call's results are held until the call completes, so calls stay small (32 copies
 * of 1,022 residues hold ~4 MB); the request they belong to paces how many run at once.
 */
const MASKED_COPIES_PER_CALL = 32;
/** Calls outstanding at once per protein: enough to keep every replica busy, few copies built ahead. */
const CALLS_IN_FLIGHT = 8;

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

/** Rows of one protein being computed now, shared by every request for it. */
interface Working {
  rows: MaskedRows;
  /** Positions (1-based) some request is computing now → settles when that row is in (or its request failed). */
  inFlight: Map<number, Promise<void>>;
  users: number;
}

/**
 * Masked matrices by (model, protein): scoring more mutants of a protein reuses the rows already
 * computed, and concurrent requests for the same protein share the masked passes in flight. The
 * model identity belongs in the key because different checkpoints, or the same one at another
 * precision, give different numbers for the same tokens.
 */
export class MaskedLogProbCache {
  private readonly lru: LruCache<string, MaskedRows>;
  private readonly working = new Map<string, Working>();

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

  /** @internal The protein's shared working rows (from the store, or new); give back with `leave`. */
  join(model: string, tokens: Int32Array, fresh: () => MaskedRows): Working {
    const key = cacheKey(model, tokens);
    let entry = this.working.get(key);
    if (!entry) {
      const stored = this.lru.get(key);
      // A copy of stored rows: rows computed now must not show in the store until they are all in.
      entry = { rows: stored ? { data: stored.data.slice(), done: stored.done.slice() } : fresh(), inFlight: new Map(), users: 0 };
      this.working.set(key, entry);
    }
    entry.users += 1;
    return entry;
  }

  /** @internal One user of the working rows is done; `complete`: the rows it asked for are all in, so store them. */
  leave(model: string, tokens: Int32Array, entry: Working, complete: boolean): void {
    const key = cacheKey(model, tokens);
    if (complete) this.lru.set(key, { data: entry.rows.data.slice(), done: entry.rows.done.slice() });
    entry.users -= 1;
    if (entry.users === 0 && this.working.get(key) === entry) this.working.delete(key);
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
  const { cache, onProgress } = options;
  const fresh = (): MaskedRows => ({ data: new Float32Array(residues * vocabSize).fill(Number.NaN), done: new Uint8Array(residues) });
  const entry: Working = cache ? cache.store.join(cache.model, tokens, fresh) : { rows: fresh(), inFlight: new Map(), users: 1 };
  const { rows } = entry;
  const requested = requestedPositions(residues, options.positions);
  let completed = requested.filter((p) => rows.done[p - 1]).length;
  onProgress?.(completed, requested.length);
  let complete = false;
  try {
    // Rows another request is computing now are awaited, not computed again; if that request fails
    // (its client left), the rows still missing are computed here.
    for (let round = 0; ; round++) {
      const missing = requested.filter((p) => !rows.done[p - 1]);
      if (missing.length === 0) break;
      if (round > 2) throw new Error('masked rows could not be computed');
      const shared = missing.filter((p) => entry.inFlight.has(p));
      const mine = missing.filter((p) => !entry.inFlight.has(p));
      const sharedDone = Promise.all(
        shared.map((p) =>
          entry.inFlight.get(p)!.then(() => {
            if (rows.done[p - 1]) onProgress?.(++completed, requested.length);
          }),
        ),
      );
      await Promise.all([computeRows(infer, tokenizer, tokens, mine, entry, options, () => onProgress?.(++completed, requested.length)), sharedDone]);
    }
    complete = true;
  } finally {
    if (cache) cache.store.leave(cache.model, tokens, entry, complete);
  }
  // A copy: callers may keep or change it without touching the cache.
  return rows.data.slice();
}

/** Computes the masked rows of `positions` into the shared entry, announcing each as in flight. */
async function computeRows(infer: Infer, tokenizer: Tokenizer, tokens: Int32Array, positions: number[], entry: Working, options: MaskedLogProbOptions, onRow: () => void): Promise<void> {
  if (positions.length === 0) return;
  const residues = tokens.length - 2;
  const vocabSize = tokenizer.vocab.length;
  // With a progress callback the copies go in smaller calls, so progress moves in ~PROGRESS_STEPS steps.
  const perCall = options.onProgress ? Math.max(1, Math.min(MASKED_COPIES_PER_CALL, Math.ceil(positions.length / PROGRESS_STEPS))) : MASKED_COPIES_PER_CALL;
  const calls: number[][] = [];
  for (let start = 0; start < positions.length; start += perCall) calls.push(positions.slice(start, start + perCall));
  // Every row is announced before any call goes out, so a concurrent request finds it in flight.
  const settle = new Map<number, () => void>();
  for (const p of positions) entry.inFlight.set(p, new Promise<void>((resolve) => settle.set(p, resolve)));
  const finish = (p: number) => {
    settle.get(p)?.();
    settle.delete(p);
    entry.inFlight.delete(p);
  };
  const runCall = async (call: number[]) => {
    const copies = call.map((p) => {
      const window = windowAround(p, residues, options.windowSize ?? residues);
      const copy = window.length === residues ? tokens.slice() : windowTokens(tokens, window);
      const row = p - window.start; // token p is residue p: token 0 is cls
      copy[row] = tokenizer.maskId;
      return { copy, row };
    });
    const results = await infer(copies.map((c) => c.copy), { logits: true });
    results.forEach((result, k) => {
      const p = call[k];
      const { copy, row } = copies[k];
      const logits = logitsOf(result, copy.length, vocabSize);
      entry.rows.data.set(logSoftmax(logits, row * vocabSize, vocabSize), (p - 1) * vocabSize);
      entry.rows.done[p - 1] = 1;
      finish(p);
      onRow();
    });
  };
  let next = 0;
  let failed = false;
  const worker = async () => {
    try {
      while (!failed && next < calls.length) await runCall(calls[next++]);
    } catch (error) {
      failed = true; // the other workers send nothing more
      throw error;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(CALLS_IN_FLIGHT, calls.length) }, worker));
  } finally {
    // Rows this call will not deliver (it failed) are no longer in flight: whoever waits recomputes them.
    for (const p of [...settle.keys()]) finish(p);
  }
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
