// Promise 7, graceful lifecycle, on the real command line in its own process. A drain that
// finishes in time exits 0 (server-shutdown.test.ts). Here: a drain that cannot finish within
// SHUTDOWN_TIMEOUT_MS answers what is still waiting 503 and exits with code 1 right after the
// timeout, and a second SIGTERM (after SAME_SIGNAL_WINDOW_MS) exits at once with 143; either way readiness
// turned 503 at the first signal and no replica process outlives the server.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { SAME_SIGNAL_WINDOW_MS } from '../src/server/signals.js';
import { alive, exitWithin, probe, sleep, startCliServer, type CliServer } from './helpers/cli-server.js';
import { until } from './helpers/hold.js';

/** Replica processes are killed before the exit; the kernel may take a moment to show it (the bound only turns a hang into a failure). */
async function gone(pid: number): Promise<boolean> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(20)) if (!(await alive(pid))) return true;
  return false;
}

/** The queued request's batch waits this long for company: far longer than any of these tests runs, so the drain can only end by its timeout or a second signal. */
const HOLD_MS = 600_000;

const T = { timeout: 60_000 };

/** A server whose one accepted request waits HOLD_MS in the queue for company: the drain cannot finish by itself. */
async function stuckServer(t: TestContext, shutdownTimeoutMs: number): Promise<{ s: CliServer; answer: Promise<string>; replicas: number[] }> {
  const s = await startCliServer(t, { BATCH_QUEUE_MAX_WAIT_MS: String(HOLD_MS), BATCH_QUEUE_WAIT_WHEN_IDLE: 'true', SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs), LOG_LEVEL: 'info' });
  const replicas = await s.children();
  assert.equal(replicas.length, 1, 'one replica process');
  const answer = fetch(`${s.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sequence: 'MKTAYIAKQR' }) }).then(
    async (res) => `${res.status} ${((await res.json()) as { error: string }).error}`,
    (err: Error) => `${err.name}: ${String((err as { cause?: unknown }).cause ?? err.message)}`,
  );
  await until('the request to be queued', async () => /^esm2_queue_depth_sequences 1$/m.test(await (await fetch(`${s.url}/metrics`)).text()));
  return { s, answer, replicas };
}

/** /ready once it has turned after the signal (the child handles it on its event loop); the request stays queued meanwhile. */
async function readinessTurns(s: CliServer): Promise<number | 'refused'> {
  return until('/ready to turn after SIGTERM', async () => {
    const status = await probe(`${s.url}/ready`);
    return status !== 200 && status;
  });
}

test('SIGTERM with work that cannot finish within SHUTDOWN_TIMEOUT_MS: readiness 503 at once, the waiting request answered 503, exit code 1 just after the timeout, no replica left', T, async (t) => {
  const TIMEOUT = 1500;
  const { s, answer, replicas } = await stuckServer(t, TIMEOUT);
  const signalledAt = Date.now();
  s.child.kill('SIGTERM');
  const ready = await readinessTurns(s);
  assert.ok(ready === 503 || ready === 'refused', `/ready after SIGTERM: ${ready}`);
  // Nothing but the drain's timeout can end it (the request would wait HOLD_MS): exit 1, not before
  // the timeout. The bound only turns a hang into a failure.
  const [code, signal] = await exitWithin(s, TIMEOUT + 30_000);
  const after = Date.now() - signalledAt;
  assert.deepEqual([code, signal], [1, null], s.output());
  assert.ok(after >= TIMEOUT - 50, `exited ${after} ms after SIGTERM, not before SHUTDOWN_TIMEOUT_MS=${TIMEOUT}`);
  assert.match(s.output(), /drain not finished after SHUTDOWN_TIMEOUT_MS=1500: exiting anyway/);
  const answered = await answer;
  assert.equal(answered, '503 shutting_down', 'the request still waiting is told why');
  for (const pid of replicas) assert.ok(await gone(pid), `replica ${pid} is gone`);
  t.diagnostic(`exit 1 after ${after} ms; the queued request saw: ${answered}`);
});

test('a second SIGTERM exits at once with code 143, no replica left', T, async (t) => {
  const { s, answer, replicas } = await stuckServer(t, HOLD_MS);
  s.child.kill('SIGTERM');
  const ready = await readinessTurns(s);
  assert.ok(ready === 503 || ready === 'refused', `/ready after SIGTERM: ${ready}`);
  // Past the window in which a repeat is the same signal (npm's forwarded copy, server-signals.test.ts).
  await sleep(SAME_SIGNAL_WINDOW_MS + 200);
  assert.equal(s.child.exitCode, null, 'still draining after the first signal');
  const secondAt = Date.now();
  s.child.kill('SIGTERM');
  // Neither the drain nor its timeout (both HOLD_MS away) can end it: only the second signal. The
  // bound only turns a hang into a failure.
  const [code, signal] = await exitWithin(s, 30_000);
  const after = Date.now() - secondAt;
  assert.deepEqual([code, signal], [143, null], s.output());
  assert.match(s.output(), /second signal: exiting without waiting for accepted work/);
  assert.match(await answer, /other side closed|socket|terminated/i, 'the connection is simply closed');
  for (const pid of replicas) assert.ok(await gone(pid), `replica ${pid} is gone`);
  t.diagnostic(`exit 143 ${after} ms after the second SIGTERM`);
});
