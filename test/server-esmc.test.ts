// The ESM C fixture (EvolutionaryScale's ESMC with random weights) served over HTTP from the hub
// layout, the Transformers port's layout beside it, and through the CLI (real processes): every
// task against the original implementation's numbers, with the 64-wide head (33 tokens), the
// log-softmax over all 64 ids that cases.json defines, and contacts refused (no contact head).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { STANDARD_AMINO_ACIDS } from '../src/model/tokenizer.js';
import { SafetensorsFile } from '../src/model/safetensors.js';
import { parseCsv } from '../src/tasks/csv.js';
import { flat, checkRelative as check, assertFillMaskSoftmax, fixtureModelDirOf, goldenCases, goldenTensor, type GoldenCase } from './helpers/golden.js';
import { assertGoldenScores, startTestServer, postJson, type TestServer } from './helpers/server.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/temp-dir.js';

const FIXTURE = 'esmc_tiny';
const E = 64;
const V = 64;
let server: TestServer;
let cases: GoldenCase[];
let vocab: string[];

before(async () => {
  server = await startTestServer({ MODEL_NAME: fixtureModelDirOf(FIXTURE), BATCH_QUEUE_MAX_WAIT_MS: '5' });
  cases = await goldenCases(FIXTURE);
  vocab = [...server.runtime.model!.checkpoint.tokenizer.vocab];
});
after(() => server.close());

const byId = (id: string) => cases.find((c) => c.id === id)!;
const golden = (c: GoldenCase, quantity: string) => goldenTensor(c.id, quantity, FIXTURE);
const rows = (data: Float32Array, width: number, from: number, to: number) => data.subarray(from * width, to * width);

async function checkEmbedding(c: GoldenCase, result: Record<string, unknown>) {
  const L = c.num_tokens - 2;
  const reps = result.representations as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(reps).sort(), ['0', '1', '2']);
  const states = await golden(c, 'hidden_states'); // [3, T, E]: embedding, block 1, after the final norm
  const T = c.num_tokens;
  check(`${c.id} mean`, flat(reps['2'].mean), await golden(c, 'mean'));
  check(`${c.id} per_residue/2`, flat(reps['2'].per_residue), rows(await golden(c, 'last_hidden'), E, 1, L + 1));
  check(`${c.id} per_residue/1`, flat(reps['1'].per_residue), rows(await golden(c, 'repr_layer1'), E, 1, L + 1));
  check(`${c.id} per_residue/0`, flat(reps['0'].per_residue), rows(states, E, 1, L + 1));
  check(`${c.id} hidden_states[2] is layer 2`, flat(reps['2'].per_residue), rows(states, E, 2 * T + 1, 2 * T + L + 1));
  check(`${c.id} logits (all 64)`, flat(result.logits), rows(await golden(c, 'logits'), V, 1, L + 1));
}

test('the tokenizer gives the fixture token ids; /v1/models names ESM C, its 33 tokens of 64 and no contacts', async () => {
  const { tokenizer } = server.runtime.model!.checkpoint;
  for (const c of cases) assert.deepEqual([...tokenizer.encode(c.sequence)], (c as GoldenCase & { token_ids: number[] }).token_ids, c.id);
  const body = (await (await fetch(`${server.url}/v1/models`)).json()) as Record<string, unknown>;
  assert.equal(body.family, 'esmc');
  assert.equal(body.family_name, 'ESM C');
  assert.deepEqual(body.tasks, ['embed', 'logits', 'fill-mask', 'score', 'scan', 'pll']);
  assert.equal((body.vocabulary as string[]).length, 64);
  assert.equal(body.vocabulary_tokens, 33);
  assert.equal((body.vocabulary as string[])[31], '|');
  assert.equal((body.vocabulary as string[])[40], '<unused_40>');
  // Not a published ESM C shape: no licence is claimed for it.
  assert.deepEqual(body.published_shape, []);
  assert.equal(body.license, null);
  assert.equal(body.parameters, 64 * 64 * 2 + 2 * (64 * 6 + 64 * 64 * 4 + 3 * 64 * 256) + 64 + (64 * 64 + 64 * 3 + 64));
  // A placeholder is not a token: written inline it is refused like any unknown special token.
  const refused = await postJson(`${server.url}/v1/embed`, { sequences: ['MK<unused_40>V'] });
  assert.equal(refused.status, 422);
  assert.match(String(refused.json.detail), /unknown special token '<unused_40>'/);
});

test('embeddings (layers 0, 1, 2) and all 64 logits match ESM C, one case at a time and all in one padded batch', async () => {
  const include = ['mean', 'per_residue', 'logits'];
  for (const c of cases) {
    const { status, json } = await postJson(`${server.url}/v1/embed`, { sequences: [c.sequence], include, repr_layers: [0, 1, -1] });
    assert.equal(status, 200, JSON.stringify(json));
    await checkEmbedding(c, (json.results as Record<string, unknown>[])[0]);
  }
  const { status, json } = await postJson(`${server.url}/v1/embed`, { sequences: cases.map((c) => c.sequence), include, repr_layers: [0, 1, 2] });
  assert.equal(status, 200);
  for (const [i, result] of (json.results as Record<string, unknown>[]).entries()) await checkEmbedding(cases[i], result);
});

test('variant scores (both methods), the scan and PLL match ESM C (≤ 1e-3 absolute)', async () => {
  await assertGoldenScores(server.url, cases);
  const c = byId('lysozyme_frag');
  const L = c.num_tokens - 2;
  const { status, json } = await postJson(`${server.url}/v1/score`, { sequence: c.sequence, scan: true });
  assert.equal(status, 200);
  const matrix = json.matrix as number[][];
  const lp = await golden(c, 'masked_log_probs');
  for (let i = 0; i < L; i++) {
    const wt = vocab.indexOf(c.sequence[i]);
    STANDARD_AMINO_ACIDS.forEach((aa, j) => {
      const expected = aa === c.sequence[i] ? 0 : lp[i * V + vocab.indexOf(aa)] - lp[i * V + wt];
      assert.ok(Math.abs(matrix[i][j] - expected) <= 1e-3, `position ${i + 1} ${aa}`);
    });
  }
  const withPll = cases.filter((x) => x.pseudo_log_likelihood !== undefined);
  const pll = await postJson(`${server.url}/v1/pll`, { sequences: withPll.map((x) => x.sequence), per_position: true });
  assert.equal(pll.status, 200);
  for (const [i, r] of (pll.json.results as { pseudo_log_likelihood: number; pseudo_perplexity: number; per_position: number[] }[]).entries()) {
    const x = withPll[i];
    assert.ok(Math.abs(r.pseudo_log_likelihood - x.pseudo_log_likelihood!) <= 1e-3, `${x.id}: ${r.pseudo_log_likelihood} vs ${x.pseudo_log_likelihood}`);
    assert.ok(Math.abs(r.pseudo_perplexity / x.pseudo_perplexity! - 1) <= 1e-3, x.id);
    const lpx = await golden(x, 'masked_log_probs');
    const ids = (x as GoldenCase & { token_ids: number[] }).token_ids;
    r.per_position.forEach((v, p) => assert.ok(Math.abs(v - lpx[p * V + ids[p + 1]]) <= 1e-4, `${x.id} position ${p + 1}`));
  }
});

test('fill-mask is the softmax over all 64 logits at each <mask>; contacts are a 422 naming why', async () => {
  const c = byId('masked');
  const { status, json } = await postJson(`${server.url}/v1/fill-mask`, { sequence: c.sequence, top_k: 25 });
  assert.equal(status, 200);
  const logits = await golden(c, 'logits');
  const predictions = json.predictions as { position: number; tokens: { token: string; probability: number }[] }[];
  assert.deepEqual(predictions.map((p) => p.position), [7, 16]);
  assertFillMaskSoftmax(predictions, logits, vocab);
  const refused = await postJson(`${server.url}/v1/embed`, { sequences: ['MKTV'], include: ['mean', 'contacts'] });
  assert.equal(refused.status, 422);
  assert.match(String(refused.json.detail), /^include: "contacts": this checkpoint has no contact head.*ESM C/);
});

test('the Transformers port layout serves the same numbers', async (t) => {
  const port = await startTestServer({ MODEL_NAME: fixtureModelDirOf(FIXTURE, 'model_transformers') });
  t.after(() => port.close());
  const c = byId('seed_example');
  const { status, json } = await postJson(`${port.url}/v1/embed`, { sequences: [c.sequence], include: ['mean', 'per_residue', 'logits'], repr_layers: [0, 1, 2] });
  assert.equal(status, 200);
  await checkEmbedding(c, (json.results as Record<string, unknown>[])[0]);
  const scored = await postJson(`${port.url}/v1/score`, { sequence: c.sequence, mutations: c.variant_scores!.map((v) => v.mutation) });
  (scored.json.scores as { score: number }[]).forEach((s, i) => assert.ok(Math.abs(s.score - c.variant_scores![i].masked_marginal) <= 1e-3));
});

test('esm2 embed, pll and score (real processes) on the ESM C checkpoint match the original', async (t) => {
  const exec = promisify(execFile);
  const dir = await tempDir(t);
  const esm2 = (args: string[]) => exec(process.execPath, [join(repoRoot, 'bin', 'esm2.js'), ...args, '--threads', '1'], { env: { ...process.env, ESM2_COMPILE_CACHE: dir } });
  const model = fixtureModelDirOf(FIXTURE);
  const plain = cases.filter((c) => !c.sequence.includes('<'));
  const fasta = join(dir, 'cases.fasta');
  await writeFile(fasta, plain.map((c) => `>${c.id}\n${c.sequence}\n`).join(''));

  const output = join(dir, 'out.safetensors');
  await esm2(['embed', '--model', model, '--input', fasta, '--output', output, '--include', 'mean,per_tok,logits', '--repr-layers', '1,-1', '--no-progress']);
  const file = await SafetensorsFile.open(output);
  t.after(() => file.close());
  for (const c of plain) {
    const L = c.num_tokens - 2;
    check(`${c.id}/mean/2`, await file.readFloat32(`${c.id}/mean/2`), await golden(c, 'mean'));
    check(`${c.id}/per_tok/1`, await file.readFloat32(`${c.id}/per_tok/1`), rows(await golden(c, 'repr_layer1'), E, 1, L + 1));
    check(`${c.id}/logits`, await file.readFloat32(`${c.id}/logits`), rows(await golden(c, 'logits'), V, 1, L + 1));
    assert.deepEqual(file.tensors.get(`${c.id}/logits`)!.shape, [L, 64]);
  }

  const pll = parseCsv((await esm2(['pll', '--model', model, '--input', fasta])).stdout);
  pll.rows.forEach(([id, , value], i) => assert.ok(Math.abs(Number(value) - plain[i].pseudo_log_likelihood!) <= 1e-3, `${id}: ${value}`));
  const seed = byId('seed_example');
  const { stdout } = await esm2(['score', '--model', model, '--sequence', seed.sequence, '--mutations', seed.variant_scores!.map((v) => v.mutation).join(','), '--method', 'wt_marginal']);
  parseCsv(stdout).rows.forEach(([mutant, score], i) => {
    assert.equal(mutant, seed.variant_scores![i].mutation);
    assert.ok(Math.abs(Number(score) - seed.variant_scores![i].wt_marginal) <= 1e-3, `${mutant}: ${score}`);
  });
});
