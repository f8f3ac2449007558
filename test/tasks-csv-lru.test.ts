// The small helpers under the tasks: the CSV reader/writer for mutation tables and the LRU map.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCsv, parseCsv } from '../src/tasks/csv.js';
import { LruCache } from '../src/tasks/lru.js';

test('CSV: quotes, escaped quotes, separators and line breaks inside quotes, CRLF, BOM, blank lines', () => {
  const text = '\ufeffmutant,note\r\nK2A,"a, b"\r\n\r\nV4G,"say ""hi"""\n"K2A:V4G","two\nlines"';
  const table = parseCsv(text);
  assert.deepEqual(table, {
    header: ['mutant', 'note'],
    rows: [['K2A', 'a, b'], ['V4G', 'say "hi"'], ['K2A:V4G', 'two\nlines']],
  });
  assert.equal(formatCsv(table), 'mutant,note\nK2A,"a, b"\nV4G,"say ""hi"""\nK2A:V4G,"two\nlines"\n');
  assert.deepEqual(parseCsv(formatCsv(table)), table);
  assert.deepEqual(parseCsv('a,b\n1,\n'), { header: ['a', 'b'], rows: [['1', '']] });
});

test('CSV errors name the file and the row', () => {
  assert.throws(() => parseCsv('a,b\n1,2\n3\n', 'dms.csv'), { name: 'InputError', message: 'dms.csv: row 2 has 1 fields, the header has 2' });
  assert.throws(() => parseCsv('a\n"open\n', 'dms.csv'), { message: 'dms.csv: unterminated quoted field (line 3)' });
  assert.throws(() => parseCsv('\n\n', 'dms.csv'), { message: 'dms.csv: is empty (no header row)' });
});

test('LRU: evicts the least recently used; reading refreshes an entry', () => {
  const lru = new LruCache<string, number>(2);
  lru.set('a', 1);
  lru.set('b', 2);
  assert.equal(lru.get('a'), 1); // a is now the most recent
  lru.set('c', 3);
  assert.equal(lru.has('b'), false);
  assert.equal(lru.get('a'), 1);
  assert.equal(lru.get('c'), 3);
  lru.set('a', 10); // replacing keeps the size
  assert.equal(lru.size, 2);
  assert.equal(lru.get('a'), 10);
  const none = new LruCache<string, number>(0);
  none.set('x', 1);
  assert.equal(none.size, 0);
  assert.throws(() => new LruCache(-1), RangeError);
});
