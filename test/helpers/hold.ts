// Deterministic holds for tests that need work to pile up (queues, overload, cancellation, drain),
// so that no test depends on how fast this machine is: work waits because the test holds it, not
// because inference happens to be slower than the requests arriving, and it runs when the test
// releases it. Plus `until`, the one way tests wait for something that must eventually happen.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { ReplicaPool } from '../../src/engine/pool.js';
import type { TestServer } from './server.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` (every 5 ms) until it gives a truthy value, and returns it. `ms` bounds something
 * that must happen eventually — a generous bound on purpose (default 30 s): it turns a hang into
 * a failure, it is not a speed target.
 */
export async function until<T>(what: string, probe: () => T | undefined | false | null | Promise<T | undefined | false | null>, ms = 30_000): Promise<T> {
  for (const deadline = Date.now() + ms; ; ) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await pause(5);
  }
}

export interface BatchHold {
  /** Batches the scheduler has handed to the replicas so far (held or not). */
  readonly batches: number;
  /** Sequences in those batches. */
  readonly sequences: number;
  /** Lets every held batch run, and every later one at once. */
  release(): void;
}

/**
 * Holds every batch the scheduler of an in-process server hands to its replicas until release()
 * (after which the pool is as it was):
 * as if each replica were paused mid-batch, the scheduler sees it busy, so later work stays in the
 * queue. The batches then run, unchanged, on the real replicas. Released before the server closes
 * (its close() waits for accepted work), so a failing test cannot hang its teardown.
 */
export function holdBatches(s: TestServer): BatchHold {
  const pool: ReplicaPool = s.runtime.model!.pool;
  const run = pool.run.bind(pool);
  const held: (() => void)[] = [];
  let open = false;
  const hold = {
    batches: 0,
    sequences: 0,
    release() {
      open = true;
      delete (pool as Partial<Pick<ReplicaPool, 'run'>>).run; // the pool's own method again
      for (const go of held.splice(0)) go();
    },
  };
  pool.run = (index, tokens, want) => {
    hold.batches += 1;
    hold.sequences += tokens.length;
    if (open) return run(index, tokens, want);
    return new Promise<void>((resolve) => held.push(resolve)).then(() => run(index, tokens, want));
  };
  const close = s.close.bind(s);
  s.close = async () => {
    hold.release();
    await close();
  };
  return hold;
}

/**
 * Stops a process (SIGSTOP) — e.g. the replica of a server running in its own process, which then
 * keeps the batch it was given and takes no other — until the returned resume() (SIGCONT), which
 * also runs after the test in case it failed first.
 */
export function pauseProcess(t: TestContext, pid: number): () => void {
  let paused = true;
  process.kill(pid, 'SIGSTOP');
  const resume = () => {
    if (!paused) return;
    paused = false;
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  };
  t.after(resume);
  return resume;
}

/** Whether `pid` is gone (a killed child is reaped a moment after SIGKILL); the 20 s bound only turns a hang into a failure. */
export async function processGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 400; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await pause(50);
  }
  return false;
}
