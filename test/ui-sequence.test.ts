// The page's sequence check (src/server/ui/web/sequence.ts, run in Node here) against the server's
// tokenizer: same accepted inputs, same tokens, same message and position for refused ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ESM2_VOCAB as SERVER_VOCAB, SequenceError, Tokenizer } from '../src/model/tokenizer.js';
import { ESM2_VOCAB, parseSequence, withMask } from '../src/server/ui/web/sequence.js';

const tokenizer = new Tokenizer(SERVER_VOCAB);

/** The server's verdict on the sequence the page would send. */
function server(sequence: string): { tokens: string[] } | { message: string; character: string; position: number } {
  try {
    return { tokens: Array.from(tokenizer.encode(sequence).slice(1, -1), (id) => tokenizer.vocab[id]) };
  } catch (err) {
    if (!(err instanceof SequenceError)) throw err;
    return { message: err.message, character: err.character, position: err.position };
  }
}

test('the page carries the server’s vocabulary', () => {
  assert.deepEqual([...ESM2_VOCAB], [...SERVER_VOCAB]);
});

test('accepted and refused sequences, tokens, messages and positions match the server’s tokenizer', () => {
  const inputs = [
    'MKTVRQERLK', 'mktvrqerlk', 'MkTv', 'MKXBLUZAOGK', 'MKTVRQ<mask>RLKSIVRI<mask>ERS', 'mk<MASK>v<Mask>', '<cls>MK<eos>', 'MK<unk>',
    'MKTJVR', 'MK1', 'MK*', 'MK.', 'MK-', 'MKıV', 'MK😀V', '😀MK', 'MK<mas', 'MK<foo>V', 'MK<>V', 'MK>V', 'MK<<mask>', 'ÄMK', 'M',
    // Several problems: every distinct one with its first position, ten at most, then how many more.
    'MKT1VZ!Q', '1M1K!1', 'A<foo>C1<mas', 'j<x>J<y>j', '0123456789!@#$M', 'MK😀V😀*', '<a<b',
    Array.from({ length: 1005 }, (_, i) => `<x${i}>`).join(''),
  ];
  for (const input of inputs) {
    const page = parseSequence(input);
    const expected = server(input);
    if ('tokens' in expected) {
      assert.ok(page.ok, `${input}: the page refused what the server accepts`);
      assert.equal(page.value.sequence, input);
      assert.deepEqual(page.value.tokens, expected.tokens, input);
    } else {
      assert.ok(!page.ok && 'problem' in page, `${input}: the page accepted what the server refuses (${expected.message})`);
      assert.equal(page.problem.message, expected.message, input);
      assert.equal(page.problem.character, expected.character, input);
      assert.equal(page.problem.position, expected.position, input);
    }
  }
});

test('whitespace and a FASTA header are removed from what is sent; positions count in what is sent', () => {
  const fasta = parseSequence('>sp|P1|TEST some protein\nMKT VRQ\r\n  ERLK\n');
  assert.ok(fasta.ok);
  assert.equal(fasta.value.name, 'sp|P1|TEST some protein');
  assert.equal(fasta.value.sequence, 'MKTVRQERLK');
  assert.equal(fasta.value.tokens.length, 10);

  const raw = '>x\nMKT\nVRJ';
  const bad = parseSequence(raw);
  assert.ok(!bad.ok && 'problem' in bad);
  assert.equal(bad.problem.message, "invalid character 'J' at position 6");
  assert.deepEqual(server('MKTVRJ'), { message: bad.problem.message, character: 'J', position: 6 });
  assert.deepEqual([bad.problem.line, bad.problem.column], [3, 3]);
  assert.equal(raw.slice(bad.problem.start, bad.problem.end), 'J');
});

test('empty input, a header alone and a second record', () => {
  for (const input of ['', '  \n ', '>only a header\n']) {
    const result = parseSequence(input);
    assert.ok(!result.ok && 'empty' in result, JSON.stringify(input));
  }
  const two = parseSequence('>a\nMK\n>b\nTV');
  assert.ok(!two.ok && 'problem' in two);
  assert.match(two.problem.message, /one FASTA record/);
});

test('withMask replaces one residue by <mask>', () => {
  assert.equal(withMask(['M', 'K', 'T'], 1), 'M<mask>T');
  assert.equal(withMask(['M', '<mask>', 'T'], 2), 'M<mask><mask>');
});
