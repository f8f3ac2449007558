// A signal to the whole process group of `npm start` (systemd's KillMode=control-group, `docker stop`
// of a shell wrapper, Ctrl-C in a terminal) reaches npm and the server; npm forwards its copy to the
// server again. That copy is the same signal (signals.ts, SAME_SIGNAL_WINDOW_MS): the server drains
// and npm exits 0. A second Ctrl-C a second later still ends it at once (130).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SAME_SIGNAL_WINDOW_MS, signalPolicy } from '../src/server/signals.js';
import { alive, childPids, exitWithin, sleep, startNpmStart, type CliServer } from './helpers/cli-server.js';

test('the same signal again within the window is the same signal; after it, or another signal, exits at once', () => {
  const run = (events: [NodeJS.Signals, number][]) => {
    const seen: string[] = [];
    let clock = 0;
    const handle = signalPolicy(
      {
        drain: (s) => seen.push(`drain ${s}`),
        repeated: (s) => seen.push(`same ${s}`),
        exitNow: (s, code) => seen.push(`exit ${s} ${code}`),
      },
      () => clock,
    );
    for (const [signal, at] of events) {
      clock = at;
      handle(signal);
    }
    return seen;
  };
  const W = SAME_SIGNAL_WINDOW_MS;
  assert.deepEqual(run([['SIGTERM', 0], ['SIGTERM', 7], ['SIGTERM', W - 1]]), ['drain SIGTERM', 'same SIGTERM', 'same SIGTERM']);
  assert.deepEqual(run([['SIGTERM', 0], ['SIGTERM', 7], ['SIGTERM', W]]), ['drain SIGTERM', 'same SIGTERM', 'exit SIGTERM 143']);
  assert.deepEqual(run([['SIGINT', 1000], ['SIGINT', 2000]]), ['drain SIGINT', 'exit SIGINT 130']);
  assert.deepEqual(run([['SIGTERM', 0], ['SIGINT', 5]]), ['drain SIGTERM', 'exit SIGINT 130']);
});

// npm runs its script with `sh -c`; Debian's sh (dash) does not exec the command, stays npm's child,
// and dies of the group's SIGTERM at once, and npm with it, whatever the server does. With `exec`
// the server is npm's child itself and npm exits with its code.
const T = { timeout: 120_000 };

/** Every process below `pid` (npm, its server, the replicas). */
async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const child of await childPids(pid)) out.push(child, ...(await descendants(child)));
  return out;
}

async function allGone(pids: number[]): Promise<boolean> {
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(20)) {
    if (!(await Promise.all(pids.map(alive))).some(Boolean)) return true;
  }
  return false;
}

/** `n` /predict requests, held in the queue (BATCH_QUEUE_WAIT_WHEN_IDLE) until all are queued. */
async function queuedRequests(s: CliServer, n: number): Promise<Promise<number | string>[]> {
  const requests = Array.from({ length: n }, (_, i) =>
    fetch(`${s.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sequence: 'MKTAYIAKQRQISFVKSHFSRQ'.slice(0, 8 + (i % 14)) }),
    }).then(
      async (res) => (await res.arrayBuffer(), res.status),
      (err: Error) => `${err.name}: ${String((err as { cause?: unknown }).cause ?? err.message)}`,
    ),
  );
  for (const deadline = Date.now() + 10_000; ; await sleep(10)) {
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    if (new RegExp(`^esm2_queue_depth_sequences ${n}$`, 'm').test(metrics)) break;
    assert.ok(Date.now() < deadline, `all ${n} requests queued:\n${s.output()}`);
  }
  return requests;
}

test('kill -TERM -<pgid> of npm start: every accepted request answered 200, npm exits 0', T, async (t) => {
  const s = await startNpmStart(t, { BATCH_QUEUE_WAIT_WHEN_IDLE: 'true', BATCH_QUEUE_MAX_WAIT_MS: '1500', SHUTDOWN_TIMEOUT_MS: '60000', LOG_LEVEL: 'info' });
  const group = [s.child.pid!, ...(await descendants(s.child.pid!))];
  const requests = await queuedRequests(s, 10);

  process.kill(-s.child.pid!, 'SIGTERM');
  const statuses = await Promise.all(requests);
  assert.deepEqual(statuses, new Array<number>(10).fill(200), `every accepted request answered:\n${s.output()}`);
  assert.deepEqual(await exitWithin(s, 30_000), [0, null], `npm start's exit:\n${s.output()}`);
  assert.doesNotMatch(s.output(), /second signal/);
  assert.doesNotMatch(s.output(), /was killed by SIG|restart/i, 'the replicas ignore the group\'s signal: none dies or restarts during the drain');
  assert.ok(await allGone(group), `no process of the group left (${group.join(', ')})`);
  t.diagnostic(/the same signal again/.test(s.output()) ? 'npm forwarded its copy of SIGTERM; treated as the same signal' : 'no second copy seen');
});

test('two Ctrl-Cs a second apart (SIGINT to the group twice): exits at once with 130', T, async (t) => {
  // The queued request waits 60 s for company: only the second Ctrl-C can end the drain soon.
  const s = await startNpmStart(t, { BATCH_QUEUE_WAIT_WHEN_IDLE: 'true', BATCH_QUEUE_MAX_WAIT_MS: '60000', SHUTDOWN_TIMEOUT_MS: '60000', LOG_LEVEL: 'info' });
  const group = [s.child.pid!, ...(await descendants(s.child.pid!))];
  const [request] = await queuedRequests(s, 1);

  process.kill(-s.child.pid!, 'SIGINT');
  await sleep(1000);
  assert.equal(s.child.exitCode, null, `still draining after the first Ctrl-C:\n${s.output()}`);
  process.kill(-s.child.pid!, 'SIGINT');
  assert.deepEqual(await exitWithin(s, 5000), [130, null], `npm start's exit:\n${s.output()}`);
  assert.match(s.output(), /second signal: exiting without waiting for accepted work/);
  assert.match(String(await request), /other side closed|socket|terminated/i, 'the queued request\'s connection is closed');
  assert.ok(await allGone(group), `no process of the group left (${group.join(', ')})`);
});
