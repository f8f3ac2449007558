// FASTA parsing: what the CLI and batch endpoints feed the tokenizer, keyed by record id.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FastaError, parseFasta } from '../src/model/fasta.js';

/** Asserts that parsing fails with a FastaError at `line` whose message matches `pattern`. */
function assertFastaError(text: string, line: number, pattern: RegExp): void {
  assert.throws(
    () => parseFasta(text),
    (err: unknown) => {
      assert.ok(err instanceof FastaError, `expected FastaError, got ${String(err)}`);
      assert.equal(err.name, 'FastaError');
      assert.equal(err.line, line);
      assert.match(err.message, new RegExp(`^FASTA line ${line}: `));
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('parseFasta records', () => {
  test('the id is the first word of the header; the description is the whole header', () => {
    const records = parseFasta('>sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens\nMVLSPADKTN\n');
    assert.deepEqual(records, [
      { id: 'sp|P69905|HBA_HUMAN', description: 'sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens', sequence: 'MVLSPADKTN' },
    ]);
  });

  test('tabs separate the id from the description too, and space after ">" is ignored', () => {
    const [a, b] = parseFasta('>first\tsome words\nAC\n> second more\nDE');
    assert.equal(a.id, 'first');
    assert.equal(b.id, 'second');
    assert.equal(b.description, 'second more');
  });

  test('multi-line sequences are joined in order, without whitespace', () => {
    const records = parseFasta('>a\nMKT\nAYIA\n  KQR \nQI SF\n>b\nG\nH\n');
    assert.deepEqual(
      records.map((r) => [r.id, r.sequence]),
      [
        ['a', 'MKTAYIAKQRQISF'],
        ['b', 'GH'],
      ],
    );
  });

  test('records keep file order', () => {
    const ids = parseFasta('>z\nA\n>a\nC\n>m\nD').map((r) => r.id);
    assert.deepEqual(ids, ['z', 'a', 'm']);
  });

  test('blank (or whitespace-only) lines and ";" comment lines are skipped anywhere, even before the first header', () => {
    const text = ';a comment before anything\n\n  \t\n>x desc\n;comment inside a record\nAC\n\n   \nDE\n;trailing\n\n>y\nF\n\n';
    assert.deepEqual(
      parseFasta(text).map((r) => [r.id, r.sequence]),
      [
        ['x', 'ACDE'],
        ['y', 'F'],
      ],
    );
  });

  test('CRLF line endings give the same records as LF, with no stray \\r', () => {
    const lf = '>x one\nMKT\nAY\n\n>y\nGG\n';
    const crlf = lf.replace(/\n/g, '\r\n');
    const records = parseFasta(crlf);
    assert.deepEqual(records, parseFasta(lf));
    for (const r of records) assert.doesNotMatch(r.id + r.description + r.sequence, /\r/);
  });

  test('CRLF does not shift the line numbers of errors', () => {
    assertFastaError('>x\r\nAC\r\n\r\n>x\r\nGG\r\n', 4, /first at line 1/);
  });

  test('residues are not validated or case-folded here (the tokenizer does that)', () => {
    assert.equal(parseFasta('>x\nac<mask>XB*\n')[0].sequence, 'ac<mask>XB*');
  });
});

describe('parseFasta errors carry the offending line number', () => {
  test('sequence data before the first header', () => {
    assertFastaError('\n;comment\nMKT\n>x\nAC\n', 3, /before the first ">" header/);
  });

  test('a record without sequence, in the middle (reported at its header)', () => {
    assertFastaError('>a\nAC\n\n>empty desc\n;only a comment\n\n>b\nGG\n', 4, /record "empty" has no sequence/);
  });

  test('a record without sequence at the end of the file', () => {
    assertFastaError('>a\nAC\n>last\n\n', 3, /record "last" has no sequence/);
  });

  test('a duplicate id names both lines', () => {
    const text = '>p1 first\nAC\n>p2\nDE\n\n>p1 again\nFG\n';
    assertFastaError(text, 6, /duplicate id "p1" \(first at line 1\)/);
  });

  test('ids are compared exactly: the same word with another description is a duplicate, another case is not', () => {
    assertFastaError('>p1 a\nA\n>p1 b\nC', 3, /duplicate id "p1"/);
    assert.deepEqual(
      parseFasta('>p1\nA\n>P1\nC').map((r) => r.id),
      ['p1', 'P1'],
    );
  });

  test('a header without an id', () => {
    assertFastaError('>a\nAC\n>\nGG\n', 3, /header without an id/);
    assertFastaError('>a\nAC\n>   \t \nGG\n', 3, /header without an id/);
  });

  test('no records at all', () => {
    assertFastaError('', 1, /no records/);
    assertFastaError('\n\n;just a comment\n\r\n', 1, /no records/);
  });
});
