// Pseudo-log-likelihood (Salazar et al.; fair-esm's masked marginals): the sum over residues of
// the log-probability of the true residue with only that residue masked.
import type { Tokenizer } from '../model/tokenizer.js';
import type { Infer } from './inference.js';
import { maskedLogProbs, type MaskedLogProbCache } from './masked-marginals.js';

export interface PseudoLikelihood {
  /** Residues L. */
  length: number;
  pseudo_log_likelihood: number;
  /** exp(−PLL / L). */
  pseudo_perplexity: number;
}

/** PLL of the cls … eos `tokens` from their L × V masked log-probability matrix, summed in float64. */
export function pseudoLikelihoodFromMatrix(matrix: Float32Array, tokens: Int32Array, vocabSize: number): PseudoLikelihood {
  const length = tokens.length - 2;
  if (matrix.length !== length * vocabSize) throw new RangeError(`matrix has ${matrix.length} entries, not ${length} × ${vocabSize}`);
  let pll = 0;
  for (let i = 0; i < length; i++) pll += matrix[i * vocabSize + tokens[i + 1]];
  return { length, pseudo_log_likelihood: pll, pseudo_perplexity: Math.exp(-pll / length) };
}

/** PLL of the cls … eos `tokens`: L masked passes, batched (and cached when a cache is given). */
export async function pseudoLikelihood(
  infer: Infer,
  tokenizer: Tokenizer,
  tokens: Int32Array,
  cache?: { store: MaskedLogProbCache; model: string },
  windowSize?: number,
): Promise<PseudoLikelihood> {
  const matrix = await maskedLogProbs(infer, tokenizer, tokens, { cache, windowSize });
  return pseudoLikelihoodFromMatrix(matrix, tokens, tokenizer.vocab.length);
}
