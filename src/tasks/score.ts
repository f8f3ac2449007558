// Variant scoring with inference: mutations are checked before anything runs (a bad one costs no
// inference), then only the matrix rows the method needs are computed — the masked rows of the
// mutated positions (kept in the cache for the next request about the same protein), or one
// unmasked pass.
import type { Tokenizer } from '../model/tokenizer.js';
import type { Infer } from './inference.js';
import { maskedLogProbs, unmaskedLogProbs, type MaskedLogProbCache } from './masked-marginals.js';
import {
  deepMutationalScan,
  mutatedPositions,
  parseMutations,
  residueLetters,
  scoreVariants,
  type DeepMutationalScan,
  type Mutation,
  type ScoreMethod,
} from './variants.js';

export interface ScoreContext {
  infer: Infer;
  tokenizer: Tokenizer;
  /** Masked matrices kept between calls, with the identity of the model behind `infer`. */
  cache?: { store: MaskedLogProbCache; model: string };
  /** Masked copies of longer sequences are windows of this many residues around the position. */
  windowSize?: number;
}

export interface VariantScore {
  mutation: string;
  score: number;
}

export interface ProgressOptions {
  /** (done, total) as the work goes: masked rows for masked_marginal, the one pass (0/1, 1/1) for wt_marginal. */
  onProgress?: (done: number, total: number) => void;
}

/** The L × V log-probability matrix `method` reads; for masked_marginal only `positions` (1-based) when given. */
export async function logProbMatrix(
  context: ScoreContext,
  tokens: Int32Array,
  method: ScoreMethod,
  positions?: readonly number[],
  { onProgress }: ProgressOptions = {},
): Promise<Float32Array> {
  if (method === 'masked_marginal') {
    return maskedLogProbs(context.infer, context.tokenizer, tokens, { positions, cache: context.cache, windowSize: context.windowSize, onProgress });
  }
  onProgress?.(0, 1);
  const matrix = await unmaskedLogProbs(context.infer, tokens);
  onProgress?.(1, 1);
  return matrix;
}

/** Scores of already parsed mutations of the cls … eos `tokens`. */
export async function scoreParsedMutations(context: ScoreContext, tokens: Int32Array, mutations: readonly Mutation[], method: ScoreMethod): Promise<number[]> {
  const matrix = await logProbMatrix(context, tokens, method, mutatedPositions(mutations));
  return scoreVariants(matrix, context.tokenizer, mutations);
}

/**
 * Scores of mutation strings ("K2A", "K2A:V4G") of the cls … eos `tokens`, in input order.
 * Malformed or mismatching mutations throw InputError on `${field}[i]` before any inference.
 */
export async function scoreMutations(
  context: ScoreContext,
  tokens: Int32Array,
  mutations: readonly string[],
  method: ScoreMethod,
  field = 'mutations',
): Promise<VariantScore[]> {
  const parsed = parseMutations(mutations, residueLetters(context.tokenizer, tokens), field);
  const scores = await scoreParsedMutations(context, tokens, parsed, method);
  return parsed.map((m, i) => ({ mutation: m.text, score: scores[i] }));
}

/** The deep mutational scan (every position × the 20 standard amino acids) of the cls … eos `tokens`. */
export async function scanMutations(context: ScoreContext, tokens: Int32Array, method: ScoreMethod, options: ProgressOptions = {}): Promise<DeepMutationalScan> {
  const matrix = await logProbMatrix(context, tokens, method, undefined, options);
  return deepMutationalScan(matrix, tokens, context.tokenizer);
}
