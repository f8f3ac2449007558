import { readFile } from 'node:fs/promises';
import { describeReadError } from './config.js';
import { CheckpointError } from './errors.js';

/** The ESM-2 vocabulary in `vocab.txt` order (identical for every published ESM-2 size). */
export const ESM2_VOCAB: readonly string[] = [
  '<cls>', '<pad>', '<eos>', '<unk>',
  'L', 'A', 'G', 'V', 'S', 'E', 'R', 'T', 'I', 'D', 'P', 'K', 'Q', 'N', 'F', 'Y', 'M', 'H', 'W', 'C',
  'X', 'B', 'U', 'Z', 'O', '.', '-', '<null_1>', '<mask>',
];

/** The 20 standard amino acids, in the order they appear in the ESM vocabulary. */
export const STANDARD_AMINO_ACIDS: readonly string[] = [
  'L', 'A', 'G', 'V', 'S', 'E', 'R', 'T', 'I', 'D', 'P', 'K', 'Q', 'N', 'F', 'Y', 'M', 'H', 'W', 'C',
];

/** Letters accepted in a sequence: the standard 20 plus the ambiguity/rare codes X B U Z O. */
export const ACCEPTED_RESIDUES: readonly string[] = [...STANDARD_AMINO_ACIDS, 'X', 'B', 'U', 'Z', 'O'];

/** A sequence the tokenizer refuses; `position` is 1-based, counted in characters of the original input. */
export class SequenceError extends Error {
  readonly character: string;
  readonly position: number;

  constructor(message: string, character: string, position: number) {
    super(message);
    this.name = 'SequenceError';
    this.character = character;
    this.position = position;
  }
}

const WHITESPACE = /\s/u;
const REQUIRED_SPECIALS = ['<cls>', '<pad>', '<eos>', '<unk>', '<mask>'] as const;

/**
 * ESM tokenizer: one token per residue letter, plus `<...>` special tokens written inline.
 * Deliberately strict — digits, gaps and stop codons are refused instead of mapped to `<unk>`,
 * so a malformed FASTA paste fails loudly rather than producing plausible-looking scores.
 */
export class Tokenizer {
  readonly vocab: readonly string[];
  readonly clsId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly maskId: number;
  readonly unkId: number;
  private readonly ids: Map<string, number>;
  private readonly residueIds: Map<string, number>;
  /** Upper-cased `<...>` tokens → id, for case-insensitive matching inside sequences. */
  private readonly specialIds: Map<string, number>;

  /** `source` names the vocabulary file in errors. */
  constructor(vocab: readonly string[], source = 'vocab.txt') {
    this.vocab = Object.freeze([...vocab]);
    this.ids = new Map();
    this.specialIds = new Map();
    this.residueIds = new Map();
    vocab.forEach((token, i) => {
      if (token.length === 0 || WHITESPACE.test(token)) {
        throw new CheckpointError(source, `line ${i + 1}: empty or whitespace-containing token ${JSON.stringify(token)}`);
      }
      if (this.ids.has(token)) throw new CheckpointError(source, `line ${i + 1}: duplicate token ${JSON.stringify(token)}`);
      this.ids.set(token, i);
      if (token.length > 2 && token.startsWith('<') && token.endsWith('>')) this.specialIds.set(token.toUpperCase(), i);
    });
    for (const token of REQUIRED_SPECIALS) {
      if (!this.ids.has(token)) throw new CheckpointError(source, `missing special token ${token}`);
    }
    for (const letter of ACCEPTED_RESIDUES) {
      const id = this.ids.get(letter);
      if (id === undefined) throw new CheckpointError(source, `missing residue token ${letter}`);
      // Lower case is accepted; mapping only ASCII letters avoids toUpperCase() surprises ('ı' → 'I').
      this.residueIds.set(letter, id);
      this.residueIds.set(letter.toLowerCase(), id);
    }
    this.clsId = this.ids.get('<cls>')!;
    this.padId = this.ids.get('<pad>')!;
    this.eosId = this.ids.get('<eos>')!;
    this.unkId = this.ids.get('<unk>')!;
    this.maskId = this.ids.get('<mask>')!;
  }

  /** Reads `vocab.txt` (one token per line; a trailing newline is allowed). */
  static async fromFile(file: string): Promise<Tokenizer> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new CheckpointError(file, describeReadError(err));
    }
    const lines = text.split(/\r?\n/);
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return new Tokenizer(lines, file);
  }

  /** The id of an exact vocabulary token; throws for unknown tokens. */
  id(token: string): number {
    const id = this.ids.get(token);
    if (id === undefined) throw new Error(`token ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }

  /** `<cls>` + one token per residue (or inline special token) + `<eos>`. */
  encode(sequence: string): Int32Array {
    const body = this.tokenizeBody(sequence);
    const out = new Int32Array(body.length + 2);
    out[0] = this.clsId;
    out.set(body, 1);
    out[out.length - 1] = this.eosId;
    return out;
  }

  /** Number of tokens between `<cls>` and `<eos>` (validates the sequence like `encode`). */
  residueCount(sequence: string): number {
    return this.tokenizeBody(sequence).length;
  }

  /** Token ids back to text; special tokens are written in angle brackets, as `encode` accepts them. */
  decode(ids: ArrayLike<number>, options: { skipClsEos?: boolean } = {}): string {
    let out = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (options.skipClsEos && (id === this.clsId || id === this.eosId)) continue;
      const token = this.vocab[id];
      if (token === undefined) throw new Error(`token id ${id} is outside the vocabulary (size ${this.vocab.length})`);
      out += token;
    }
    return out;
  }

  private tokenizeBody(sequence: string): number[] {
    // Iterate by code point so positions match what a user counts (an emoji is one character).
    const chars = Array.from(sequence);
    const out: number[] = [];
    for (let i = 0; i < chars.length; i++) {
      const ch = chars[i];
      if (WHITESPACE.test(ch)) continue;
      if (ch === '<') {
        const close = chars.indexOf('>', i + 1);
        const text = close < 0 ? undefined : chars.slice(i, close + 1).join('');
        const id = text === undefined ? undefined : this.specialIds.get(text.toUpperCase());
        if (id === undefined) {
          const shown = text ?? '<';
          const why = text === undefined ? "invalid character '<' (no closing '>')" : `unknown special token '${shown}'`;
          throw new SequenceError(`${why} at position ${i + 1}`, shown, i + 1);
        }
        out.push(id);
        i = close;
        continue;
      }
      const id = this.residueIds.get(ch);
      if (id === undefined) throw new SequenceError(`invalid character '${ch}' at position ${i + 1}`, ch, i + 1);
      out.push(id);
    }
    if (out.length === 0) throw new SequenceError('empty sequence (no residues after removing whitespace)', '', 0);
    return out;
  }
}
