// Request sequences → token rows, with every problem named: which field, which character, where.
import { SequenceError, type Tokenizer } from '../model/tokenizer.js';
import { InputError } from './errors.js';

export interface EncodedSequence {
  /** cls … eos */
  tokens: Int32Array;
  /** Residues (special tokens such as <mask> count as one). */
  length: number;
}

export function encodeSequence(tokenizer: Tokenizer, sequence: string, field: string, maxLength: number): EncodedSequence {
  if (sequence.trim().length === 0) throw new InputError(field, 'must not be empty (no residues given)');
  let tokens: Int32Array;
  try {
    tokens = tokenizer.encode(sequence);
  } catch (err) {
    if (err instanceof SequenceError) throw new InputError(field, err.message);
    throw err;
  }
  const length = tokens.length - 2;
  if (length > maxLength) throw new InputError(field, `sequence has ${length} residues; the maximum sequence length is ${maxLength}`);
  return { tokens, length };
}
