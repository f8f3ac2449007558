import { readFile } from 'node:fs/promises';
import { describeReadError } from './config.js';
import { CheckpointError } from './errors.js';

/** The ESM-2 vocabulary in `vocab.txt` order (identical for every published ESM-2 size). */
export const ESM2_VOCAB: readonly string[] = [
  '<cls>', '<pad>', '<eos>', '<unk>',
  'L', 'A', 'G', 'V', 'S', 'E', 'R', 'T', 'I', 'D', 'P', 'K', 'Q', 'N', 'F', 'Y', 'M', 'H', 'W', 'C',
  'X', 'B', 'U', 'Z', 'O', '.', '-', '<null_1>', '<mask>',
];

/** ESM C's 33 tokens (tokenizer.json order): ESM-2's, with the chain break '|' where ESM-2 has <null_1>. */
export const ESMC_TOKENS: readonly string[] = ESM2_VOCAB.map((t) => (t === '<null_1>' ? '|' : t));

/** The 20 standard amino acids, in the order they appear in the ESM vocabulary. */
export const STANDARD_AMINO_ACIDS: readonly string[] = [
  'L', 'A', 'G', 'V', 'S', 'E', 'R', 'T', 'I', 'D', 'P', 'K', 'Q', 'N', 'F', 'Y', 'M', 'H', 'W', 'C',
];

/** Letters accepted in a sequence: the standard 20 plus the ambiguity/rare codes X B U Z O. */
export const ACCEPTED_RESIDUES: readonly string[] = [...STANDARD_AMINO_ACIDS, 'X', 'B', 'U', 'Z', 'O'];

/** One thing the tokenizer refuses: `text` as shown in messages, at 1-based `position`. */
export interface SequenceProblem {
  /** 'character': not in the vocabulary; 'unclosed': a '<' with no '>' after it; 'special': an unknown <...> token. */
  kind: 'character' | 'unclosed' | 'special';
  text: string;
  position: number;
}

/** How many distinct problems a message names before "and N more". */
export const MAX_LISTED_PROBLEMS = 10;
/** How many distinct problems are kept at most (a body of 10 MiB could hold a million distinct `<...>`). */
export const MAX_TRACKED_PROBLEMS = 1000;

/**
 * The message for a refused sequence: one problem as "invalid character 'J' at position 4"; several
 * as "invalid characters '1' at position 4, '!' at position 7", each distinct one with its first
 * position, MAX_LISTED_PROBLEMS at most, then "and N more" ("N+" when `beyond`: more than
 * MAX_TRACKED_PROBLEMS distinct ones, not all counted). The web page words them the same
 * (src/server/ui/web/sequence.ts; test/ui-sequence.test.ts compares them).
 */
export function describeSequenceProblems(problems: readonly SequenceProblem[], beyond = false): string {
  if (problems.length === 1 && !beyond) {
    const [p] = problems;
    if (p.kind === 'character') return `invalid character '${p.text}' at position ${p.position}`;
    if (p.kind === 'unclosed') return `invalid character '<' (no closing '>') at position ${p.position}`;
    return `unknown special token '${p.text}' at position ${p.position}`;
  }
  const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => {
    const note = p.kind === 'unclosed' ? " (no closing '>')" : p.kind === 'special' ? ' (unknown special token)' : '';
    return `'${p.text}'${note} at position ${p.position}`;
  });
  const more = problems.length - listed.length;
  return `invalid characters ${listed.join(', ')}${more > 0 || beyond ? `, and ${more}${beyond ? '+' : ''} more` : ''}`;
}

/**
 * A sequence the tokenizer refuses: every distinct bad character (or <...> token) with its first
 * position in `problems`; `character` and `position` are the first of them (position 1-based,
 * counted in characters of the original input).
 */
export class SequenceError extends Error {
  readonly character: string;
  readonly position: number;
  readonly problems: readonly SequenceProblem[];

  constructor(message: string, character: string, position: number, problems: readonly SequenceProblem[] = []) {
    super(message);
    this.name = 'SequenceError';
    this.character = character;
    this.position = position;
    this.problems = problems;
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
  /** Every id the model has a logit for: the tokens, then any placeholders (ESM C: 33 tokens of 64). */
  readonly vocab: readonly string[];
  /** Ids below this are tokens; the rest are placeholders (never produced by `encode`). */
  readonly tokenCount: number;
  readonly clsId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly maskId: number;
  readonly unkId: number;
  private readonly ids: Map<string, number>;
  private readonly residueIds: Map<string, number>;
  /** Upper-cased `<...>` tokens → id, for case-insensitive matching inside sequences. */
  private readonly specialIds: Map<string, number>;

  /**
   * `source` names the vocabulary file in errors. `size` above the number of tokens appends
   * placeholders `<unused_N>` up to it: ids the model's head has rows for but no token owns.
   */
  constructor(tokens: readonly string[], source = 'vocab.txt', size = tokens.length) {
    if (size < tokens.length) throw new CheckpointError(source, `has ${tokens.length} tokens but the model's vocabulary has ${size}`);
    this.tokenCount = tokens.length;
    const vocab = [...tokens, ...Array.from({ length: size - tokens.length }, (_, i) => `<unused_${tokens.length + i}>`)];
    this.vocab = Object.freeze(vocab);
    this.ids = new Map();
    this.specialIds = new Map();
    this.residueIds = new Map();
    vocab.forEach((token, i) => {
      if (token.length === 0 || WHITESPACE.test(token)) {
        throw new CheckpointError(source, `line ${i + 1}: empty or whitespace-containing token ${JSON.stringify(token)}`);
      }
      if (this.ids.has(token)) throw new CheckpointError(source, `line ${i + 1}: duplicate token ${JSON.stringify(token)}`);
      this.ids.set(token, i);
      if (i < this.tokenCount && token.length > 2 && token.startsWith('<') && token.endsWith('>')) this.specialIds.set(token.toUpperCase(), i);
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

  /**
   * Reads a HuggingFace `tokenizer.json` (ESM C's: a vocabulary without merges, specials in
   * `added_tokens`); ids must run 0 … n−1. `size`: the model's vocabulary (placeholders after).
   */
  static async fromTokenizerJson(file: string, size?: number): Promise<Tokenizer> {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new CheckpointError(file, err instanceof SyntaxError ? `invalid JSON (${err.message})` : describeReadError(err));
    }
    const byId = new Map<number, string>();
    const add = (token: unknown, id: unknown) => {
      if (typeof token !== 'string' || typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new CheckpointError(file, `bad vocabulary entry ${JSON.stringify(token)}: ${JSON.stringify(id)}`);
      const known = byId.get(id);
      if (known !== undefined && known !== token) throw new CheckpointError(file, `id ${id} is both ${JSON.stringify(known)} and ${JSON.stringify(token)}`);
      byId.set(id, token);
    };
    const model = (raw as { model?: { vocab?: unknown } } | null)?.model;
    if (typeof model?.vocab !== 'object' || model.vocab === null || Array.isArray(model.vocab)) throw new CheckpointError(file, 'no "model.vocab" object');
    for (const [token, id] of Object.entries(model.vocab)) add(token, id);
    for (const t of ((raw as { added_tokens?: { id: unknown; content: unknown }[] }).added_tokens ?? [])) add(t.content, t.id);
    const tokens = Array.from({ length: byId.size }, (_, id) => byId.get(id) ?? '');
    const gap = tokens.indexOf('');
    if (gap >= 0) throw new CheckpointError(file, `token ids are not contiguous: no token has id ${gap}`);
    return new Tokenizer(tokens, file, size ?? tokens.length);
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
    // Every distinct refused text, with its first position: the whole list in one answer.
    const problems = new Map<string, SequenceProblem>();
    let beyond = false;
    const refuse = (kind: SequenceProblem['kind'], text: string, position: number) => {
      if (problems.has(text)) return;
      if (problems.size < MAX_TRACKED_PROBLEMS) problems.set(text, { kind, text, position });
      else beyond = true;
    };
    // No '>' after the last one: a '<' past it is unclosed without a search (linear, however many '<').
    const lastClose = chars.lastIndexOf('>');
    for (let i = 0; i < chars.length; i++) {
      const ch = chars[i];
      if (WHITESPACE.test(ch)) continue;
      if (ch === '<') {
        const close = i > lastClose ? -1 : chars.indexOf('>', i + 1);
        const text = close < 0 ? undefined : chars.slice(i, close + 1).join('');
        const id = text === undefined ? undefined : this.specialIds.get(text.toUpperCase());
        if (text === undefined) {
          refuse('unclosed', '<', i + 1); // and the rest is read as residues
          continue;
        }
        if (id === undefined) refuse('special', text, i + 1);
        else out.push(id);
        i = close;
        continue;
      }
      const id = this.residueIds.get(ch);
      if (id === undefined) refuse('character', ch, i + 1);
      else out.push(id);
    }
    if (problems.size > 0) {
      const list = [...problems.values()];
      throw new SequenceError(describeSequenceProblems(list, beyond), list[0].text, list[0].position, list);
    }
    if (out.length === 0) throw new SequenceError('empty sequence (no residues after removing whitespace)', '', 0);
    return out;
  }
}
