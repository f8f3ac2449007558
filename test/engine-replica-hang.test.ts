// Hang detection by heartbeat: a replica process stopped (SIGSTOP) while busy or idle is killed
// after hangTimeoutMs — its batch rejected with the retryable 'timeout' — and restarted; a run
// that blocks the child's main thread for a long while (as session.run does) is not called hung.
import assert from 'node:assert/strict';
import { processGone } from './helpers/hold.js';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { compileCheckpoint, type CompiledModel } from '../src/compile/index.js';
import type { Want } from '../src/engine/batch.js';
import { ReplicaError } from '../src/engine/errors.js';
import { BLOCK_ON_RUN_MS } from '../src/engine/protocol.js';
import { Replica, type CrashEvent, type ReplicaOptions } from '../src/engine/replica.js';
import { loadCheckpoint, type Esm2Checkpoint } from '../src/model/checkpoint.js';
import type { PoolReplicaInfo } from '../src/engine/pool.js';
import { healthVerdict } from '../src/server/health.js';
import { fixtureModelDir } from './helpers/golden.js';

const HANG_TIMEOUT_MS = 500;
const LOGITS: Want = { logits: true };

let checkpoint: Esm2Checkpoint;
let cacheDir: string;
let plain: CompiledModel;
let rows: Int32Array[];
const started: Replica[] = [];

before(async () => {
  checkpoint = await loadCheckpoint(fixtureModelDir);
  cacheDir = await mkdtemp(join(tmpdir(), 'esm2-hang-'));
  plain = await compileCheckpoint(checkpoint, { variant: 'default', precision: 'fp32', cacheDir });
  rows = ['MKTAYIAKQR', 'GSHMLE'].map((s) => checkpoint.tokenizer.encode(s));
});

after(async () => {
  for (const r of started) r.kill();
  await checkpoint.close();
  await rm(cacheDir, { recursive: true, force: true });
});

async function startReplica(options: Partial<ReplicaOptions> = {}): Promise<Replica> {
  const replica = await Replica.start({
    device: 'cpu',
    models: { default: plain.onnxPath },
    padTokenId: plain.padTokenId,
    intraOpNumThreads: 1,
    hangTimeoutMs: HANG_TIMEOUT_MS,
    restart: { baseDelayMs: 20 },
    ...options,
  });
  started.push(replica);
  return replica;
}


/** The stopped process is gone for good: a SIGCONT finds nothing, and the replica's process is another one. */
async function assertNoZombie(replica: Replica, stoppedPid: number): Promise<void> {
  assert.ok(await processGone(stoppedPid), `the stopped process ${stoppedPid} is still there`);
  assert.throws(() => process.kill(stoppedPid, 'SIGCONT'), /ESRCH/);
  assert.notEqual(replica.info().pid, stoppedPid);
}

test('a replica stopped (SIGSTOP) during a batch: the batch rejects as timeout, the process is killed, a new one serves', async () => {
  // block-on-run holds the child's main thread (as a long session.run does), so it is stopped mid-batch.
  const replica = await startReplica({ faultInjection: 'block-on-run' });
  const pid = replica.info().pid!;
  const crashed = once(replica, 'crashed') as Promise<[CrashEvent]>;
  const restarted = once(replica, 'restarted');
  const run = replica.run({ tokens: rows, want: LOGITS });
  process.kill(pid, 'SIGSTOP');
  const err = await run.then(() => assert.fail('the run should have failed'), (e: unknown) => e);
  assert.ok(err instanceof ReplicaError, String(err));
  assert.equal(err.reason, 'timeout', err.message);
  assert.match(err.message, /did not answer its heartbeat .* during a batch of 2 sequences/);
  const [event] = await crashed;
  assert.equal(event.reason, 'hung');
  await restarted;
  const info = replica.info();
  assert.equal(info.state, 'ready');
  assert.equal(info.hangs, 1);
  assert.equal(info.restarts, 1);
  assert.equal(info.lastFault?.reason, 'hung');
  assert.match(info.lastFault?.message ?? '', /heartbeat/);
  await assertNoZombie(replica, pid);
  const [result] = await replica.run({ tokens: rows, want: LOGITS });
  assert.ok(result.logits && result.logits.length > 0);
});

test('a replica stopped while idle is found hung without any batch, and restarted', async () => {
  const replica = await startReplica();
  await replica.run({ tokens: rows, want: LOGITS });
  const pid = replica.info().pid!;
  const crashed = once(replica, 'crashed') as Promise<[CrashEvent]>;
  const restarted = once(replica, 'restarted');
  process.kill(pid, 'SIGSTOP');
  assert.equal((await crashed)[0].reason, 'hung');
  await restarted;
  assert.equal(replica.info().hangs, 1);
  await assertNoZombie(replica, pid);
  const [result] = await replica.run({ tokens: rows, want: LOGITS });
  assert.ok(result.logits);
});

test(`a run that blocks the child's main thread for ${BLOCK_ON_RUN_MS} ms (hang timeout ${HANG_TIMEOUT_MS} ms) is live, not hung`, async () => {
  const replica = await startReplica({ faultInjection: 'block-on-run' });
  let crash: CrashEvent | undefined;
  replica.on('crashed', (event) => (crash = event));
  const [result] = await replica.run({ tokens: rows, want: LOGITS });
  assert.ok(result.logits);
  assert.equal(crash, undefined, crash?.message);
  const info = replica.info();
  assert.deepEqual([info.hangs, info.restarts, info.batchesRun, info.lastFault], [0, 0, 1, undefined]);
});

test('/health names the last fault of a replica restarting after a hang', () => {
  const lastFault = { reason: 'hung' as const, message: 'replica 0 (cpu) (pid 1) did not answer its heartbeat for 612 ms (hang timeout 500 ms) and was killed', at: new Date().toISOString() };
  const replica = (index: number, over: Partial<PoolReplicaInfo>): PoolReplicaInfo => ({ index, device: 'cpu', actual: 'cpu', state: 'ready', busy: false, batchesRun: 0, restarts: 0, hangs: 0, ...over });
  const verdict = healthVerdict({ state: 'ready', message: 'ok', replicas: [replica(0, { state: 'restarting', hangs: 1, lastFault }), replica(1, {})] });
  assert.equal(verdict.status, 'degraded');
  assert.match(verdict.message, /1 of 2 replicas down \(0: restarting\); replica 0 hung: .*did not answer its heartbeat/);
});
