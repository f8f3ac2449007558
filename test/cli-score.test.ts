// `esm2 score` and `esm2 pll` end to end: the real CLI process on the golden checkpoint, its CSV
// output against the fixture's variant scores and pseudo-log-likelihoods.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseCsv } from '../src/tasks/csv.js';
import { goldenCases } from './helpers/golden.js';
import { fixtureModelDir, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

const exec = promisify(execFile);
const cli = join(repoRoot, 'bin', 'esm2.js');

async function esm2(args: string[], cacheDir: string) {
  return exec(process.execPath, [cli, ...args, '--threads', '1'], { env: { ...process.env, ESM2_COMPILE_CACHE: cacheDir } });
}

/** Runs a command expected to fail; returns its one `esm2:` error line. */
async function esm2Error(args: string[], cacheDir: string): Promise<string> {
  const err = await esm2(args, cacheDir).then(
    () => assert.fail('expected the command to fail'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 1);
  const lines = err.stderr.split('\n').filter((line) => line.startsWith('esm2:'));
  assert.equal(lines.length, 1, err.stderr);
  return lines[0];
}

test('esm2 score writes the CSV back with a score column matching the fixture, for both methods', async (t) => {
  const dir = await tempDir(t);
  for (const c of (await goldenCases()).filter((x) => x.variant_scores)) {
    const input = join(dir, `${c.id}.csv`);
    // Extra columns, one needing quotes, must come back unchanged.
    await writeFile(input, `id,mutant,note\n${c.variant_scores!.map((v, i) => `${i},${v.mutation},"from ${c.id}, row ${i}"`).join('\n')}\n`);
    for (const method of ['masked_marginal', 'wt_marginal'] as const) {
      const output = join(dir, `${c.id}-${method}.csv`);
      await esm2(['score', '--model', fixtureModelDir, '--sequence', c.sequence, '--mutations-csv', input, '--method', method, '--output', output], dir);
      const table = parseCsv(await readFile(output, 'utf8'));
      assert.deepEqual(table.header, ['id', 'mutant', 'note', method]);
      table.rows.forEach(([id, mutant, note, score], i) => {
        const expected = c.variant_scores![i];
        assert.deepEqual([id, mutant, note], [String(i), expected.mutation, `from ${c.id}, row ${i}`]);
        assert.ok(Math.abs(Number(score) - expected[method]) <= 1e-3, `${c.id} ${mutant} ${method}: ${score} vs ${expected[method]}`);
      });
    }
  }
});

test('esm2 score --mutations prints CSV to stdout; --column names the mutation column', async (t) => {
  const dir = await tempDir(t);
  const seed = (await goldenCases()).find((c) => c.id === 'seed_example')!;
  const { stdout } = await esm2(['score', '--model', fixtureModelDir, '--sequence', seed.sequence, '--mutations', 'K2A,K2A:V4G', '--column', 'variant'], dir);
  const table = parseCsv(stdout);
  assert.deepEqual(table.header, ['variant', 'masked_marginal']);
  assert.deepEqual(table.rows.map((r) => r[0]), ['K2A', 'K2A:V4G']);
  assert.ok(Math.abs(Number(table.rows[1][1]) - seed.variant_scores![4].masked_marginal) <= 1e-3);
});

test('esm2 score errors are one clear line', async (t) => {
  const dir = await tempDir(t);
  const base = ['score', '--model', fixtureModelDir, '--sequence', 'MKTVRQERLK'];
  assert.equal(await esm2Error([...base, '--mutations', 'K2A,A4G'], dir), 'esm2: mutations[1]: A4G: position 4 is V, not A');
  assert.equal(
    await esm2Error([...base], dir),
    'esm2: give the mutations with either --mutations or --mutations-csv (exactly one of them)',
  );
  const csv = join(dir, 'dms.csv');
  await writeFile(csv, 'mutant\nK2A\nK20A\n');
  assert.equal(
    await esm2Error([...base, '--mutations-csv', csv], dir),
    'esm2: dms.csv row 2: K20A: position 20 is out of range; the sequence has 10 residues (positions 1 … 10)',
  );
  assert.match(await esm2Error([...base, '--mutations-csv', csv, '--column', 'mutation'], dir), /dms\.csv: no column "mutation" \(columns: mutant\); choose one with --column$/);
  // Option syntax is commander's to report, in its own words.
  await assert.rejects(esm2([...base, '--mutations', 'K2A', '--method', 'best'], dir), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /'best' is invalid\. Allowed choices are masked_marginal, wt_marginal/);
    return true;
  });
});

test('esm2 pll prints the fixture pseudo-log-likelihoods as CSV', async (t) => {
  const dir = await tempDir(t);
  const cases = (await goldenCases()).filter((c) => c.pseudo_log_likelihood !== undefined);
  const fasta = join(dir, 'cases.fasta');
  await writeFile(fasta, cases.map((c) => `>${c.id} golden case\n${c.sequence.match(/.{1,60}/g)!.join('\n')}\n`).join(''));
  const { stdout, stderr } = await esm2(['pll', '--model', fixtureModelDir, '--input', fasta, '--toks-per-batch', '1024'], dir);
  assert.match(stderr, /scored 6 sequences \(489 residues\)/);
  const table = parseCsv(stdout);
  assert.deepEqual(table.header, ['id', 'length', 'pseudo_log_likelihood', 'pseudo_perplexity']);
  assert.deepEqual(table.rows.map((r) => r[0]), cases.map((c) => c.id), 'input order');
  table.rows.forEach(([id, length, pll, perplexity], i) => {
    const c = cases[i];
    assert.equal(Number(length), c.num_tokens - 2, id);
    assert.ok(Math.abs(Number(pll) - c.pseudo_log_likelihood!) / Number(length) <= 1e-3, `${id}: ${pll} vs ${c.pseudo_log_likelihood}`);
    assert.ok(Math.abs(Number(perplexity) / c.pseudo_perplexity! - 1) <= 1e-3, `${id}: ${perplexity}`);
  });
});

test('esm2 pll names the record of a bad residue', async (t) => {
  const dir = await tempDir(t);
  const fasta = join(dir, 'bad.fasta');
  await writeFile(fasta, '>ok\nMKT\n>broken\nMKT1V\n');
  assert.equal(await esm2Error(['pll', '--model', fixtureModelDir, '--input', fasta], dir), "esm2: record \"broken\": invalid character '1' at position 4");
});
