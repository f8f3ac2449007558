// Promise 7, graceful lifecycle, on the real command line in its own process. A drain that
// finishes in time exits 0 (server-shutdown.test.ts). Here: a drain that cannot finish within
// SHUTDOWN_TIMEOUT_MS answers what is still waiting 503 and exits with code 1 right after the
// timeout, and a second SIGTERM (after SAME_SIGNAL_WINDOW_MS) exits at once with 143; either way readiness
// turned 503 at the first signal and no replica process outlives the server.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { SAME_SIGNAL_WINDOW_MS } from '../src/server/signals.js';
import { alive, exitWithin, probe, sleep, startCliServer, type CliServer } from './helpers/cli-server.js';

/** Replica processes are killed before the exit; the kernel may take a moment to show it. */
async function gone(pid: number): Promise<boolean> {
  for (const deadline = Date.now() + 1000; Date.now() < deadline; await sleep(20)) if (!(await alive(pid))) return true;
  return false;
}

const T = { timeout: 60_000 };

/** A server whose one accepted request waits 30 s in the queue for company: a drain cannot finish soon. */
async function stuckServer(t: TestContext, shutdownTimeoutMs: number): Promise<{ s: CliServer; answer: Promise<string>; replicas: number[] }> {
  const s = await startCliServer(t, { BATCH_QUEUE_MAX_WAIT_MS: '30000', BATCH_QUEUE_WAIT_WHEN_IDLE: 'true', SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs), LOG_LEVEL: 'info' });
  const replicas = await s.children();
  assert.equal(replicas.length, 1, 'one replica process');
  const answer = fetch(`${s.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sequence: 'MKTAYIAKQR' }) }).then(
    async (res) => `${res.status} ${((await res.json()) as { error: string }).error}`,
    (err: Error) => `${err.name}: ${String((err as { cause?: unknown }).cause ?? err.message)}`,
  );
  for (const deadline = Date.now() + 5000; ; await sleep(10)) {
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    if (/^esm2_queue_depth_sequences 1$/m.test(metrics)) break;
    assert.ok(Date.now() < deadline, 'the request is queued');
  }
  return { s, answer, replicas };
}

async function readinessTurns(s: CliServer): Promise<number | 'refused'> {
  const since = Date.now();
  let ready: number | 'refused';
  do ready = await probe(`${s.url}/ready`);
  while (ready === 200 && Date.now() - since < 300);
  return ready;
}

test('SIGTERM with work that cannot finish within SHUTDOWN_TIMEOUT_MS: readiness 503 at once, the waiting request answered 503, exit code 1 just after the timeout, no replica left', T, async (t) => {
  const TIMEOUT = 1500;
  const { s, answer, replicas } = await stuckServer(t, TIMEOUT);
  const signalledAt = Date.now();
  s.child.kill('SIGTERM');
  const ready = await readinessTurns(s);
  assert.ok(ready === 503 || ready === 'refused', `/ready after SIGTERM: ${ready}`);
  const [code, signal] = await exitWithin(s, TIMEOUT + 5000);
  const after = Date.now() - signalledAt;
  assert.deepEqual([code, signal], [1, null], s.output());
  assert.ok(after >= TIMEOUT - 50 && after < TIMEOUT + 1500, `exited ${after} ms after SIGTERM (SHUTDOWN_TIMEOUT_MS=${TIMEOUT})`);
  assert.match(s.output(), /drain not finished after SHUTDOWN_TIMEOUT_MS=1500: exiting anyway/);
  const answered = await answer;
  assert.equal(answered, '503 shutting_down', 'the request still waiting is told why');
  for (const pid of replicas) assert.ok(await gone(pid), `replica ${pid} is gone`);
  t.diagnostic(`exit 1 after ${after} ms; the queued request saw: ${answered}`);
});

test('a second SIGTERM exits at once with code 143, no replica left', T, async (t) => {
  const { s, answer, replicas } = await stuckServer(t, 30_000);
  s.child.kill('SIGTERM');
  const ready = await readinessTurns(s);
  assert.ok(ready === 503 || ready === 'refused', `/ready after SIGTERM: ${ready}`);
  // Past the window in which a repeat is the same signal (npm's forwarded copy, server-signals.test.ts).
  await sleep(SAME_SIGNAL_WINDOW_MS + 200);
  assert.equal(s.child.exitCode, null, 'still draining after the first signal');
  const secondAt = Date.now();
  s.child.kill('SIGTERM');
  const [code, signal] = await exitWithin(s, 3000);
  const after = Date.now() - secondAt;
  assert.deepEqual([code, signal], [143, null], s.output());
  assert.ok(after < 1000, `exited ${after} ms after the second SIGTERM`);
  assert.match(s.output(), /second signal: exiting without waiting for accepted work/);
  assert.match(await answer, /other side closed|socket|terminated/i, 'the connection is simply closed');
  for (const pid of replicas) assert.ok(await gone(pid), `replica ${pid} is gone`);
  t.diagnostic(`exit 143 ${after} ms after the second SIGTERM`);
});
