// The ESM-1b fixture (absolute positions, embedding LayerNorm, 1022-residue limit) served over
// HTTP: every task against fair-esm's numbers, the family's hard length limit against a larger
// MAX_SEQUENCE_LENGTH, and /v1/models naming the family.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { STANDARD_AMINO_ACIDS, ESM2_VOCAB } from '../src/model/tokenizer.js';
import { flat, checkRelative as check, assertFillMaskSoftmax, fixtureModelDirOf, goldenCases, goldenTensor, type GoldenCase } from './helpers/golden.js';
import { assertGoldenScores, startTestServer, postJson, type TestServer } from './helpers/server.js';
import { copyFixture } from './helpers/fixture-copy.js';

const FIXTURE = 'esm1b_tiny';
const V = ESM2_VOCAB.length;
let server: TestServer;
let cases: GoldenCase[];

before(async () => {
  // MAX_SEQUENCE_LENGTH above ESM-1b's 1022: the family's limit must still win.
  server = await startTestServer({ MODEL_NAME: fixtureModelDirOf(FIXTURE), MAX_SEQUENCE_LENGTH: '2000', BATCH_QUEUE_MAX_WAIT_MS: '5' });
  cases = await goldenCases(FIXTURE);
});
after(() => server.close());

const byId = (id: string) => cases.find((c) => c.id === id)!;
const golden = (c: GoldenCase, quantity: string) => goldenTensor(c.id, quantity, FIXTURE);
const residueRows = (data: Float32Array, L: number, width: number) => data.subarray(width, (L + 1) * width);

async function checkEmbedding(c: GoldenCase, result: Record<string, unknown>) {
  const L = c.num_tokens - 2;
  const reps = result.representations as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(reps).sort(), ['1', '2']);
  check(`${c.id} mean`, flat(reps['2'].mean), await golden(c, 'mean'));
  check(`${c.id} per_residue/2`, flat(reps['2'].per_residue), residueRows(await golden(c, 'last_hidden'), L, 32));
  check(`${c.id} per_residue/1`, flat(reps['1'].per_residue), residueRows(await golden(c, 'repr_layer1'), L, 32));
  check(`${c.id} logits`, flat(result.logits), residueRows(await golden(c, 'logits'), L, V));
  check(`${c.id} contacts`, flat(result.contacts), await golden(c, 'contacts'));
}

test('/v1/models names the ESM-1b family and its 1022-residue limit', async () => {
  const body = (await (await fetch(`${server.url}/v1/models`)).json()) as Record<string, unknown>;
  assert.equal(body.family, 'esm1');
  assert.equal(body.family_name, 'ESM-1b / ESM-1v');
  assert.equal(body.max_sequence_length, 1022);
  assert.deepEqual(body.tasks, ['embed', 'logits', 'contacts', 'fill-mask', 'score', 'scan', 'pll']);
  assert.match(String(body.max_sequence_length_reason), /ESM-1b \/ ESM-1v's limit.*1026.*MAX_SEQUENCE_LENGTH \(2000\)/);
});

test('embeddings, logits and contacts match fair-esm, one case at a time and all in one padded batch', async () => {
  const include = ['mean', 'per_residue', 'logits', 'contacts'];
  for (const c of cases) {
    const { status, json } = await postJson(`${server.url}/v1/embed`, { sequences: [c.sequence], include, repr_layers: [1, -1] });
    assert.equal(status, 200, JSON.stringify(json));
    await checkEmbedding(c, (json.results as Record<string, unknown>[])[0]);
  }
  const { status, json } = await postJson(`${server.url}/v1/embed`, { sequences: cases.map((c) => c.sequence), include, repr_layers: [1, 2] });
  assert.equal(status, 200);
  for (const [i, result] of (json.results as Record<string, unknown>[]).entries()) await checkEmbedding(cases[i], result);
});

test('variant scores match fair-esm for both methods (≤ 1e-3)', () => assertGoldenScores(server.url, cases));

test('the deep mutational scan of the 300-residue case equals fair-esm masked marginals (≤ 1e-3)', async () => {
  const c = byId('long_random');
  const { status, json } = await postJson(`${server.url}/v1/score`, { sequence: c.sequence, scan: true });
  assert.equal(status, 200);
  const matrix = json.matrix as number[][];
  assert.equal(matrix.length, 300);
  const lp = await golden(c, 'masked_log_probs');
  for (let i = 0; i < 300; i++) {
    const wt = ESM2_VOCAB.indexOf(c.sequence[i]);
    STANDARD_AMINO_ACIDS.forEach((aa, j) => {
      const expected = aa === c.sequence[i] ? 0 : lp[i * V + ESM2_VOCAB.indexOf(aa)] - lp[i * V + wt];
      assert.ok(Math.abs(matrix[i][j] - expected) <= 1e-3, `position ${i + 1} ${aa}`);
    });
  }
});

test('pseudo-log-likelihoods match fair-esm (≤ 1e-3 absolute)', async () => {
  const withPll = cases.filter((c) => c.pseudo_log_likelihood !== undefined);
  const { status, json } = await postJson(`${server.url}/v1/pll`, { sequences: withPll.map((c) => c.sequence) });
  assert.equal(status, 200);
  (json.results as { length: number; pseudo_log_likelihood: number; pseudo_perplexity: number }[]).forEach((r, i) => {
    const c = withPll[i];
    assert.equal(r.length, c.num_tokens - 2);
    assert.ok(Math.abs(r.pseudo_log_likelihood - c.pseudo_log_likelihood!) <= 1e-3, `${c.id}: ${r.pseudo_log_likelihood} vs ${c.pseudo_log_likelihood}`);
    assert.ok(Math.abs(r.pseudo_perplexity / c.pseudo_perplexity! - 1) <= 1e-3, c.id);
  });
});

test('fill-mask gives the softmax of fair-esm logits at each <mask>', async () => {
  const c = byId('masked');
  const { status, json } = await postJson(`${server.url}/v1/fill-mask`, { sequence: c.sequence, top_k: 25 });
  assert.equal(status, 200);
  const logits = await golden(c, 'logits');
  const predictions = json.predictions as { position: number; tokens: { token: string; probability: number }[] }[];
  assert.deepEqual(predictions.map((p) => p.position), [7, 16]);
  assertFillMaskSoftmax(predictions, logits, ESM2_VOCAB);
});

test('the 1022-residue limit is hard: 1022 run whole, 1023 is a 422 naming it, "truncate" cuts to 1022, "window" runs windows of 1022', async () => {
  const unit = 'MKTVRQERLKSIVRILERSKEPVSGAQL';
  const seq = (n: number) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
  const whole = await postJson(`${server.url}/v1/embed`, { sequences: [seq(1022)], include: ['mean'] });
  assert.equal(whole.status, 200, JSON.stringify(whole.json));

  for (const [route, body] of [
    ['/v1/embed', { sequences: [seq(1023)] }],
    ['/v1/pll', { sequences: [seq(1100)] }],
    ['/v1/score', { sequence: seq(1500), mutations: ['M1A'] }],
  ] as [string, unknown][]) {
    const refused = await postJson(`${server.url}${route}`, body);
    assert.equal(refused.status, 422, route);
    assert.match(String(refused.json.detail), /the maximum sequence length is 1022 \(ESM-1b \/ ESM-1v's limit: its learned position table/, route);
  }

  const truncated = await postJson(`${server.url}/v1/embed`, { sequences: [seq(1500)], include: ['mean'], truncation: 'truncate' });
  assert.equal(truncated.status, 200);
  assert.equal((truncated.json.results as { length: number }[])[0].length, 1022);

  // A 1500-residue sequence whole would index past the position table: windows of 1022 do not.
  const long = seq(1500);
  const windowed = await postJson(`${server.url}/v1/embed`, { sequences: [long], include: ['mean', 'per_residue'], truncation: 'window' });
  assert.equal(windowed.status, 200, JSON.stringify(windowed.json));
  const perResidue = flat((windowed.json.results as { representations: Record<string, { per_residue: unknown }> }[])[0].representations['2'].per_residue);
  assert.equal(perResidue.length, 1500 * 32);
  assert.ok(perResidue.every(Number.isFinite));
  const scored = await postJson(`${server.url}/v1/score`, { sequence: long, mutations: [`${long[1399]}1400A`, 'M1A'], truncation: 'window' });
  assert.equal(scored.status, 200, JSON.stringify(scored.json));
  for (const s of scored.json.scores as { score: number }[]) assert.ok(Number.isFinite(s.score));
});

test('a checkpoint without a contact head serves everything but contacts, which are a 422 naming why', async (t) => {
  const dir = await copyFixture(t, { fixture: FIXTURE, edit: (ts) => ts.filter((x) => !x.name.includes('contact_head')) });
  const headless = await startTestServer({ MODEL_NAME: dir });
  t.after(() => headless.close());
  assert.equal(headless.runtime.model!.checkpoint.hasContactHead, false);
  const models = (await (await fetch(`${headless.url}/v1/models`)).json()) as { tasks: string[] };
  assert.equal(models.tasks.includes('contacts'), false);
  const refused = await postJson(`${headless.url}/v1/embed`, { sequences: ['MKTV'], include: ['mean', 'contacts'] });
  assert.equal(refused.status, 422);
  assert.match(String(refused.json.detail), /^include: "contacts": this checkpoint has no contact head/);
  const c = byId('seed_example');
  const { status, json } = await postJson(`${headless.url}/v1/embed`, { sequences: [c.sequence], include: ['mean'] });
  assert.equal(status, 200);
  check('mean without a contact head', flat((json.results as { representations: Record<string, { mean: unknown }> }[])[0].representations['2'].mean), await golden(c, 'mean'));
});
