// The sequence box: a bare sequence or one FASTA record, checked as the user types with the rules
// of the server's tokenizer (src/model/tokenizer.ts): the 20 standard amino acids and X B U Z O,
// either case; <...> special tokens of the vocabulary (<mask>, …), either case; whitespace ignored;
// positions 1-based, counted in characters (code points) of the sequence sent; every distinct bad
// character named with its first position, in the server's words. The page sends the
// sequence with the FASTA header and all whitespace removed, so a position is also the residue
// number for a plain sequence. This module touches no DOM (the tests run it in Node too).

/** The ESM-2 vocabulary (vocab.txt order); the server's own, from /v1/models, replaces it when known. */
export const ESM2_VOCAB: readonly string[] = [
  '<cls>', '<pad>', '<eos>', '<unk>',
  'L', 'A', 'G', 'V', 'S', 'E', 'R', 'T', 'I', 'D', 'P', 'K', 'Q', 'N', 'F', 'Y', 'M', 'H', 'W', 'C',
  'X', 'B', 'U', 'Z', 'O', '.', '-', '<null_1>', '<mask>',
];

/** The 20 standard amino acids in vocabulary order (the scan's columns). */
export const STANDARD_AMINO_ACIDS: readonly string[] = ['L', 'A', 'G', 'V', 'S', 'E', 'R', 'T', 'I', 'D', 'P', 'K', 'Q', 'N', 'F', 'Y', 'M', 'H', 'W', 'C'];
/** Letters a sequence may contain. */
export const ACCEPTED_RESIDUES: readonly string[] = [...STANDARD_AMINO_ACIDS, 'X', 'B', 'U', 'Z', 'O'];

const WHITESPACE = /\s/u;

export interface ParsedSequence {
  /** The FASTA header without '>', when there was one. */
  name?: string;
  /** What is sent to the server: header and whitespace removed. */
  sequence: string;
  /** One token per residue: upper-case letters, special tokens as the vocabulary spells them. */
  tokens: string[];
}

export interface SequenceProblem {
  /** The server's wording, e.g. "invalid character 'J' at position 4", or every distinct one: "invalid characters '1' at position 4, '!' at position 7". */
  message: string;
  /** The (first) offending text ('' when the problem is not one character). */
  character: string;
  /** 1-based position in the sequence sent (0 when not about one character). */
  position: number;
  /** Where it is in the text box: offset and length in UTF-16 units, for selecting it. */
  start: number;
  end: number;
  /** 1-based line and column in the text box. */
  line: number;
  column: number;
}

export type ParseResult = { ok: true; value: ParsedSequence } | { ok: false; problem: SequenceProblem } | { ok: false; empty: true };

/** Distinct problems named in a message, and kept at most: as the server's tokenizer (src/model/tokenizer.ts). */
const MAX_LISTED_PROBLEMS = 10;
const MAX_TRACKED_PROBLEMS = 1000;

interface Refused {
  kind: 'character' | 'unclosed' | 'special';
  text: string;
  position: number;
  start: number;
  end: number;
}

/** The server's message for these problems (describeSequenceProblems in src/model/tokenizer.ts, word for word). */
function describe(problems: readonly Refused[], beyond: boolean): string {
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

/** The sequence's characters (code points) with their UTF-16 offsets in the raw text. */
interface Located {
  char: string;
  offset: number;
}

function locate(raw: string, offset: number): { line: number; column: number } {
  const before = raw.slice(0, offset).split('\n');
  return { line: before.length, column: Array.from(before[before.length - 1]).length + 1 };
}

/** Checks `raw` (a sequence or one FASTA record) against a vocabulary. */
export function parseSequence(raw: string, vocab: readonly string[] = ESM2_VOCAB): ParseResult {
  const specials = new Map<string, string>();
  for (const token of vocab) if (token.length > 2 && token.startsWith('<') && token.endsWith('>')) specials.set(token.toUpperCase(), token);
  const residues = new Set(ACCEPTED_RESIDUES.filter((r) => vocab.includes(r)));
  const problemAt = (message: string, character: string, position: number, start: number, end: number): ParseResult => ({
    ok: false,
    problem: { message, character, position, start, end, ...locate(raw, start) },
  });

  // FASTA: '>' header lines; everything else is sequence. Only one record.
  let name: string | undefined;
  const body: Located[] = [];
  let offset = 0;
  for (const line of raw.split('\n')) {
    const trimmed = line.trimStart();
    if (trimmed.startsWith('>')) {
      if (name !== undefined || body.some((c) => !WHITESPACE.test(c.char))) {
        return problemAt('one FASTA record at a time: a second header starts here', '>', 0, offset + line.indexOf('>'), offset + line.length);
      }
      name = trimmed.slice(1).trim();
    } else {
      let at = offset;
      for (const char of line) {
        body.push({ char, offset: at });
        at += char.length;
      }
      body.push({ char: '\n', offset: at });
    }
    offset += line.length + 1;
  }

  // The sequence sent: no whitespace. Positions below are in it, as the server counts them.
  const chars = body.filter((c) => !WHITESPACE.test(c.char));
  if (chars.length === 0) return { ok: false, empty: true };
  const tokens: string[] = [];
  const problems = new Map<string, Refused>();
  let beyond = false;
  const refuse = (kind: Refused['kind'], text: string, i: number, end: number) => {
    if (problems.has(text)) return;
    if (problems.size < MAX_TRACKED_PROBLEMS) problems.set(text, { kind, text, position: i + 1, start: chars[i].offset, end });
    else beyond = true;
  };
  let lastClose = -1;
  for (let k = chars.length - 1; k >= 0 && lastClose < 0; k--) if (chars[k].char === '>') lastClose = k;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i].char;
    if (ch === '<') {
      let close = i > lastClose ? -1 : i + 1;
      while (close > 0 && chars[close].char !== '>') close++;
      if (close < 0) {
        refuse('unclosed', '<', i, chars[i].offset + 1);
        continue;
      }
      const text = chars.slice(i, close + 1).map((c) => c.char).join('');
      const token = specials.get(text.toUpperCase());
      if (token === undefined) refuse('special', text, i, chars[close].offset + 1);
      else tokens.push(token);
      i = close;
      continue;
    }
    // Lower case is accepted for ASCII letters only, as the server does ('ı' is not 'I').
    const upper = /^[a-z]$/.test(ch) ? ch.toUpperCase() : ch;
    if (residues.has(upper)) tokens.push(upper);
    else refuse('character', ch, i, chars[i].offset + ch.length);
  }
  if (problems.size > 0) {
    const list = [...problems.values()];
    return problemAt(describe(list, beyond), list[0].text, list[0].position, list[0].start, list[0].end);
  }
  return { ok: true, value: { ...(name === undefined ? {} : { name }), sequence: chars.map((c) => c.char).join(''), tokens } };
}

/** The sequence to send with residue `index` (0-based) replaced by <mask>. */
export function withMask(tokens: readonly string[], index: number): string {
  return tokens.map((t, i) => (i === index ? '<mask>' : t)).join('');
}
