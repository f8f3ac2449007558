// The gRPC API (GRPC_PORT) on the golden checkpoint, over loopback: every call equals its HTTP
// route's answer, health and reflection, the API key, errors with HTTP's detail, cancellation,
// and a Python client (Debian's python3-grpcio) for the same numbers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { credentials, loadPackageDefinition, status, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { flat, goldenCases, goldenTensor, relativeError, type GoldenCase } from './helpers/golden.js';
import { startTestServer, postJson, type TestServer } from './helpers/server.js';
import { repoRoot } from './helpers/paths.js';
import { grpcClient, tensorFloats, type GrpcClient, type GrpcMessage } from '../bench/grpc-client.js';
import { toGrpcError } from '../src/server/grpc/status.js';
import { notReady, toApiError, unauthorized } from '../src/server/errors.js';
import { CostLimitError, InputError, ResultMemoryBusyError } from '../src/tasks/errors.js';
import { SchedulerTimeoutError, UnavailableError } from '../src/scheduler/errors.js';

const KEY = 'grpc-test-key';
const auth = { authorization: `Bearer ${KEY}` };
let server: TestServer;
let client: GrpcClient;
let address: string;
let cases: GoldenCase[];

before(async () => {
  server = await startTestServer({ GRPC_PORT: '0', API_KEY: KEY, BATCH_QUEUE_MAX_WAIT_MS: '5' });
  address = `127.0.0.1:${server.grpcPort}`;
  client = grpcClient(address, { apiKey: KEY, deadlineMs: 60_000 });
  cases = await goldenCases();
});
after(async () => {
  client.close();
  await server.close();
});

const rejection = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  assert.fail('the call succeeded');
};

/** Embed's results as HTTP's JSON: nested arrays from the tensors. */
function nested(result: GrpcMessage) {
  const reps = result.representations as Record<string, Record<string, unknown>>;
  const rows = (t: unknown) => {
    const { shape } = t as { shape: number[] };
    const data = Array.from(tensorFloats(t));
    return shape.length === 1 ? data : Array.from({ length: shape[0] }, (_, i) => data.slice(i * shape[1], (i + 1) * shape[1]));
  };
  return {
    representations: Object.fromEntries(Object.entries(reps).map(([layer, r]) => [layer, Object.fromEntries(Object.entries(r).map(([k, t]) => [k, rows(t)]))])),
    ...(result.logits ? { logits: rows(result.logits) } : {}),
    ...(result.contacts ? { contacts: rows(result.contacts) } : {}),
  };
}

test('Embed: the numbers of POST /v1/embed, and fair-esm’s within the fixture tolerance', async () => {
  const include = ['mean', 'per_residue', 'logits', 'contacts'];
  // One sequence a request, so that both run the same batch: equal to the last bit.
  for (const c of cases) {
    const http = await postJson(`${server.url}/v1/embed`, { sequences: [c.sequence], include, repr_layers: [1, -1] }, auth);
    assert.equal(http.status, 200);
    const answer = await client.unary('Embed', { sequences: [c.sequence], include, repr_layers: [1, -1] });
    assert.equal(answer.model, http.json.model);
    const [g] = answer.results as GrpcMessage[];
    const [h] = http.json.results as Record<string, unknown>[];
    assert.deepEqual([g.index, g.length], [0, c.num_tokens - 2]);
    assert.deepEqual(nested(g), { representations: h.representations, logits: h.logits, contacts: h.contacts }, c.id);
    const reps = g.representations as Record<string, Record<string, unknown>>;
    assert.deepEqual((reps['2'].per_residue as { shape: number[] }).shape, [c.num_tokens - 2, 32]);
    assert.ok(relativeError(tensorFloats(reps['2'].mean), await goldenTensor(c.id, 'mean')) <= 1e-5, `${c.id} against fair-esm`);
  }
  // All in one request: batched with each other (padding may move the last bits of contacts).
  const sequences = cases.map((c) => c.sequence);
  const http = await postJson(`${server.url}/v1/embed`, { sequences, include, repr_layers: [1, -1] }, auth);
  const answer = await client.unary('Embed', { sequences, include, repr_layers: [1, -1] });
  for (const [i, g] of (answer.results as GrpcMessage[]).entries()) {
    const h = (http.json.results as Record<string, unknown>[])[i];
    const numbers = (x: unknown): number[] =>
      Array.isArray(x) ? x.flatMap(numbers) : typeof x === 'object' && x !== null ? Object.keys(x).sort().flatMap((k) => numbers((x as Record<string, unknown>)[k])) : [x as number];
    const reference = numbers({ representations: h.representations, logits: h.logits, contacts: h.contacts });
    assert.ok(relativeError(numbers(nested(g)), Float32Array.from(reference)) <= 1e-6, cases[i].id);
  }
});

test('EmbedStream: one message per sequence, each equal to Embed’s', async () => {
  const sequences = cases.slice(0, 3).map((c) => c.sequence);
  const [streamed, whole] = await Promise.all([client.stream('EmbedStream', { sequences }), client.unary('Embed', { sequences })]);
  assert.equal(streamed.length, sequences.length);
  assert.deepEqual(streamed.map((m) => m.index).sort(), [0, 1, 2]);
  for (const m of streamed) {
    const w = (whole.results as GrpcMessage[])[m.index as number];
    const mean = (r: GrpcMessage) => Array.from(tensorFloats((r.representations as Record<string, Record<string, unknown>>)['2'].mean));
    assert.deepEqual(mean(m), mean(w));
  }
});

test('Score, Pll and FillMask answer as their HTTP routes do', async () => {
  const c = cases.find((x) => x.variant_scores?.length)!;
  const mutations = c.variant_scores!.slice(0, 3).map((v) => v.mutation);
  for (const method of ['masked_marginal', 'wt_marginal']) {
    const http = await postJson(`${server.url}/v1/score`, { sequence: c.sequence, mutations, method }, auth);
    const grpc = await client.unary('Score', { sequence: c.sequence, mutations, method });
    assert.equal(grpc.method, method);
    assert.deepEqual((grpc.scores as GrpcMessage[]).map((s) => [s.mutation, s.score]), (http.json.scores as GrpcMessage[]).map((s) => [s.mutation, s.score]));
  }
  const short = cases.reduce((a, b) => (a.num_tokens <= b.num_tokens ? a : b));
  const scanHttp = await postJson(`${server.url}/v1/score`, { sequence: short.sequence, scan: true, method: 'wt_marginal' }, auth);
  const scan = await client.unary('Score', { sequence: short.sequence, scan: true, method: 'wt_marginal' });
  assert.deepEqual(scan.amino_acids, scanHttp.json.amino_acids);
  assert.deepEqual((scan.matrix as { shape: number[] }).shape, [short.num_tokens - 2, 20]);
  assert.deepEqual(Array.from(tensorFloats(scan.matrix)), flat(scanHttp.json.matrix).map(Math.fround));

  const sequences = cases.slice(0, 2).map((x) => x.sequence);
  const pllHttp = await postJson(`${server.url}/v1/pll`, { sequences, per_position: true }, auth);
  const pll = await client.unary('Pll', { sequences, per_position: true });
  for (const [i, r] of (pll.results as GrpcMessage[]).entries()) {
    const h = (pllHttp.json.results as GrpcMessage[])[i];
    assert.equal(r.pseudo_log_likelihood, h.pseudo_log_likelihood);
    assert.equal(r.pseudo_perplexity, h.pseudo_perplexity);
    assert.deepEqual(r.per_position, h.per_position);
  }
  const masked = `${c.sequence.slice(0, 3)}<mask>${c.sequence.slice(4)}`;
  const fillHttp = await postJson(`${server.url}/v1/fill-mask`, { sequence: masked, top_k: 3 }, auth);
  const fill = await client.unary('FillMask', { sequence: masked, top_k: 3 });
  assert.deepEqual(fill.predictions, fillHttp.json.predictions);
  // top_k unset: HTTP's default.
  const fillDefault = await client.unary('FillMask', { sequence: masked });
  assert.equal(((fillDefault.predictions as GrpcMessage[])[0].tokens as unknown[]).length, 5);
});

test('Health: SERVING for "" and esm2.v1.Esm2, NOT_FOUND for another; Watch sends the status', async () => {
  assert.equal(await client.check(''), 'SERVING');
  assert.equal(await client.check('esm2.v1.Esm2'), 'SERVING');
  await assert.rejects(client.check('nope.Service'), (err: ServiceError) => err.code === status.NOT_FOUND);
  const watch = (client.health as unknown as Record<string, (req: object) => NodeJS.EventEmitter & { cancel(): void }>).Watch.call(client.health, { service: '' });
  const [first] = (await new Promise((resolve) => watch.once('data', (m) => resolve([m])))) as GrpcMessage[];
  assert.equal(first.status, 'SERVING');
  watch.on('error', () => {});
  watch.cancel();
});

test('reflection lists the services, as `grpcurl -plaintext HOST:PORT list` does', async () => {
  const proto = join(repoRoot, 'node_modules/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto');
  const root = loadPackageDefinition(loadSync(proto, { keepCase: true }));
  const Reflection = (root.grpc as never as { reflection: { v1alpha: { ServerReflection: ServiceClientConstructor } } }).reflection.v1alpha.ServerReflection;
  const reflection = new Reflection(address, credentials.createInsecure());
  const call = (reflection as unknown as Record<string, () => NodeJS.EventEmitter & { write(m: object): void; end(): void }>).ServerReflectionInfo.call(reflection);
  const answer = (await new Promise((resolve, reject) => {
    call.once('data', resolve);
    call.once('error', reject);
    call.write({ list_services: '' });
  })) as { list_services_response: { service: { name: string }[] } };
  call.end();
  reflection.close();
  const names = answer.list_services_response.service.map((s) => s.name);
  for (const name of ['esm2.v1.Esm2', 'grpc.health.v1.Health']) assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
});

test('the API key: missing or wrong is UNAUTHENTICATED with HTTP’s detail; health needs none', async () => {
  const http = await postJson(`${server.url}/v1/embed`, { sequences: ['MKV'] });
  assert.equal(http.status, 401);
  for (const apiKey of [undefined, 'wrong']) {
    const bare = grpcClient(address, apiKey === undefined ? {} : { apiKey });
    const err = await rejection(bare.unary('Embed', { sequences: ['MKV'] }));
    assert.equal(err.code, status.UNAUTHENTICATED);
    assert.equal(err.details, http.json.detail);
    assert.equal(await bare.check(), 'SERVING');
    bare.close();
  }
});

test('invalid requests are INVALID_ARGUMENT with the detail HTTP answers', async () => {
  for (const body of [{ sequences: ['M'.repeat(5000)] }, { sequences: ['MKV1'] }, { sequences: ['MKV'], repr_layers: [99] }, { sequences: ['MKV'], include: ['contacts', 'nope'] }]) {
    const http = await postJson(`${server.url}/v1/embed`, body, auth);
    const err = await rejection(client.unary('Embed', body));
    assert.equal(err.code, status.INVALID_ARGUMENT, JSON.stringify(body).slice(0, 80));
    if (body.include === undefined) assert.equal(err.details, http.json.detail);
    assert.equal(err.metadata.get('esm2-error')[0], http.json.error);
  }
  const err = await rejection(client.unary('Embed', { sequences: [] }));
  assert.equal(err.code, status.INVALID_ARGUMENT);
  assert.equal(err.details, 'sequences: expected required property'); // proto3: an empty list is an unset field
  const score = await rejection(client.unary('Score', { sequence: 'MKV' }));
  assert.equal(score.code, status.INVALID_ARGUMENT);
  assert.equal(score.details, 'mutations: give either "mutations" or "scan": true');
});

const longest = () => cases.reduce((a, b) => (a.num_tokens >= b.num_tokens ? a : b)).sequence;

test('a cancelled call ends its work: nothing queued or running, its result memory released', async () => {
  const model = server.runtime.model!;
  const controller = new AbortController();
  // One long sequence's PLL: hundreds of masked passes, seconds of work.
  const outcome = client.unary('Pll', { sequences: [longest()] }, { signal: controller.signal }).then(
    () => assert.fail('the call succeeded'),
    (err: ServiceError) => err,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(model.resultMemory.heldBytes > 0, 'the call was admitted');
  controller.abort();
  assert.equal((await outcome).code, status.CANCELLED);
  const until = Date.now() + 5000;
  for (;;) {
    const stats = model.scheduler.stats();
    if ((stats.queuedSequences === 0 && stats.runningBatches === 0 && model.resultMemory.heldBytes === 0) || Date.now() > until) {
      assert.deepEqual([stats.queuedSequences, stats.runningBatches, model.resultMemory.heldBytes], [0, 0, 0]);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});

test('the client’s deadline is the request’s where it is sooner than REQUEST_TIMEOUT_MS', async () => {
  // The measured rate says the work cannot finish within the 2 s the client gives it: refused at once,
  // or after its first part when the rate was not known yet.
  const err = await rejection(client.unary('Pll', { sequences: Array.from({ length: 8 }, longest) }, { deadlineMs: 2000 }));
  assert.equal(err.code, status.OUT_OF_RANGE, err.details);
  assert.match(err.details, /past its deadline \(REQUEST_TIMEOUT_MS = 1,\d{3} ms (for the whole request|left)\)/);
  assert.equal(err.metadata.get('esm2-error')[0], 'too_costly');
  // A deadline the work fits in is no obstacle.
  assert.equal(((await client.unary('Embed', { sequences: ['MKTV'] }, { deadlineMs: 30_000 })).results as unknown[]).length, 1);
});

test('the HTTP error table as gRPC codes, with esm2-error and retry-after-ms', () => {
  const cases: [unknown, status, string, string | undefined][] = [
    [new InputError('sequence', 'bad'), status.INVALID_ARGUMENT, 'validation_error', undefined],
    [unauthorized(), status.UNAUTHENTICATED, 'unauthorized', undefined],
    [new CostLimitError('too much'), status.OUT_OF_RANGE, 'too_costly', undefined],
    [new ResultMemoryBusyError(1, 'full'), status.RESOURCE_EXHAUSTED, 'overloaded', '1000'],
    [notReady('loading'), status.UNAVAILABLE, 'not_ready', undefined],
    [new UnavailableError('gone'), status.UNAVAILABLE, 'no_replica', '60000'],
    [new SchedulerTimeoutError(100), status.DEADLINE_EXCEEDED, 'timeout', undefined],
    [new Error('boom'), status.INTERNAL, 'internal_error', undefined],
  ];
  for (const [err, code, name, retry] of cases) {
    const g = toGrpcError(err);
    assert.equal(g.code, code, name);
    assert.equal(g.details, toApiError(err).message);
    assert.equal(g.metadata!.get('esm2-error')[0], name);
    assert.equal(g.metadata!.get('retry-after-ms')[0], retry, name);
  }
});

test('closing the server drains gRPC as HTTP: a call in flight finishes, a new one is refused', async () => {
  const other = await startTestServer({ GRPC_PORT: '0' });
  const c = grpcClient(`127.0.0.1:${other.grpcPort}`, { deadlineMs: 60_000 });
  try {
    const inflight = c.unary('Pll', { sequences: [longest()] });
    const until = Date.now() + 10_000;
    while (other.runtime.model!.resultMemory.heldBytes === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 5));
    const closing = other.close();
    const late = await rejection(c.unary('Embed', { sequences: ['MKV'] }, { deadlineMs: 5000 }));
    assert.equal(late.code, status.UNAVAILABLE, late.details);
    assert.equal(((await inflight).results as unknown[]).length, 1);
    await closing;
  } finally {
    c.close();
  }
});

/** The first Python 3 that imports grpc: `python3` on PATH, else Debian's own (a pyenv shim may hide it). */
const python = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore' }).status === 0);

test('a Python client (grpcio) gets SERVING and the same embedding', { skip: python ? false : "python3 cannot `import grpc` (apt-get install python3-grpcio python3-protobuf)" }, async () => {
  const c = cases[0];
  const script = join(repoRoot, 'test/fixtures/grpc/python_client.py');
  const { stdout } = await promisify(execFile)(python!, [script, address, KEY, c.sequence], { timeout: 30_000 });
  const out = JSON.parse(stdout) as { health: string; model: string; length: number; mean: number[] };
  const node = await client.unary('Embed', { sequences: [c.sequence] });
  assert.equal(out.health, 'SERVING');
  assert.equal(out.model, node.model);
  assert.equal(out.length, c.num_tokens - 2);
  assert.deepEqual(out.mean, Array.from(tensorFloats(((node.results as GrpcMessage[])[0].representations as Record<string, Record<string, unknown>>)['2'].mean)));
});
