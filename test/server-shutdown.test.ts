// SIGTERM under load, on the real command line (`node bin/esm2.js serve`) in its own process:
// requests already accepted complete with 200, readiness and new requests are refused at once,
// and the process exits 0 once the accepted work is done.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probe, sleep, startCliServer } from './helpers/cli-server.js';


function queuedSequences(metrics: string): number {
  const m = /^esm2_queue_depth_sequences\s+(\S+)/m.exec(metrics);
  return m ? Number(m[1]) : NaN;
}

test('SIGTERM under load: accepted requests complete, new ones are refused, exit code 0', { timeout: 60_000 }, async (t) => {
  const WAIT = 800;
  const server = await startCliServer(t, {
    BATCH_QUEUE_MAX_WAIT_MS: String(WAIT),
    BATCH_QUEUE_WAIT_WHEN_IDLE: 'true', // hold the 20 requests in the queue
    // The drain (≈ WAIT) finishes well within it: exit 0. Past it: server-lifecycle.test.ts.
    SHUTDOWN_TIMEOUT_MS: '10000',
  });
  const { url, child, exited } = server;
  const output = () => server.output();

  const N = 20;
  let completed = 0;
  const requests = Array.from({ length: N }, (_, i) =>
    fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sequence: 'MKTAYIAKQRQISFVKSHFSRQ'.slice(0, 8 + (i % 14)) }),
    }).then(async (res) => {
      const reply = { status: res.status, body: (await res.json()) as Record<string, unknown> };
      completed += 1;
      return reply;
    }),
  );
  // Wait until all of them are queued (they wait WAIT ms for company before running).
  const queuedSince = Date.now();
  let queued = 0;
  while (queued < N) {
    assert.ok(Date.now() - queuedSince < WAIT / 2, `only ${queued} of ${N} requests queued in time`);
    queued = queuedSequences(await (await fetch(`${url}/metrics`)).text());
    if (queued < N) await sleep(5);
  }

  const signalledAt = Date.now();
  child.kill('SIGTERM');
  // The child handles the signal on its event loop, which may answer a request that raced it: poll
  // briefly, but readiness must turn while the accepted work is still queued.
  let ready: number | 'refused';
  do ready = await probe(`${url}/ready`);
  while (ready === 200 && Date.now() - signalledAt < 200);
  const completedWhenTurned = completed;
  const fresh = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sequence: 'MKTAYIAK' }),
  }).then(
    (res) => res.status,
    () => 'refused' as const,
  );
  const probedWithin = Date.now() - signalledAt;
  assert.ok([503, 'refused'].includes(ready), `/ready after SIGTERM: ${ready}`);
  assert.ok([503, 'refused'].includes(fresh), `a new /predict after SIGTERM: ${fresh}`);
  assert.equal(completedWhenTurned, 0, 'readiness turned while the accepted work was still queued');
  assert.ok(probedWithin < WAIT, `probed while the accepted work was still queued (${probedWithin} ms after the signal)`);

  const results = await Promise.all(requests);
  const failed = results.find((r) => r.status !== 200);
  assert.deepEqual(results.map((r) => r.status), new Array<number>(N).fill(200), `every accepted request completes (first failure: ${JSON.stringify(failed?.body)})`);
  for (const r of results) assert.equal((r.body.embedding as number[]).length, 32);

  let watchdog: NodeJS.Timeout | undefined;
  const [code, signal] = await Promise.race([
    exited,
    new Promise<never>((_, reject) => {
      watchdog = setTimeout(() => reject(new Error(`still running 10 s after SIGTERM:\n${output()}`)), 10_000);
    }),
  ]).finally(() => clearTimeout(watchdog));
  const exitedAfter = Date.now() - signalledAt;
  assert.equal(signal, null, `killed by ${signal}:\n${output()}`);
  assert.equal(code, 0, `exit code:\n${output()}`);
  assert.ok(exitedAfter < 5000, `exited ${exitedAfter} ms after SIGTERM`);
  t.diagnostic(`probes answered ${ready}/${fresh} within ${probedWithin} ms; exited ${exitedAfter} ms after SIGTERM`);
});
