// An ensemble (MODEL_NAME a comma list) of two ESM-1b-family checkpoints: the golden fixture and a
// copy with perturbed weights. /v1/score without `model` is the mean of the members' scores, each
// member's own score is what a `model` pick (and a one-model server of that member) gives, an
// unknown `model` is a 422, members that cannot be averaged are refused at start, and admission
// counts every member.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fixtureModelDirOf } from './helpers/golden.js';
import { startTestServer, postJson, type TestServer } from './helpers/server.js';
import { copyFixture } from './helpers/fixture-copy.js';
import { buildApp } from '../src/server/app.js';
import { loadSettings, SettingsError } from '../src/server/settings.js';
import { scoreCost } from '../src/tasks/cost.js';
import { loadConfig } from '../src/model/config.js';
import { shareDevices } from '../src/server/members.js';

const A = fixtureModelDirOf('esm1b_tiny');
const SEQ = 'MKTVRQERLKSIVRILERSK';
const MUTATIONS = ['M1A', 'K2A', 'T3W', 'V4G:R5K', 'K20L'];
const CLOSE = 1e-6;
/** The admission test's long sequence: one member's scan fits MAX_REQUEST_TOKENS, both members' do not. */
const LONG = 'MKTVRQERLKSIVRILERSKEPVSGAQLAEELSVSRQVIVQDIAYLRSLGYNIVATPRGYVLA'.slice(0, 60);
let maxRequestTokens: number;

const cleanups: (() => Promise<void> | void)[] = [];
/** What copyFixture needs of a TestContext, for files made before the tests. */
const suite = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) } as unknown as TestContext;

let B: string;
let ensemble: TestServer;
let singleA: TestServer;

/** A perturbed copy of the ESM-1b fixture: same family and vocabulary, different weights, different scores. */
async function perturbedCopy(t: TestContext): Promise<string> {
  return copyFixture(t, {
    fixture: 'esm1b_tiny',
    edit: (tensors) =>
      tensors.map((x) => (/layer_?norm/i.test(x.name) ? x : { ...x, data: x.data.map((v, i) => v * (1 + 0.5 * Math.sin(0.7 * i + 1))) })),
  });
}

before(async () => {
  B = await perturbedCopy(suite);
  const config = await loadConfig(A);
  const oneMember = scoreCost(config, 1022, LONG.length, 'masked_marginal', LONG.length, LONG.length * 20).tokens;
  maxRequestTokens = Math.ceil(oneMember * 1.5);
  ensemble = await startTestServer({ MODEL_NAME: `${A}, ${B}`, BATCH_QUEUE_MAX_WAIT_MS: '2', MAX_REQUEST_TOKENS: String(maxRequestTokens) });
  singleA = await startTestServer({ MODEL_NAME: A, BATCH_QUEUE_MAX_WAIT_MS: '2' });
});
after(async () => {
  await ensemble?.close();
  await singleA?.close();
  for (const fn of cleanups.reverse()) await fn();
});

type Score = { mutation: string; score: number; member_scores?: number[] };
const scoreWith = async (server: TestServer, body: Record<string, unknown>) => {
  const { status, json } = await postJson(`${server.url}/v1/score`, { sequence: SEQ, ...body });
  assert.equal(status, 200, JSON.stringify(json));
  return json;
};

test('/v1/models lists both members and says the server is an ensemble; /health keeps its shape', async () => {
  const models = (await (await fetch(`${ensemble.url}/v1/models`)).json()) as Record<string, unknown>;
  assert.equal(models.ensemble, true);
  assert.equal(models.name, `${A}, ${B}`);
  const members = models.members as { name: string; family: string; tasks: string[]; layers: number; hidden_size: number }[];
  assert.deepEqual(members.map((m) => m.name), [A, B]);
  for (const m of members) {
    assert.equal(m.family, 'esm1');
    assert.equal(m.layers, 2);
    assert.equal(m.hidden_size, 32);
    assert.deepEqual(m.tasks, ['embed', 'logits', 'contacts', 'fill-mask', 'score', 'scan', 'pll']);
  }
  // One replica per member on DEVICES=cpu, each entry naming its member.
  assert.deepEqual((models.devices as { model: string }[]).map((d) => d.model), [A, B]);
  assert.match(String(models.devices_description), /shared by 2 members: \d+ threads? per replica$/);
  const health = (await (await fetch(`${ensemble.url}/health`)).json()) as Record<string, unknown>;
  const single = (await (await fetch(`${singleA.url}/health`)).json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(health), Object.keys(single));
  assert.equal(health.model_name, `${A}, ${B}`);
  assert.equal(health.status, 'healthy');
  assert.equal((await fetch(`${ensemble.url}/ready`)).status, 200);
  // A one-model server says nothing of ensembles.
  const one = (await (await fetch(`${singleA.url}/v1/models`)).json()) as Record<string, unknown>;
  assert.equal('ensemble' in one, false);
  assert.equal('members' in one, false);
});

test('/v1/score without `model` is the mean of the members; member_scores are what each `model` pick and a one-model server give', async () => {
  for (const method of ['masked_marginal', 'wt_marginal'] as const) {
    const mean = await scoreWith(ensemble, { mutations: MUTATIONS, method });
    assert.deepEqual(mean.members, [A, B]);
    const pickA = (await scoreWith(ensemble, { mutations: MUTATIONS, method, model: A })).scores as Score[];
    const pickB = (await scoreWith(ensemble, { mutations: MUTATIONS, method, model: B })).scores as Score[];
    const alone = (await scoreWith(singleA, { mutations: MUTATIONS, method })).scores as Score[];
    const scores = mean.scores as Score[];
    assert.equal(scores.length, MUTATIONS.length);
    let differ = 0;
    scores.forEach((s, i) => {
      assert.equal(s.mutation, MUTATIONS[i]);
      const [a, b] = s.member_scores!;
      assert.ok(Math.abs(a - pickA[i].score) <= CLOSE, `${method} ${s.mutation}: member A ${a} vs pick ${pickA[i].score}`);
      assert.ok(Math.abs(b - pickB[i].score) <= CLOSE, `${method} ${s.mutation}: member B ${b} vs pick ${pickB[i].score}`);
      assert.ok(Math.abs(pickA[i].score - alone[i].score) <= CLOSE, `${method} ${s.mutation}: pick A ${pickA[i].score} vs one-model server ${alone[i].score}`);
      assert.ok(Math.abs(s.score - (pickA[i].score + pickB[i].score) / 2) <= CLOSE, `${method} ${s.mutation}: mean`);
      differ = Math.max(differ, Math.abs(a - b));
      assert.equal(pickA[i].member_scores, undefined);
    });
    assert.ok(differ > 1e-3, `the members must score differently (largest difference ${differ})`);
  }
});

test('the deep mutational scan: mean matrix and member_matrices; the stream gives the same mean with progress over both members', async () => {
  const scan = await scoreWith(ensemble, { scan: true });
  const matrix = scan.matrix as number[][];
  const members = scan.member_matrices as number[][][];
  assert.equal(members.length, 2);
  const pickB = (await scoreWith(ensemble, { scan: true, model: B })).matrix as number[][];
  assert.equal(matrix.length, SEQ.length);
  for (let i = 0; i < SEQ.length; i++) {
    for (let j = 0; j < 20; j++) {
      assert.ok(Math.abs(matrix[i][j] - (members[0][i][j] + members[1][i][j]) / 2) <= CLOSE);
      assert.ok(Math.abs(members[1][i][j] - pickB[i][j]) <= CLOSE);
    }
  }
  const res = await fetch(`${ensemble.url}/v1/score/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sequence: SEQ }) });
  assert.equal(res.status, 200);
  const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('event:'));
  const progress = events.filter((e) => e.startsWith('event: progress')).map((e) => JSON.parse(e.split('data: ')[1]) as { done: number; total: number });
  const last = progress[progress.length - 1];
  assert.equal(last.done, last.total);
  assert.ok(last.total >= 1, JSON.stringify(progress));
  const result = JSON.parse(events.find((e) => e.startsWith('event: result'))!.split('data: ')[1]) as Record<string, unknown>;
  assert.deepEqual(result.members, [A, B]);
  (result.matrix as number[][]).forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - matrix[i][j]) <= CLOSE)));
});

test('other routes run the first member without `model`, the picked one with it, and say which', async () => {
  const embed = async (model?: string) => {
    const { status, json } = await postJson(`${ensemble.url}/v1/embed`, { sequences: [SEQ], ...(model ? { model } : {}) });
    assert.equal(status, 200, JSON.stringify(json));
    return json;
  };
  const first = await embed();
  assert.equal(first.model, A);
  const b = await embed(B);
  assert.equal(b.model, B);
  const mean = (j: Record<string, unknown>) => (j.results as { representations: Record<string, { mean: number[] }> }[])[0].representations['2'].mean;
  assert.notDeepEqual(mean(first), mean(b));
  assert.deepEqual(mean(first), mean(await embed(A)));
  const predict = await postJson(`${ensemble.url}/predict`, { sequence: SEQ, model: B });
  assert.equal(predict.status, 200);
  assert.equal(predict.json.model_name, B);
  for (const [route, body] of [['/v1/pll', { sequences: [SEQ] }], ['/v1/fill-mask', { sequence: 'MK<mask>V' }]] as const) {
    const { status, json } = await postJson(`${ensemble.url}${route}`, { ...body, model: B });
    assert.equal(status, 200, route);
    assert.equal(json.model, B, route);
  }
});

test('an unknown `model` is a 422 naming the members, on every inference route; a one-model server takes its own name only', async () => {
  const bodies: [string, Record<string, unknown>][] = [
    ['/predict', { sequence: SEQ }],
    ['/predict/batch', { sequences: [SEQ] }],
    ['/v1/embed', { sequences: [SEQ] }],
    ['/v1/score', { sequence: SEQ, mutations: ['M1A'] }],
    ['/v1/score/stream', { sequence: SEQ }],
    ['/v1/pll', { sequences: [SEQ] }],
    ['/v1/fill-mask', { sequence: 'MK<mask>V' }],
  ];
  for (const [route, body] of bodies) {
    const { status, json } = await postJson(`${ensemble.url}${route}`, { ...body, model: 'facebook/esm1v_t33_650M_UR90S_9' });
    assert.equal(status, 422, route);
    assert.equal(json.error, 'validation_error', route);
    assert.ok(String(json.detail).startsWith('model: no model "facebook/esm1v_t33_650M_UR90S_9" here'), `${route}: ${json.detail}`);
    assert.ok(String(json.detail).includes(JSON.stringify(A)) && String(json.detail).includes(JSON.stringify(B)), route);
  }
  assert.equal((await postJson(`${singleA.url}/v1/score`, { sequence: SEQ, mutations: ['M1A'], model: A })).status, 200);
  assert.equal((await postJson(`${singleA.url}/v1/score`, { sequence: SEQ, mutations: ['M1A'], model: B })).status, 422);
});

test('admission counts every member: a scan one member may run is too costly for the ensemble', async () => {
  const picked = await postJson(`${ensemble.url}/v1/score`, { sequence: LONG, scan: true, model: B });
  assert.equal(picked.status, 200, JSON.stringify(picked.json));
  const all = await postJson(`${ensemble.url}/v1/score`, { sequence: LONG, scan: true });
  assert.equal(all.status, 413, JSON.stringify(all.json));
  assert.equal(all.json.error, 'too_costly');
  assert.match(String(all.json.detail), new RegExp(`run by each of 2 ensemble members, summed\\), more than MAX_REQUEST_TOKENS = ${maxRequestTokens.toLocaleString('en-US')}`));
  const stream = await postJson(`${ensemble.url}/v1/score/stream`, { sequence: LONG });
  assert.equal(stream.status, 413);
});

/** Starts a server on `modelName` and returns why start-up failed. */
async function startFailure(modelName: string): Promise<string> {
  const settings = loadSettings({ MODEL_NAME: modelName, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', DEVICES: 'cpu' });
  const { app, runtime } = await buildApp(settings, { version: 'test', logger: false });
  try {
    await runtime.start();
    await runtime.drain();
    return 'started';
  } catch (err) {
    return (err as Error).message;
  } finally {
    await app.close();
  }
}

test('members that cannot be averaged are refused at start, with one line naming both and what differs', async (t) => {
  const esm2 = fixtureModelDirOf('esm2_tiny');
  assert.equal(await startFailure(`${A},${esm2}`), `MODEL_NAME: members "${A}" and "${esm2}" cannot form an ensemble: family esm1 (ESM-1b / ESM-1v) vs esm2 (ESM-2)`);
  const swapped = await copyFixture(t, { fixture: 'esm1b_tiny' });
  const vocab = (await readFile(path.join(swapped, 'vocab.txt'), 'utf8')).split('\n');
  const [l, a] = [vocab.indexOf('L'), vocab.indexOf('A')];
  [vocab[l], vocab[a]] = [vocab[a], vocab[l]];
  await writeFile(path.join(swapped, 'vocab.txt'), vocab.join('\n'));
  assert.equal(await startFailure(`${A},${swapped}`), `MODEL_NAME: members "${A}" and "${swapped}" cannot form an ensemble: vocabulary token ${l} is "L" vs "A"`);
});

test('MODEL_NAME with an empty item or a duplicate stops start-up naming the setting', () => {
  for (const [value, why] of [
    [`${A},,${B}`, /without empty items/],
    [`${A}, ${A}`, /is named twice/],
    [`${A},`, /without empty items/],
  ] as const) {
    assert.throws(() => loadSettings({ MODEL_NAME: value }), (err: unknown) => err instanceof SettingsError && err.variable === 'MODEL_NAME' && why.test(err.message));
  }
});

test('members share the devices: CPU replicas split their threads between members, GPU replicas are each member\'s own', () => {
  const cpu = { replicas: [{ device: 'cpu', intraOpNumThreads: 8 }, { device: 'cpu', intraOpNumThreads: 8 }], description: 'DEVICES=cpu:2: 2 cpu replicas × 8 threads' };
  assert.equal(shareDevices(cpu, 1), cpu);
  const five = shareDevices(cpu, 5);
  assert.deepEqual(five.replicas.map((r) => r.intraOpNumThreads), [1, 1]);
  assert.equal(five.description, 'DEVICES=cpu:2: 2 cpu replicas × 8 threads; shared by 5 members: 1 thread per replica');
  assert.deepEqual(shareDevices(cpu, 2).replicas.map((r) => r.intraOpNumThreads), [4, 4]);
  const gpu = { replicas: [{ device: 'cuda:0' }, { device: 'cuda:1' }], description: 'DEVICES=cuda:0,1: cuda:0, cuda:1' };
  const shared = shareDevices(gpu, 5);
  assert.deepEqual(shared.replicas, gpu.replicas);
  assert.match(shared.description, /each of 5 members runs its own replicas on them$/);
});
