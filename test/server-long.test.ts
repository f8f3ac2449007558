// Sequences longer than MAX_SEQUENCE_LENGTH: error (default), truncate, window.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SafetensorsFile } from '../src/model/safetensors.js';
import { STANDARD_AMINO_ACIDS } from '../src/model/tokenizer.js';
import { startTestServer, postJson, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp-dir.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ BATCH_QUEUE_MAX_WAIT_MS: '2' });
});
after(() => server.close());

const protein = (n: number) => Array.from({ length: n }, (_, i) => STANDARD_AMINO_ACIDS[(i * 7 + (i >> 3)) % 20]).join('');

async function embedSafetensors(t: Parameters<typeof tempDir>[0], body: unknown): Promise<SafetensorsFile> {
  const res = await fetch(`${server.url}/v1/embed`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/octet-stream' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.clone().text());
  const path = join(await tempDir(t), 'out.safetensors');
  await writeFile(path, Buffer.from(await res.arrayBuffer()));
  const file = await SafetensorsFile.open(path);
  t.after(() => file.close());
  return file;
}

test('over the limit with the default truncation → 422 naming the limit', async () => {
  const { status, json } = await postJson(`${server.url}/v1/embed`, { sequences: [protein(1100)] });
  assert.equal(status, 422);
  assert.match(String(json.detail), /^sequences\[0\]: sequence has 1100 residues; the maximum sequence length is 1022/);
});

test('truncate keeps the first 1022 residues and says so', async () => {
  const long = protein(1100);
  const { status, json } = await postJson(`${server.url}/v1/embed`, { sequences: [long], truncation: 'truncate' });
  assert.equal(status, 200);
  const [result] = json.results as Record<string, unknown>[];
  assert.equal(result.length, 1022);
  assert.equal(result.truncated, true);
  assert.equal(result.original_length, 1100);
  const plain = await postJson(`${server.url}/v1/embed`, { sequences: [long.slice(0, 1022)] });
  assert.deepEqual(result.representations, (plain.json.results as Record<string, unknown>[])[0].representations);
  const predict = await postJson(`${server.url}/predict`, { sequence: long, truncation: 'truncate' });
  assert.equal(predict.json.truncated, true);
  assert.equal(predict.json.sequence_length, 1022);
});

test('window mode on 2,500 residues: 2,500 per-residue rows and a 2,500 × 2,500 contact map', async (t) => {
  const file = await embedSafetensors(t, { sequences: [protein(2500)], include: ['mean', 'per_residue', 'logits', 'contacts'], truncation: 'window' });
  assert.deepEqual(file.tensors.get('0/per_residue/2')!.shape, [2500, 32]);
  assert.deepEqual(file.tensors.get('0/logits')!.shape, [2500, 33]);
  assert.deepEqual(file.tensors.get('0/contacts')!.shape, [2500, 2500]);
  const perResidue = await file.readFloat32('0/per_residue/2');
  const mean = await file.readFloat32('0/mean/2');
  for (let d = 0; d < 32; d++) {
    let sum = 0;
    for (let i = 0; i < 2500; i++) sum += perResidue[i * 32 + d];
    assert.ok(Math.abs(sum / 2500 - mean[d]) < 1e-5, 'mean over all residues of the assembled rows');
  }
  const contacts = await file.readFloat32('0/contacts');
  assert.ok(contacts[1000 * 2500 + 1001] > 0, 'pairs inside a window have probabilities');
  assert.equal(contacts[0 * 2500 + 2499], 0, 'pairs no window covers stay 0');
});

test('window mode on a sequence shorter than the window equals the plain result exactly', async (t) => {
  const body = { sequences: [protein(300)], include: ['mean', 'per_residue', 'logits', 'contacts', 'bos'], repr_layers: [1, 2] };
  const plain = await embedSafetensors(t, body);
  const windowed = await embedSafetensors(t, { ...body, truncation: 'window' });
  for (const name of plain.tensors.keys()) assert.deepEqual(await windowed.readFloat32(name), await plain.readFloat32(name), name);
});

test('/predict in window mode returns the mean over all residues', async () => {
  const { status, json } = await postJson(`${server.url}/predict`, { sequence: protein(1500), truncation: 'window' });
  assert.equal(status, 200);
  assert.equal(json.sequence_length, 1500);
  assert.equal((json.embedding as number[]).length, 32);
});
