// SIGTERM under load, on the real command line (`node bin/esm2.js serve`) in its own process:
// requests already accepted complete with 200, readiness and new requests are refused while they
// wait (held by a paused replica, so "while they wait" holds on any machine), and the process
// exits 0 once the accepted work is done.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exitWithin, probe, startCliServer } from './helpers/cli-server.js';
import { pauseProcess, until } from './helpers/hold.js';

function queuedSequences(metrics: string): number {
  const m = /^esm2_queue_depth_sequences\s+(\S+)/m.exec(metrics);
  return m ? Number(m[1]) : NaN;
}

test('SIGTERM under load: accepted requests complete, new ones are refused, exit code 0', { timeout: 60_000 }, async (t) => {
  const server = await startCliServer(t, {
    // One sequence per batch and the replica paused (below): the first request's batch is taken
    // and held, the other 19 wait in the queue, and nothing completes until the test resumes it.
    BATCH_QUEUE_MAX_SIZE: '1',
    // The drain finishes once the replica is resumed, well within it: exit 0. Past it: server-lifecycle.test.ts.
    SHUTDOWN_TIMEOUT_MS: '60000',
  });
  const { url, child } = server;
  const output = () => server.output();
  const replicas = await server.children();
  assert.equal(replicas.length, 1, 'one replica process');
  const resume = pauseProcess(t, replicas[0]);

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
  // All accepted: one held by the paused replica, the others queued behind it.
  await until(`${N - 1} requests queued behind the held one`, async () => queuedSequences(await (await fetch(`${url}/metrics`)).text()) === N - 1);

  const signalledAt = Date.now();
  child.kill('SIGTERM');
  // The child handles the signal on its event loop; readiness must turn while the accepted work
  // is still waiting — which it is until the replica is resumed.
  const ready = await until('/ready to turn after SIGTERM', async () => {
    const status = await probe(`${url}/ready`);
    return status !== 200 && status;
  });
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
  assert.equal(completed, 0, 'readiness turned and new work was refused while the accepted work was still waiting');
  assert.equal(child.exitCode, null, 'still draining');

  resume();
  const results = await Promise.all(requests);
  const failed = results.find((r) => r.status !== 200);
  assert.deepEqual(results.map((r) => r.status), new Array<number>(N).fill(200), `every accepted request completes (first failure: ${JSON.stringify(failed?.body)})`);
  for (const r of results) assert.equal((r.body.embedding as number[]).length, 32);

  // Exits on its own once the drain is done (the bound only turns a hang into a failure).
  const [code, signal] = await exitWithin(server, 30_000);
  const exitedAfter = Date.now() - signalledAt;
  assert.equal(signal, null, `killed by ${signal}:\n${output()}`);
  assert.equal(code, 0, `exit code:\n${output()}`);
  t.diagnostic(`probes answered ${ready}/${fresh} within ${probedWithin} ms; exited ${exitedAfter} ms after SIGTERM`);
});
