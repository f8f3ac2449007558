// POST /v1/embed against fair-esm's outputs, as JSON and as a safetensors body, alone and under
// 50 concurrent requests (batched with each other by the scheduler).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SafetensorsFile } from '../src/model/safetensors.js';
import { flat, checkRelative as check, goldenCases, goldenTensor, type GoldenCase } from './helpers/golden.js';
import { startTestServer, postJson, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp-dir.js';

const INCLUDE = ['mean', 'per_residue', 'logits', 'contacts'];
let server: TestServer;
let cases: GoldenCase[];

before(async () => {
  server = await startTestServer({ BATCH_QUEUE_MAX_WAIT_MS: '20' });
  cases = await goldenCases();
});
after(() => server.close());

/** fair-esm's quantity for a case, cut to residue rows where the API returns residue rows. */
async function expected(c: GoldenCase, quantity: 'mean' | 'per_residue/2' | 'per_residue/1' | 'logits' | 'contacts'): Promise<Float32Array> {
  const L = c.num_tokens - 2;
  const residueRows = (data: Float32Array, width: number) => data.subarray(width, (L + 1) * width);
  switch (quantity) {
    case 'mean': return goldenTensor(c.id, 'mean');
    case 'per_residue/2': return residueRows(await goldenTensor(c.id, 'last_hidden'), 32);
    case 'per_residue/1': return residueRows(await goldenTensor(c.id, 'repr_layer1'), 32);
    case 'logits': return residueRows(await goldenTensor(c.id, 'logits'), 33);
    case 'contacts': return goldenTensor(c.id, 'contacts');
  }
}


async function checkJson(c: GoldenCase, result: Record<string, unknown>) {
  const reps = result.representations as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(reps).sort(), ['1', '2']);
  check(`${c.id} mean`, flat(reps['2'].mean), await expected(c, 'mean'));
  check(`${c.id} per_residue/2`, flat(reps['2'].per_residue), await expected(c, 'per_residue/2'));
  check(`${c.id} per_residue/1`, flat(reps['1'].per_residue), await expected(c, 'per_residue/1'));
  check(`${c.id} logits`, flat(result.logits), await expected(c, 'logits'));
  check(`${c.id} contacts`, flat(result.contacts), await expected(c, 'contacts'));
  const L = c.num_tokens - 2;
  assert.equal((result.logits as unknown[]).length, L);
  assert.equal((result.contacts as unknown[]).length, L);
}

test('JSON: every case alone matches fair-esm', async () => {
  for (const c of cases) {
    const { status, json } = await postJson(`${server.url}/v1/embed`, { sequences: [c.sequence], include: INCLUDE, repr_layers: [1, -1] });
    assert.equal(status, 200);
    const [result] = json.results as Record<string, unknown>[];
    assert.equal(result.length, c.num_tokens - 2);
    await checkJson(c, result);
  }
});

test('JSON: all cases in one request and 50 concurrent requests match fair-esm', async () => {
  const { json } = await postJson(`${server.url}/v1/embed`, { sequences: cases.map((c) => c.sequence), include: INCLUDE, repr_layers: [1, 2] });
  for (const [i, result] of (json.results as Record<string, unknown>[]).entries()) await checkJson(cases[i], result);

  const responses = await Promise.all(
    Array.from({ length: 50 }, (_, i) => postJson(`${server.url}/v1/embed`, { sequences: [cases[i % cases.length].sequence], include: INCLUDE, repr_layers: [1, -1] })),
  );
  for (const [i, r] of responses.entries()) {
    assert.equal(r.status, 200);
    await checkJson(cases[i % cases.length], (r.json.results as Record<string, unknown>[])[0]);
  }
});

test('safetensors body: the same tensors, named <index>/<quantity>', async (t) => {
  const dir = await tempDir(t);
  const res = await fetch(`${server.url}/v1/embed`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/octet-stream' },
    body: JSON.stringify({ sequences: cases.map((c) => c.sequence), include: INCLUDE, repr_layers: [1, -1] }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  const path = join(dir, 'body.safetensors');
  await writeFile(path, Buffer.from(await res.arrayBuffer()));
  const file = await SafetensorsFile.open(path);
  t.after(() => file.close());
  assert.equal(file.tensors.size, cases.length * 6); // mean ×2 layers, per_residue ×2, logits, contacts
  for (const [i, c] of cases.entries()) {
    check(`${c.id} mean`, await file.readFloat32(`${i}/mean/2`), await expected(c, 'mean'));
    check(`${c.id} per_residue/2`, await file.readFloat32(`${i}/per_residue/2`), await expected(c, 'per_residue/2'));
    check(`${c.id} per_residue/1`, await file.readFloat32(`${i}/per_residue/1`), await expected(c, 'per_residue/1'));
    check(`${c.id} logits`, await file.readFloat32(`${i}/logits`), await expected(c, 'logits'));
    check(`${c.id} contacts`, await file.readFloat32(`${i}/contacts`), await expected(c, 'contacts'));
    const L = c.num_tokens - 2;
    assert.deepEqual(file.tensors.get(`${i}/per_residue/1`)!.shape, [L, 32]);
  }
});

test('bad include or layer → 422 naming the field', async () => {
  const layer = await postJson(`${server.url}/v1/embed`, { sequences: ['MK'], repr_layers: [3] });
  assert.equal(layer.status, 422);
  assert.match(String(layer.json.detail), /^repr_layers: layer 3 is out of range/);
  const include = await postJson(`${server.url}/v1/embed`, { sequences: ['MK'], include: ['attention'] });
  assert.equal(include.status, 422);
  assert.match(String(include.json.detail), /include/);
});
