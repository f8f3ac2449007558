// Fill-mask: what the model predicts at each <mask> of a sequence, from one unmasked pass (the
// masks are in the input). Probabilities are the softmax over the whole vocabulary, as fair-esm
// and HF give them; only amino-acid letters are listed, so they need not sum to 1.
import { ACCEPTED_RESIDUES, type Tokenizer } from '../model/tokenizer.js';
import { InputError } from './errors.js';
import type { Infer } from './inference.js';
import { logSoftmax } from './masked-marginals.js';

export const DEFAULT_TOP_K = 5;
/** The amino-acid letters: the 20 standard ones and X B U Z O. */
export const MAX_TOP_K = ACCEPTED_RESIDUES.length;

export interface TokenProbability {
  token: string;
  probability: number;
}

export interface MaskPrediction {
  /** 1-based residue position of the <mask>. */
  position: number;
  /** Most probable amino acids first. */
  tokens: TokenProbability[];
}

export function checkTopK(topK: number, field = 'top_k'): void {
  if (!Number.isInteger(topK) || topK < 1 || topK > MAX_TOP_K) {
    throw new InputError(field, `must be a whole number from 1 to ${MAX_TOP_K} (the amino-acid tokens), got ${topK}`);
  }
}

/** 1-based residue positions of the <mask> tokens of a cls … eos row. */
export function maskPositions(tokenizer: Tokenizer, tokens: Int32Array): number[] {
  const positions: number[] = [];
  for (let t = 1; t < tokens.length - 1; t++) if (tokens[t] === tokenizer.maskId) positions.push(t);
  return positions;
}

/** Predictions at the masks of `tokens` from that row's logits (all token rows × V). */
export function predictionsFromLogits(logits: Float32Array, tokens: Int32Array, tokenizer: Tokenizer, topK: number): MaskPrediction[] {
  const vocabSize = tokenizer.vocab.length;
  if (logits.length !== tokens.length * vocabSize) throw new RangeError(`logits have ${logits.length} entries, not ${tokens.length} × ${vocabSize}`);
  const aminoAcids = ACCEPTED_RESIDUES.map((token) => ({ token, id: tokenizer.id(token) }));
  return maskPositions(tokenizer, tokens).map((position) => {
    const logProbs = logSoftmax(logits, position * vocabSize, vocabSize);
    const ranked = aminoAcids
      .map(({ token, id }) => ({ token, probability: Math.exp(logProbs[id]) }))
      // Stable sort: equal probabilities keep vocabulary order, so the answer is deterministic.
      .sort((a, b) => b.probability - a.probability);
    return { position, tokens: ranked.slice(0, topK) };
  });
}

/** The top-k amino acids at every <mask> of the cls … eos `tokens`; InputError on `field` when there is none. */
export async function fillMask(infer: Infer, tokenizer: Tokenizer, tokens: Int32Array, topK = DEFAULT_TOP_K, field = 'sequence'): Promise<MaskPrediction[]> {
  checkTopK(topK);
  if (maskPositions(tokenizer, tokens).length === 0) {
    throw new InputError(field, 'has no <mask> token; write <mask> where a residue should be predicted');
  }
  const [result] = await infer([tokens], { logits: true });
  if (!result?.logits) throw new Error('inference returned no logits');
  return predictionsFromLogits(result.logits, tokens, tokenizer, topK);
}
