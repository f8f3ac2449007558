import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CheckpointError } from '../src/model/errors.js';
import { ACCEPTED_RESIDUES, ESM2_VOCAB, MAX_TRACKED_PROBLEMS, SequenceError, STANDARD_AMINO_ACIDS, Tokenizer } from '../src/model/tokenizer.js';
import { fixtureModelDir } from './helpers/paths.js';

const tok = await Tokenizer.fromFile(path.join(fixtureModelDir, 'vocab.txt'));
const ids = (s: string) => Array.from(tok.encode(s));
const letter = (c: string) => tok.vocab.indexOf(c);

/** Asserts that encoding throws a SequenceError for `character` at 1-based `position`. */
function assertRejects(sequence: string, character: string, position: number): void {
  assert.throws(
    () => tok.encode(sequence),
    (err: unknown) => {
      assert.ok(err instanceof SequenceError, `expected SequenceError, got ${String(err)}`);
      assert.equal(err.character, character);
      assert.equal(err.position, position);
      assert.match(err.message, new RegExp(`at position ${position}$`));
      return true;
    },
  );
}

describe('Tokenizer', () => {
  test('reads the fixture vocab with the ESM-2 special ids', () => {
    assert.deepEqual(tok.vocab, ESM2_VOCAB);
    assert.deepEqual([tok.clsId, tok.padId, tok.eosId, tok.unkId, tok.maskId], [0, 1, 2, 3, 32]);
    assert.equal(tok.id('<null_1>'), 31);
    assert.throws(() => tok.id('J'), /not in the vocabulary/);
  });

  test('STANDARD_AMINO_ACIDS are the 20 standard letters in vocab order', () => {
    assert.deepEqual(STANDARD_AMINO_ACIDS, 'LAGVSERTIDPKQNFYMHWC'.split(''));
    assert.deepEqual(STANDARD_AMINO_ACIDS, tok.vocab.slice(4, 24));
  });

  test('every accepted letter, upper or lower case, is one token', () => {
    assert.equal(ACCEPTED_RESIDUES.length, 25);
    for (const c of ACCEPTED_RESIDUES) {
      assert.ok(letter(c) >= 4, c);
      assert.deepEqual(ids(c), [0, letter(c), 2], c);
      assert.deepEqual(ids(c.toLowerCase()), [0, letter(c), 2], c.toLowerCase());
    }
  });

  test('drops all whitespace and upper-cases', () => {
    const expected = [0, ...'MKTAYL'.split('').map(letter), 2];
    assert.deepEqual(ids('MKTAYL'), expected);
    assert.deepEqual(ids(' mk T\tA\r\ny\u00a0L \n'), expected);
    assert.equal(tok.encode('MKTAYL') instanceof Int32Array, true);
  });

  test('special tokens inside a sequence are single tokens, case-insensitively', () => {
    assert.deepEqual(ids('MK<mask>AY'), [0, letter('M'), letter('K'), 32, letter('A'), letter('Y'), 2]);
    assert.deepEqual(ids('M<MASK>'), [0, letter('M'), 32, 2]);
    assert.deepEqual(ids('M<Mask>'), [0, letter('M'), 32, 2]);
    for (const special of ['<unk>', '<pad>', '<cls>', '<eos>', '<null_1>']) {
      assert.deepEqual(ids(`A${special}A`), [0, letter('A'), tok.id(special), letter('A'), 2], special);
    }
  });

  test('invalid characters are reported with their 1-based position in the original input', () => {
    assert.throws(() => tok.encode('MK T1'), { name: 'SequenceError', message: "invalid character '1' at position 5" });
    assertRejects('MK T1', '1', 5);
    assertRejects('*', '*', 1);
    assertRejects('AC-D', '-', 3);
    assertRejects('AC.D', '.', 3);
    assertRejects('ACDJ', 'J', 4);
    assertRejects('ACé', 'é', 3);
    assertRejects('A<foo>C', '<foo>', 2);
    assertRejects('AC<mask', '<', 3);
    assertRejects('A< mask>', '< mask>', 2);
  });

  test('every distinct bad character is named with its first position, ten at most, then how many more', () => {
    // Z is an amino acid code of the vocabulary; '1' and '!' are not.
    assert.throws(() => tok.encode('MKT1VZ!Q'), { name: 'SequenceError', message: "invalid characters '1' at position 4, '!' at position 7", character: '1', position: 4 });
    assert.throws(() => tok.encode('1M1K!1'), { message: "invalid characters '1' at position 1, '!' at position 5" });
    assert.throws(() => tok.encode('A<foo>C1<mas'), { message: "invalid characters '<foo>' (unknown special token) at position 2, '1' at position 8, '<' (no closing '>') at position 9" });
    let err: unknown;
    try {
      tok.encode('0123456789!@#$M');
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof SequenceError);
    assert.equal(err.message, `invalid characters ${[...'0123456789'].map((c, i) => `'${c}' at position ${i + 1}`).join(', ')}, and 4 more`);
    assert.deepEqual(err.problems.slice(10).map((p) => [p.text, p.position]), [['!', 11], ['@', 12], ['#', 13], ['$', 14]]);
    const many = Array.from({ length: MAX_TRACKED_PROBLEMS + 5 }, (_, i) => `<x${i}>`).join('');
    assert.throws(() => tok.encode(many), { message: new RegExp(`, and ${MAX_TRACKED_PROBLEMS - 10}\\+ more$`) });
  });

  test('an empty sequence is an error', () => {
    for (const s of ['', '   ', '\n\t ']) assert.throws(() => tok.encode(s), SequenceError, JSON.stringify(s));
  });

  test('residueCount and decode', () => {
    assert.equal(tok.residueCount('MK <mask> a'), 4);
    assert.equal(tok.decode(tok.encode('mk<MASK>a')), '<cls>MK<mask>A<eos>');
    assert.equal(tok.decode(tok.encode('MKA'), { skipClsEos: true }), 'MKA');
    assert.throws(() => tok.decode([40]), /outside the vocabulary/);
  });

  test('refuses vocabularies without the ESM special tokens or with duplicates', () => {
    const noMask = ESM2_VOCAB.filter((t) => t !== '<mask>');
    assert.throws(() => new Tokenizer(noMask, 'v.txt'), (e: unknown) => e instanceof CheckpointError && e.file === 'v.txt' && /<mask>/.test(e.message));
    assert.throws(() => new Tokenizer([...ESM2_VOCAB, 'A']), /duplicate token "A"/);
    assert.throws(() => new Tokenizer(ESM2_VOCAB.filter((t) => t !== 'O')), /missing residue token O/);
  });

  test('fromFile names a missing file', async () => {
    await assert.rejects(Tokenizer.fromFile('/nonexistent/vocab.txt'), (e: unknown) => {
      assert.ok(e instanceof CheckpointError);
      assert.equal(e.file, '/nonexistent/vocab.txt');
      assert.match(e.message, /not found/);
      return true;
    });
  });
});
