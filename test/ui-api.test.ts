// What the web page needs from the server, without a browser: /ui and its modules served without
// the API key (and nothing else opened), / still JSON, the scan's progress stream, /v1/pll's
// per-position values, and maskedLogProbs' progress callback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ESM2_VOCAB, Tokenizer } from '../src/model/tokenizer.js';
import { maskedLogProbs, MaskedLogProbCache } from '../src/tasks/masked-marginals.js';
import type { Infer } from '../src/tasks/inference.js';
import { goldenCases, type GoldenCase } from './helpers/golden.js';
import { holdBatches, until } from './helpers/hold.js';
import { metricSum, scrape } from './helpers/load.js';
import { postJson, startTestServer, type TestServer } from './helpers/server.js';

const KEY = 'ui-api-test-key';
const auth = { authorization: `Bearer ${KEY}` };
let server: TestServer;
let cases: GoldenCase[];
before(async () => {
  server = await startTestServer({ API_KEY: KEY, BATCH_QUEUE_MAX_WAIT_MS: '2' });
  cases = await goldenCases();
});
after(() => server.close());
const sequenceOf = (id: string) => cases.find((c) => c.id === id)!.sequence;

/** The events of a server-sent-event body, in order. */
function parseEvents(text: string): { event: string; data: unknown }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() && !block.startsWith(':'))
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))!.slice(7);
      return { event, data: JSON.parse(lines.find((l) => l.startsWith('data: '))!.slice(6)) as unknown };
    });
}

async function stream(body: unknown): Promise<{ status: number; type: string | null; events: { event: string; data: unknown }[]; text: string }> {
  const res = await fetch(`${server.url}/v1/score/stream`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), text, events: res.status === 200 ? parseEvents(text) : [] };
}

test('/ keeps answering JSON for existing clients', async () => {
  const res = await fetch(`${server.url}/`, { headers: auth });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(((await res.json()) as { service: string }).service, 'esm2-serve');
});

test('the page, its stylesheet and every module it imports are served without the key; the API still needs it', async () => {
  const page = await fetch(`${server.url}/ui`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  const html = await page.text();
  assert.doesNotMatch(html, /https?:\/\//, 'no external resource');
  const css = await fetch(`${server.url}/ui/style.css`);
  assert.equal(css.status, 200);
  assert.match(css.headers.get('content-type') ?? '', /text\/css/);

  // Walk the module graph from app.js: every relative import resolves; nothing is loaded from elsewhere.
  const seen = new Set<string>();
  const queue = [new URL('/ui/js/app.js', server.url).href];
  while (queue.length) {
    const url = queue.shift()!;
    if (seen.has(url)) continue;
    seen.add(url);
    const res = await fetch(url);
    assert.equal(res.status, 200, url);
    assert.match(res.headers.get('content-type') ?? '', /text\/javascript/);
    for (const [, spec] of (await res.text()).matchAll(/(?:import|from)\s*['"]([^'"]+)['"]/g)) {
      assert.match(spec, /^\.\.?\//, `${url} imports ${spec}: only relative modules of this server`);
      queue.push(new URL(spec, url).href);
    }
  }
  assert.ok(seen.size >= 10, `the page has its modules (${seen.size})`);

  assert.equal((await fetch(`${server.url}/ui/js/nope.js`)).status, 404);
  assert.equal((await fetch(`${server.url}/ui/js/..%2F..%2Froutes%2Fui.js`)).status, 404);
  assert.equal((await fetch(`${server.url}/ui/`, { redirect: 'manual' })).status, 302);
  assert.equal((await fetch(`${server.url}/v1/models`)).status, 401);
  assert.equal((await postJson(`${server.url}/v1/score/stream`, { sequence: 'MKTV' })).status, 401);
});

test('the scan stream reports progress up to L of L, then the same matrix as /v1/score', async () => {
  const sequence = sequenceOf('lysozyme_frag');
  const L = sequence.length;
  const { status, type, events } = await stream({ sequence });
  assert.equal(status, 200);
  assert.match(type ?? '', /text\/event-stream/);
  const progress = events.filter((e) => e.event === 'progress').map((e) => e.data as { done: number; total: number });
  assert.deepEqual(progress[0], { done: 0, total: L });
  assert.deepEqual(progress.at(-1), { done: L, total: L });
  assert.ok(progress.length > 2, `progress in steps (${progress.length} events)`);
  progress.slice(1).forEach((p, k) => assert.ok(p.done > progress[k].done, 'progress only grows'));
  assert.equal(events.at(-1)!.event, 'result');
  const result = events.at(-1)!.data as { model: string; method: string; amino_acids: string[]; matrix: number[][] };
  const direct = await postJson(`${server.url}/v1/score`, { sequence, scan: true }, auth);
  assert.equal(direct.status, 200);
  assert.deepEqual(result, direct.json);

  // A second scan of the same protein is served from the cache: done at once.
  const again = await stream({ sequence });
  assert.deepEqual(again.events.filter((e) => e.event === 'progress').map((e) => e.data), [{ done: L, total: L }]);
});

test('the scan stream: wt_marginal is one pass; an invalid sequence is refused before the stream starts', async () => {
  const wt = await stream({ sequence: 'MKTVRQERLK', method: 'wt_marginal' });
  assert.deepEqual(wt.events.map((e) => e.event), ['progress', 'progress', 'result']);
  assert.deepEqual(wt.events.slice(0, 2).map((e) => e.data), [{ done: 0, total: 1 }, { done: 1, total: 1 }]);

  const bad = await stream({ sequence: 'MKTJVR' });
  assert.equal(bad.status, 422);
  assert.match(JSON.parse(bad.text).detail, /invalid character 'J' at position 4/);
});

test('a client that leaves mid-scan costs the server nothing lasting: the next scan runs from scratch', async () => {
  const sequence = sequenceOf('long_random');
  const cancelled = async () => metricSum(await scrape(server.url), 'esm2_requests_cancelled_total', { route: '/v1/score/stream' });
  const cancelledBefore = await cancelled();
  // The scan's masked passes are held until the server has seen the client leave: none of them
  // can complete first, however fast the replica is.
  const hold = holdBatches(server);
  const controller = new AbortController();
  const res = await fetch(`${server.url}/v1/score/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ sequence }),
    signal: controller.signal,
  });
  const reader = res.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  assert.match(first, /^event: progress\ndata: \{"done":0,"total":300\}/);
  await until('the scan to reach the replicas', () => hold.batches > 0);
  controller.abort();
  // Counted on the connection's close, where the scan's signal is aborted too.
  await until('the server to see the client leave', async () => (await cancelled()) > cancelledBefore);
  hold.release();
  const scheduler = server.runtime.model!.scheduler;
  await until('the abandoned scan to leave the scheduler', () => scheduler.stats().queuedSequences === 0 && scheduler.stats().runningBatches === 0);
  const again = await stream({ sequence });
  const progress = again.events.filter((e) => e.event === 'progress').map((e) => e.data as { done: number });
  assert.equal(again.events.at(-1)!.event, 'result');
  assert.ok(progress[0].done < 300, 'the abandoned scan was not cached as complete');
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});

test('/v1/pll per_position: log p of each true residue, summing to the PLL; absent unless asked', async () => {
  const sequences = [sequenceOf('seed_example'), sequenceOf('his_tag')];
  const { status, json } = await postJson(`${server.url}/v1/pll`, { sequences, per_position: true }, auth);
  assert.equal(status, 200);
  const results = json.results as { length: number; pseudo_log_likelihood: number; per_position: number[] }[];
  results.forEach((r, i) => {
    assert.equal(r.per_position.length, sequences[i].length);
    assert.ok(r.per_position.every((v) => v < 0));
    const sum = r.per_position.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - r.pseudo_log_likelihood) < 1e-6, `${sum} vs ${r.pseudo_log_likelihood}`);
  });
  const plain = await postJson(`${server.url}/v1/pll`, { sequences }, auth);
  const plainResults = plain.json.results as Record<string, unknown>[];
  assert.equal(plainResults[0].per_position, undefined);
  assert.equal(plainResults[0].pseudo_log_likelihood, results[0].pseudo_log_likelihood);
});

test('maskedLogProbs reports progress from the rows already cached to all of them, without changing the matrix', async () => {
  const tokenizer = new Tokenizer(ESM2_VOCAB);
  const tokens = tokenizer.encode('MKTVRQERLKSIVRILERSKEPVSGAQLKVFGRCELAAAMKRHGLDNYRGYSLGNWVCAAKFESNFNTQATNRNTDGSTDYG');
  const V = ESM2_VOCAB.length;
  let calls = 0;
  // Logits that depend on the masked position, so a misplaced row would show.
  const infer: Infer = async (rows) => {
    calls++;
    return rows.map((row) => {
      const masked = row.indexOf(tokenizer.maskId);
      return { logits: Float32Array.from({ length: row.length * V }, (_, k) => Math.sin(k * 0.37 + masked)) };
    });
  };
  const plain = await maskedLogProbs(infer, tokenizer, tokens);
  const plainCalls = calls;
  const seen: [number, number][] = [];
  const cache = { store: new MaskedLogProbCache(), model: 'm' };
  await maskedLogProbs(infer, tokenizer, tokens, { positions: [1, 2, 3], cache });
  const withProgress = await maskedLogProbs(infer, tokenizer, tokens, { cache, onProgress: (done, total) => seen.push([done, total]) });
  const L = tokens.length - 2;
  assert.deepEqual(withProgress, plain);
  assert.deepEqual(seen[0], [3, L]);
  assert.deepEqual(seen.at(-1), [L, L]);
  assert.ok(seen.length > 10, `${seen.length} progress reports`);
  assert.ok(calls - plainCalls > plainCalls, 'more, smaller calls when progress is wanted');
  seen.slice(1).forEach(([done], k) => assert.ok(done > seen[k][0]));
  seen.length = 0;
  await maskedLogProbs(infer, tokenizer, tokens, { cache, onProgress: (done, total) => seen.push([done, total]) });
  assert.deepEqual(seen, [[L, L]], 'all cached: done at once');
});
