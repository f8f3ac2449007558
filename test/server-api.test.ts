// The seed-compatible API and its errors, on a real server over a real socket (the golden checkpoint).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, postJson, type TestServer } from './helpers/server.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ BATCH_QUEUE_MAX_WAIT_MS: '5' });
});
after(() => server.close());

const SEQ = 'MKTVRQERLKSIVRILERSKEPVSGAQL';

describe('seed endpoints', () => {
  test('GET / names the service and the batch queue', async () => {
    const body = (await (await fetch(`${server.url}/`)).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['batch_queue_enabled', 'docs', 'health', 'service', 'version']);
    assert.equal(body.batch_queue_enabled, true);
  });

  test('GET /health reports healthy with the seed fields', async () => {
    const res = await fetch(`${server.url}/health`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.status, 'healthy');
    assert.equal(body.gpu_count, 0);
    assert.deepEqual(body.gpu_ids, []);
    assert.equal(body.model_loaded, true);
    assert.equal(typeof body.model_name, 'string');
    assert.equal(typeof body.message, 'string');
  });

  test('POST /predict returns the seed fields with the mean embedding and this sequence’s attention shape', async () => {
    const { status, json, headers } = await postJson(`${server.url}/predict`, { sequence: SEQ, include_attention: true });
    assert.equal(status, 200);
    assert.equal(json.sequence, SEQ);
    assert.equal(json.sequence_length, 28);
    assert.equal(json.embedding_dim, 32);
    assert.ok(Array.isArray(json.embedding) && (json.embedding as number[]).length === 32);
    assert.ok((json.embedding as number[]).every((v) => typeof v === 'number' && Number.isFinite(v)));
    assert.deepEqual(json.attention_shape, [4, 28, 28]);
    assert.equal(json.gpu_id, 0);
    assert.equal(typeof json.inference_time_ms, 'number');
    assert.equal(typeof json.model_name, 'string');
    assert.ok(Number(headers.get('x-queue-time')) >= 0);
    assert.ok(Number(headers.get('x-inference-time')) > 0);
  });

  test('include_embeddings false and no attention give nulls', async () => {
    const { json } = await postJson(`${server.url}/predict`, { sequence: SEQ, include_embeddings: false });
    assert.equal(json.embedding, null);
    assert.equal(json.attention_shape, null);
  });

  test('POST /predict/batch: 64 sequences → 200 with results in order, 65 → 422', async () => {
    const sequences = Array.from({ length: 64 }, (_, i) => SEQ.slice(0, 5 + (i % 20)));
    const ok = await postJson(`${server.url}/predict/batch`, { sequences, include_embeddings: false });
    assert.equal(ok.status, 200);
    const results = ok.json.results as Record<string, unknown>[];
    assert.equal(results.length, 64);
    results.forEach((r, i) => assert.equal(r.sequence_length, 5 + (i % 20)));
    assert.equal(ok.json.total_sequences, 64);
    assert.equal(typeof ok.json.average_time_per_sequence_ms, 'number');
    const info = ok.json.distribution_info as Record<string, unknown>;
    assert.deepEqual(info.sequences_per_gpu, { gpu_0: 64 });
    assert.equal(info.num_gpus_used, 1);
    const over = await postJson(`${server.url}/predict/batch`, { sequences: [...sequences, 'MK'] });
    assert.equal(over.status, 422);
    assert.match(String(over.json.detail), /sequences.*64/);
  });
});

describe('validation', () => {
  const predict = (sequence: unknown) => postJson(`${server.url}/predict`, { sequence });

  test('invalid characters → 422 naming the character and its 1-based position', async () => {
    const { status, json } = await predict('MKTV*RQ');
    assert.equal(status, 422);
    assert.equal(json.detail, "sequence: invalid character '*' at position 5");
    const batch = await postJson(`${server.url}/predict/batch`, { sequences: ['MKTV', 'MK1'] });
    assert.equal(batch.status, 422);
    assert.equal(batch.json.detail, "sequences[1]: invalid character '1' at position 3");
  });

  test('several bad characters → 422 naming each distinct one with its first position (Z is an amino acid code)', async () => {
    const { status, json } = await predict('MKT1VZ!Q');
    assert.equal(status, 422);
    assert.equal(json.detail, "sequence: invalid characters '1' at position 4, '!' at position 7");
    const batch = await postJson(`${server.url}/v1/embed`, { sequences: ['MKTV', 'MKTV', 'M1K*1'] });
    assert.equal(batch.status, 422);
    assert.equal(batch.json.detail, "sequences[2]: invalid characters '1' at position 2, '*' at position 4");
  });

  test('a FASTA record sent as a sequence → 422 saying so and what to send instead', async () => {
    const { status, json } = await predict('>sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMF');
    assert.equal(status, 422);
    assert.equal(
      json.detail,
      "sequence: this looks like a FASTA record (header line '>sp|P69905|HBA_HUMAN Hemoglobin subunit…'); send the residues only, without the header line (the command line reads FASTA files: esm2 embed --input records.fasta)",
    );
    const second = await postJson(`${server.url}/predict/batch`, { sequences: ['MKTV', 'MKTV\n>second record\nMKV'] });
    assert.equal(second.status, 422);
    assert.match(String(second.json.detail), /^sequences\[1\]: this looks like a FASTA record \(header line '>second record'\)/);
    // Residues split over lines are one sequence; a '>' inside a line is a bad character as any other.
    assert.equal((await predict('MKT\nVRQ\n  ERL')).status, 200);
    assert.equal((await predict('MK>V')).json.detail, "sequence: invalid character '>' at position 3");
  });

  test('lowercase and X B U Z O are accepted', async () => {
    const { status, json } = await predict('mktvXBUZO');
    assert.equal(status, 200);
    assert.equal(json.sequence_length, 9);
  });

  test('empty and whitespace-only sequences → 422', async () => {
    for (const sequence of ['', '   \n\t']) {
      const { status, json } = await predict(sequence);
      assert.equal(status, 422);
      assert.match(String(json.detail), /^sequence: must not be empty/);
    }
  });

  test('1023 residues → 422 naming the limit of 1022; 1022 is accepted', async () => {
    const tooLong = await predict('A'.repeat(1023));
    assert.equal(tooLong.status, 422);
    assert.match(String(tooLong.json.detail), /1022/);
    assert.equal((await predict('A'.repeat(1022))).status, 200);
  });

  test('wrong types and missing fields → 422 naming the field; malformed JSON → 400', async () => {
    const wrongType = await postJson(`${server.url}/predict`, { sequence: SEQ, include_embeddings: 'yes' });
    assert.equal(wrongType.status, 422);
    assert.match(String(wrongType.json.detail), /include_embeddings/);
    const missing = await postJson(`${server.url}/predict`, {});
    assert.equal(missing.status, 422);
    assert.match(String(missing.json.detail), /sequence/);
    const res = await fetch(`${server.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sequence":' });
    assert.equal(res.status, 400);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.error, 'invalid_json');
    assert.ok(!JSON.stringify(body).includes('    at '), 'no stack trace');
  });

  test('unknown routes → 404; the server keeps serving after every error', async () => {
    assert.equal((await fetch(`${server.url}/nope`)).status, 404);
    assert.equal((await predict(SEQ)).status, 200);
  });
});

describe('probes, models, metrics, docs', () => {
  test('readiness and liveness', async () => {
    for (const path of ['/ready', '/v1/health/ready', '/v1/health/live']) assert.equal((await fetch(`${server.url}${path}`)).status, 200, path);
  });

  test('GET /v1/models describes the model, devices and settings', async () => {
    const body = (await (await fetch(`${server.url}/v1/models`)).json()) as Record<string, unknown>;
    assert.equal(body.layers, 2);
    assert.equal(body.hidden_size, 32);
    assert.equal(body.attention_heads, 4);
    assert.equal((body.vocabulary as string[]).length, 33);
    assert.equal(body.max_sequence_length, 1022);
    assert.equal(body.precision, 'fp32');
    assert.equal((body.devices as unknown[]).length, 1);
    const settings = body.settings as Record<string, unknown>;
    assert.equal(settings.MAX_BATCH_SIZE, 64);
    assert.equal(settings.API_KEY, 'unset');
  });

  test('GET /metrics exposes the service metrics', async () => {
    await postJson(`${server.url}/predict`, { sequence: SEQ });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of ['esm2_requests_total', 'esm2_request_duration_seconds', 'esm2_queue_depth_sequences', 'esm2_queue_depth_tokens', 'esm2_batch_sequences', 'esm2_batch_tokens', 'esm2_batch_padding_ratio', 'esm2_inference_duration_seconds', 'esm2_residues_total', 'esm2_replica_up', 'process_cpu_seconds_total']) {
      assert.ok(text.includes(`# TYPE ${name}`), name);
    }
    assert.match(text, /esm2_requests_total\{route="\/predict",status="200"\} [1-9]/);
    // What the alerts component compares the queue depth with, and its demo-model gauge (0: the fixture serves).
    assert.match(text, new RegExp(`^esm2_queue_limit_tokens ${server.runtime.settings.maxQueuedTokens}$`, 'm'));
    assert.match(text, /^esm2_demo_model 0$/m);
  });

  test('OpenAPI spec and UI', async () => {
    const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const path of ['/predict', '/predict/batch', '/v1/embed', '/health']) assert.ok(spec.paths[path], path);
    assert.equal((await fetch(`${server.url}/docs/`)).status, 200);
  });
});

describe('limits and auth', () => {
  test('a body over BODY_LIMIT_BYTES → 413', async () => {
    const small = await startTestServer({ BODY_LIMIT_BYTES: '2048' });
    try {
      const { status } = await postJson(`${small.url}/predict`, { sequence: 'A'.repeat(3000) });
      assert.equal(status, 413);
    } finally {
      await small.close();
    }
  });

  test('with API_KEY set, inference needs the bearer token; probes and metrics do not', async () => {
    const secured = await startTestServer({ API_KEY: 's3cret' });
    try {
      assert.equal((await postJson(`${secured.url}/predict`, { sequence: SEQ })).status, 401);
      assert.equal((await postJson(`${secured.url}/predict`, { sequence: SEQ }, { authorization: 'Bearer wrong!' })).status, 401);
      assert.equal((await postJson(`${secured.url}/predict`, { sequence: SEQ }, { authorization: 'Bearer s3cret' })).status, 200);
      for (const path of ['/health', '/ready', '/v1/health/live', '/metrics']) assert.equal((await fetch(`${secured.url}${path}`)).status, 200, path);
      assert.equal((await fetch(`${secured.url}/v1/models`)).status, 401);
    } finally {
      await secured.close();
    }
  });
});
