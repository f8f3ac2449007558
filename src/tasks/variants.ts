// Variant effects read from a log-probability matrix (masked-marginals.ts): ProteinGym mutation
// strings (K2A, and K2A:V4G for a multi-mutant whose score is the sum of its parts), their scores,
// and the deep mutational scan. Pure functions; inference lives in score.ts.
import { ACCEPTED_RESIDUES, STANDARD_AMINO_ACIDS, type Tokenizer } from '../model/tokenizer.js';
import { InputError } from './errors.js';

export const SCORE_METHODS = ['masked_marginal', 'wt_marginal'] as const;
/** masked_marginal reads the masked matrix, wt_marginal the unmasked one. */
export type ScoreMethod = (typeof SCORE_METHODS)[number];

export interface MutationPart {
  /** 1-based residue position. */
  position: number;
  wildType: string;
  mutant: string;
}

export interface Mutation {
  /** As written by the caller. */
  text: string;
  parts: MutationPart[];
}

const PART = /^([A-Za-z])(\d+)([A-Za-z])$/;
const STANDARD = STANDARD_AMINO_ACIDS.join('');
const FORMAT_HINT = 'write wild type, 1-based position and mutant, e.g. K2A; join the parts of a multi-mutant with ":", e.g. K2A:V4G';

/** The residue letters of a cls … eos token row (special tokens such as <mask> as written). */
export function residueLetters(tokenizer: Tokenizer, tokens: Int32Array): string[] {
  return Array.from(tokens.subarray(1, tokens.length - 1), (id) => tokenizer.vocab[id]);
}

/**
 * One mutation string checked against the wild-type residues (letters of positions 1 … L).
 * Every problem is an InputError on `field`, naming the mutation and what is wrong with it.
 */
export function parseMutation(text: string, residues: readonly string[], field: string): Mutation {
  const fail = (problem: string): never => {
    throw new InputError(field, problem);
  };
  if (typeof text !== 'string' || text.trim() === '') fail(`empty mutation; ${FORMAT_HINT}`);
  const trimmed = text.trim();
  const seen = new Set<number>();
  const parts = trimmed.split(':').map((raw): MutationPart => {
    const match = PART.exec(raw.trim());
    if (!match) return fail(`"${trimmed}" is not a mutation${raw.trim() && raw.trim() !== trimmed ? ` (part "${raw.trim()}")` : ''}; ${FORMAT_HINT}`);
    const [, wt, digits, mt] = match;
    const wildType = wt.toUpperCase();
    const mutant = mt.toUpperCase();
    const position = Number(digits);
    if (position < 1 || position > residues.length) {
      fail(`${trimmed}: position ${position} is out of range; the sequence has ${residues.length} residues (positions 1 … ${residues.length})`);
    }
    if (!ACCEPTED_RESIDUES.includes(wildType)) fail(`${trimmed}: unknown amino acid '${wildType}' as wild type`);
    if (residues[position - 1] !== wildType) fail(`${trimmed}: position ${position} is ${residues[position - 1]}, not ${wildType}`);
    if (!STANDARD_AMINO_ACIDS.includes(mutant)) {
      fail(`${trimmed}: unknown amino acid '${mutant}' as mutant; use one of the 20 standard amino acids ${STANDARD}`);
    }
    if (seen.has(position)) fail(`${trimmed}: position ${position} is mutated more than once`);
    seen.add(position);
    return { position, wildType, mutant };
  });
  return { text: trimmed, parts };
}

/** A list of mutation strings; a problem names its index, e.g. "mutations[3]". */
export function parseMutations(texts: readonly string[], residues: readonly string[], field = 'mutations'): Mutation[] {
  if (!Array.isArray(texts) || texts.length === 0) throw new InputError(field, 'give at least one mutation');
  return texts.map((text, i) => parseMutation(text, residues, `${field}[${i}]`));
}

/** Every position some mutation changes, ascending: the only masked rows scoring needs. */
export function mutatedPositions(mutations: readonly Mutation[]): number[] {
  return [...new Set(mutations.flatMap((m) => m.parts.map((part) => part.position)))].sort((a, b) => a - b);
}

/**
 * Score of each mutation: the sum over its parts of lp[i, mutant] − lp[i, wild type], where lp is
 * the L × V log-probability matrix (masked for masked_marginal, unmasked for wt_marginal).
 */
export function scoreVariants(matrix: Float32Array, tokenizer: Tokenizer, mutations: readonly Mutation[]): number[] {
  const vocabSize = tokenizer.vocab.length;
  return mutations.map((mutation) =>
    mutation.parts.reduce((sum, { position, wildType, mutant }) => {
      const row = (position - 1) * vocabSize;
      const score = matrix[row + tokenizer.id(mutant)] - matrix[row + tokenizer.id(wildType)];
      if (Number.isNaN(score)) throw new Error(`row ${position} of the log-probability matrix was not computed`);
      return sum + score;
    }, 0),
  );
}

export interface DeepMutationalScan {
  /** The column order of `matrix`: the 20 standard amino acids in vocabulary order. */
  amino_acids: string[];
  /** L × 20: row i is residue position i + 1; entry = lp[i, mutant] − lp[i, wild type] (wild-type column 0). */
  matrix: number[][];
}

/** Every single substitution at every position, from an L × V log-probability matrix of the cls … eos `tokens`. */
export function deepMutationalScan(matrix: Float32Array, tokens: Int32Array, tokenizer: Tokenizer): DeepMutationalScan {
  const vocabSize = tokenizer.vocab.length;
  const residues = tokens.length - 2;
  if (matrix.length !== residues * vocabSize) throw new RangeError(`matrix has ${matrix.length} entries, not ${residues} × ${vocabSize}`);
  const columns = STANDARD_AMINO_ACIDS.map((letter) => tokenizer.id(letter));
  const rows = Array.from({ length: residues }, (_, i) => {
    const row = i * vocabSize;
    const wildType = tokens[i + 1];
    const reference = matrix[row + wildType];
    // The wild-type column is set, not computed, so it is exactly 0 even in a NaN row.
    return columns.map((id) => (id === wildType ? 0 : matrix[row + id] - reference));
  });
  return { amino_acids: [...STANDARD_AMINO_ACIDS], matrix: rows };
}
