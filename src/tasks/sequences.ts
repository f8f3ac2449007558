// Request sequences → token rows, with every problem named: which field, which characters, where (a
// FASTA record sent as a sequence is said to be one); and what to do with sequences longer than
// ESM-2's trained length (`truncation`).
import { SequenceError, type Tokenizer } from '../model/tokenizer.js';
import { FAMILY_NAMES, familyResidueLimit, type EsmConfig } from '../model/config.js';
import { InputError } from './errors.js';

export const TRUNCATION_MODES = ['error', 'truncate', 'window'] as const;
export type Truncation = (typeof TRUNCATION_MODES)[number];

export interface EncodedSequence {
  /** cls … eos */
  tokens: Int32Array;
  /** Residues given to the model (special tokens such as <mask> count as one). */
  length: number;
  /** Residues in the request, before any truncation. */
  originalLength: number;
  truncated: boolean;
}

/** Header lines are shown up to this many characters in the message. */
const SHOWN_HEADER_CHARS = 40;

/**
 * The header line of a FASTA record sent as a sequence (a line starting with '>', leading blanks
 * aside), else undefined. Residues split over several lines are fine: whitespace is ignored.
 */
export function fastaHeaderIn(sequence: string): string | undefined {
  const header = /(?:^|\n)[^\S\n]*(>[^\n]*)/.exec(sequence)?.[1].trimEnd();
  if (header === undefined) return undefined;
  const chars = Array.from(header);
  return chars.length > SHOWN_HEADER_CHARS ? `${chars.slice(0, SHOWN_HEADER_CHARS).join('').trimEnd()}…` : header;
}

/** The most residues a sequence may have whole, and why, when the model's own limit is the smaller. */
export interface LengthLimit {
  residues: number;
  /** Set when the model family's limit is below MAX_SEQUENCE_LENGTH (ESM-1b/1v's 1022). */
  reason?: string;
}

/**
 * MAX_SEQUENCE_LENGTH, or the model family's hard limit where that is smaller: ESM-1b/1v's learned
 * position table has no row for a 1023rd residue, so no setting may let one run whole; windows
 * (truncation "window") are this many residues too.
 */
export function lengthLimit(config: EsmConfig, maxSequenceLength: number): LengthLimit {
  const family = familyResidueLimit(config);
  if (family >= maxSequenceLength) return { residues: maxSequenceLength };
  return {
    residues: family,
    reason: `${FAMILY_NAMES[config.family]}'s limit: its learned position table (max_position_embeddings ${config.maxPositionEmbeddings}) holds ${family} residues plus cls and eos, whatever MAX_SEQUENCE_LENGTH (${maxSequenceLength}) says`,
  };
}

export function encodeSequence(tokenizer: Tokenizer, sequence: string, field: string, limit: number | LengthLimit, truncation: Truncation = 'error'): EncodedSequence {
  const { residues: maxLength, reason } = typeof limit === 'number' ? { residues: limit, reason: undefined } : limit;
  if (sequence.trim().length === 0) throw new InputError(field, 'must not be empty (no residues given)');
  const header = fastaHeaderIn(sequence);
  if (header !== undefined) {
    throw new InputError(
      field,
      `this looks like a FASTA record (header line '${header}'); send the residues only, without the header line (the command line reads FASTA files: esm2 embed --input records.fasta)`,
    );
  }
  let tokens: Int32Array;
  try {
    tokens = tokenizer.encode(sequence);
  } catch (err) {
    if (err instanceof SequenceError) throw new InputError(field, err.message);
    throw err;
  }
  const length = tokens.length - 2;
  if (length <= maxLength) return { tokens, length, originalLength: length, truncated: false };
  switch (truncation) {
    case 'error':
      throw new InputError(field, `sequence has ${length} residues; the maximum sequence length is ${maxLength}${reason ? ` (${reason})` : ''} (or send truncation "truncate" or "window")`);
    case 'truncate': {
      const cut = new Int32Array(maxLength + 2);
      cut.set(tokens.subarray(0, maxLength + 1));
      cut[maxLength + 1] = tokens[tokens.length - 1];
      return { tokens: cut, length: maxLength, originalLength: length, truncated: true };
    }
    case 'window':
      // No length cap of its own: the request's cost (tasks/cost.ts) bounds what its windows need.
      return { tokens, length, originalLength: length, truncated: false };
  }
}
