// Old clients: a body without Content-Type is read as JSON, as the FastAPI service read it
// (`requests.post(url, data=json.dumps(body))`), and so is application/*+json; malformed JSON is
// still 400, an explicit other type still 415, and Accept: application/octet-stream still answers
// safetensors. Raw node:http requests (fetch always adds a Content-Type to a string body).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { startTestServer, postJson, type TestServer } from './helpers/server.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ BATCH_QUEUE_MAX_WAIT_MS: '5' });
});
after(() => server.close());

/** POST `body` with exactly `headers` (node adds Host, Connection and Content-Length or chunked, nothing else). */
function rawPost(path: string, body: string, headers: Record<string, string> = {}, chunked = false): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method: 'POST', headers: chunked ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (chunked) for (let i = 0; i < body.length; i += 7) req.write(body.slice(i, i + 7));
    else req.write(body);
    req.end();
  });
}

const json = (r: { body: Buffer }) => JSON.parse(r.body.toString()) as Record<string, unknown>;
/** An answer without the fields that differ from run to run (timings). */
const untimed = (body: Record<string, unknown>) => Object.fromEntries(Object.entries(body).filter(([key]) => !/time/.test(key)));

test('no Content-Type: /predict, /predict/batch and /v1/embed read the body as JSON, the same answer as with application/json', async () => {
  const cases: [string, unknown][] = [
    ['/predict', { sequence: 'MKTAYIAKQR' }],
    ['/predict/batch', { sequences: ['MKTAYIAKQR', 'MKTV'] }],
    ['/v1/embed', { sequences: ['MKTAYIAKQR'], include: ['mean'] }],
  ];
  for (const [path, body] of cases) {
    const raw = await rawPost(path, JSON.stringify(body));
    assert.equal(raw.status, 200, `${path}: ${raw.body.toString()}`);
    const typed = await postJson(`${server.url}${path}`, body);
    assert.deepEqual(untimed(json(raw)), untimed(typed.json), path);
    const chunked = await rawPost(path, JSON.stringify(body), {}, true);
    assert.equal(chunked.status, 200, `${path} chunked: ${chunked.body.toString()}`);
  }
});

test('no Content-Type and malformed JSON: 400 invalid_json; an empty body: 422 naming what is missing', async () => {
  const bad = await rawPost('/predict', '{"sequence":');
  assert.equal(bad.status, 400);
  assert.equal(json(bad).error, 'invalid_json');
  const empty = await rawPost('/predict', '');
  assert.equal(empty.status, 422, empty.body.toString());
});

test('application/*+json is JSON; an explicit other type is 415 saying what to send', async () => {
  const structured = await rawPost('/predict', JSON.stringify({ sequence: 'MKTV' }), { 'content-type': 'application/vnd.api+json; charset=utf-8' });
  assert.equal(structured.status, 200, structured.body.toString());
  const form = await rawPost('/predict', JSON.stringify({ sequence: 'MKTV' }), { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(form.status, 415);
  assert.deepEqual(json(form), { error: 'unsupported_media_type', detail: 'unsupported Content-Type: send the body as JSON, with Content-Type: application/json (or with no Content-Type)' });
});

test('no Content-Type with Accept: application/octet-stream: /v1/embed still answers safetensors', async () => {
  const res = await rawPost('/v1/embed', JSON.stringify({ sequences: ['MKTAYIAKQR'], include: ['mean'] }), { accept: 'application/octet-stream' });
  assert.equal(res.status, 200, res.body.toString());
  assert.equal(res.type, 'application/octet-stream');
  const headerLength = Number(res.body.readBigUInt64LE(0));
  assert.ok(JSON.parse(res.body.subarray(8, 8 + headerLength).toString()) !== null, 'a safetensors header');
});
