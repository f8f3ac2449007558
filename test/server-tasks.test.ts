// /v1/score, /v1/pll and /v1/fill-mask on a real server against fair-esm's numbers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { STANDARD_AMINO_ACIDS, ESM2_VOCAB } from '../src/model/tokenizer.js';
import { assertFillMaskSoftmax, goldenCases, goldenTensor, type GoldenCase } from './helpers/golden.js';
import { assertGoldenScores, startTestServer, postJson, type TestServer } from './helpers/server.js';

let server: TestServer;
let cases: GoldenCase[];
before(async () => {
  server = await startTestServer({ BATCH_QUEUE_MAX_WAIT_MS: '2' });
  cases = await goldenCases();
});
after(() => server.close());

const byId = (id: string) => cases.find((c) => c.id === id)!;
const residuesProcessed = async () => Number(/^esm2_residues_total (\S+)/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1] ?? NaN);

test('variant scores match fair-esm for both methods (≤ 1e-3)', () => assertGoldenScores(server.url, cases));

test('scoring more mutants of a cached protein runs no inference', async () => {
  const c = byId('seed_example');
  await postJson(`${server.url}/v1/score`, { sequence: c.sequence, mutations: ['K2A', 'V4G'] });
  const before = await residuesProcessed();
  const again = await postJson(`${server.url}/v1/score`, { sequence: c.sequence, mutations: ['K2A:V4G', 'V4G'] });
  assert.equal(again.status, 200);
  assert.equal(await residuesProcessed(), before);
});

test('the deep mutational scan of the 300-residue case equals the per-position masked marginals', async () => {
  const c = byId('long_random');
  const { status, json } = await postJson(`${server.url}/v1/score`, { sequence: c.sequence, scan: true });
  assert.equal(status, 200);
  assert.deepEqual(json.amino_acids, [...STANDARD_AMINO_ACIDS]);
  const matrix = json.matrix as number[][];
  assert.equal(matrix.length, 300);
  const lp = await goldenTensor(c.id, 'masked_log_probs');
  const V = ESM2_VOCAB.length;
  for (let i = 0; i < 300; i++) {
    const wt = ESM2_VOCAB.indexOf(c.sequence[i]);
    STANDARD_AMINO_ACIDS.forEach((aa, j) => {
      const expected = aa === c.sequence[i] ? 0 : lp[i * V + ESM2_VOCAB.indexOf(aa)] - lp[i * V + wt];
      assert.ok(Math.abs(matrix[i][j] - expected) <= 1e-3, `position ${i + 1} ${aa}`);
    });
  }
});

test('pseudo-log-likelihoods match fair-esm (≤ 1e-3 per residue)', async () => {
  const withPll = cases.filter((c) => c.pseudo_log_likelihood !== undefined);
  const { status, json } = await postJson(`${server.url}/v1/pll`, { sequences: withPll.map((c) => c.sequence) });
  assert.equal(status, 200);
  (json.results as { index: number; length: number; pseudo_log_likelihood: number; pseudo_perplexity: number }[]).forEach((r, i) => {
    const c = withPll[i];
    assert.equal(r.length, c.num_tokens - 2);
    assert.ok(Math.abs(r.pseudo_log_likelihood - c.pseudo_log_likelihood!) / r.length <= 1e-3, c.id);
    assert.ok(Math.abs(r.pseudo_perplexity - c.pseudo_perplexity!) / c.pseudo_perplexity! <= 1e-3, c.id);
  });
});

test('fill-mask gives the softmax of the fixture’s logits at each <mask>', async () => {
  const c = byId('masked');
  const { status, json } = await postJson(`${server.url}/v1/fill-mask`, { sequence: c.sequence, top_k: 25 });
  assert.equal(status, 200);
  const logits = await goldenTensor(c.id, 'logits');
  const V = ESM2_VOCAB.length;
  const predictions = json.predictions as { position: number; tokens: { token: string; probability: number }[] }[];
  assert.deepEqual(predictions.map((p) => p.position), [7, 16]);
  assertFillMaskSoftmax(predictions, logits, ESM2_VOCAB);
  for (const p of predictions) {
    const row = logits.subarray(p.position * V, (p.position + 1) * V);
    assert.equal(p.tokens.length, 25);
    const best = [...'LAGVSERTIDPKQNFYMHWCXBUZO'].sort((a, b) => row[ESM2_VOCAB.indexOf(b)] - row[ESM2_VOCAB.indexOf(a)])[0];
    assert.equal(p.tokens[0].token, best);
  }
});

test('long proteins: 422 by default, windows around each position with truncation "window"', async () => {
  const long = 'MKTVRQERLKSIVRILERSKEPVSGAQL'.repeat(40).slice(0, 1100);
  const refused = await postJson(`${server.url}/v1/pll`, { sequences: [long] });
  assert.equal(refused.status, 422);
  assert.match(String(refused.json.detail), /1022/);
  const windowed = await postJson(`${server.url}/v1/score`, { sequence: long, mutations: [`${long[1049]}1050${long[1049] === 'W' ? 'A' : 'W'}`, 'M1A'], truncation: 'window' });
  assert.equal(windowed.status, 200, JSON.stringify(windowed.json));
  for (const s of windowed.json.scores as { score: number }[]) assert.ok(Number.isFinite(s.score));
  const fill = await postJson(`${server.url}/v1/fill-mask`, { sequence: `${long.slice(0, 1060)}<mask>${long.slice(1061)}`, truncation: 'window' });
  assert.equal(fill.status, 200);
  assert.deepEqual((fill.json.predictions as { position: number }[]).map((p) => p.position), [1061]);
});

test('every error is a 422 naming the problem', async () => {
  const seq = byId('seed_example').sequence; // M K T V …
  const cases422: [string, unknown, RegExp][] = [
    ['/v1/score', { sequence: seq, mutations: ['A2G'] }, /mutations\[0\].*position 2 is K, not A/],
    ['/v1/score', { sequence: seq, mutations: ['K99A'] }, /mutations\[0\].*out of range|1 … 28|1 \.\.\. 28/],
    ['/v1/score', { sequence: seq, mutations: ['K2J'] }, /mutations\[0\].*J/],
    ['/v1/score', { sequence: seq, mutations: ['2A'] }, /mutations\[0\]/],
    ['/v1/score', { sequence: seq }, /either "mutations" or "scan"/],
    ['/v1/score', { sequence: seq, mutations: ['K2A'], scan: true }, /either "mutations" or "scan"/],
    ['/v1/score', { sequence: seq, mutations: ['K2A'], method: 'best' }, /method/],
    ['/v1/fill-mask', { sequence: seq }, /mask/],
    ['/v1/fill-mask', { sequence: `M<mask>K`, top_k: 0 }, /top_k/],
    ['/v1/pll', { sequences: ['MK*'] }, /sequences\[0\]: invalid character '\*' at position 3/],
  ];
  for (const [route, body, message] of cases422) {
    const { status, json } = await postJson(`${server.url}${route}`, body);
    assert.equal(status, 422, `${route} ${JSON.stringify(body)}`);
    assert.match(String(json.detail), message, `${route} ${JSON.stringify(body)}`);
  }
});
