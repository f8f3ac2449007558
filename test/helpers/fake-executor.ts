// A scheduling test double for Executor: records every batch it is given and answers with
// synthetic results that name their sequence, so a test can check who got what. Batches finish
// on their own after `delayMs`, or, while `hold` is set, only when the test calls finish()/fail().
import type { Executor, SequenceResult, Want } from '../../src/scheduler/types.js';

/** Token rows for tests: every token is the sequence's id, so results can say whose they are. */
export const tokensFor = (id: number, length: number): Int32Array => new Int32Array(length).fill(id);

export interface RecordedBatch {
  replica: number;
  /** The id (token value) and length of each sequence, in batch order. */
  ids: number[];
  lengths: number[];
  want: Want;
  startedAt: number;
  endedAt?: number;
  finish(): void;
  fail(error: unknown): void;
}

/** mean/hidden/bos[k] = [length, k, id]; logits and contacts = [id]; only what `want` names. */
function syntheticResult(tokens: Int32Array, want: Want): SequenceResult {
  const id = tokens[0];
  const layers = (list?: number[]) =>
    list ? Object.fromEntries(list.map((k) => [k, Float32Array.of(tokens.length, k, id)])) : undefined;
  const result: SequenceResult = {};
  if (want.logits) result.logits = Float32Array.of(id);
  if (want.hidden) result.hidden = layers(want.hidden);
  if (want.mean) result.mean = layers(want.mean);
  if (want.bos) result.bos = layers(want.bos);
  if (want.contacts) result.contacts = Float32Array.of(id);
  return result;
}

export class FakeExecutor implements Executor {
  readonly batches: RecordedBatch[] = [];
  readonly up: boolean[];
  /** While true, batches wait for finish()/fail(); otherwise they finish after delayMs. */
  hold = false;
  delayMs = 0;
  /** The next batch run fails with this error. */
  failNext: unknown = undefined;
  /** Times a replica was given a batch while it was still running one (must stay 0). */
  overlaps = 0;
  private readonly running = new Set<number>();
  private readonly waiters: { count: number; resolve: () => void }[] = [];

  constructor(readonly size: number) {
    this.up = new Array<boolean>(size).fill(true);
  }

  isUp(replica: number): boolean {
    return this.up[replica];
  }

  /** Up and not restarting: `restarting[replica]` false (the default). */
  readonly restarting: boolean[] = [];
  isReady(replica: number): boolean {
    return this.up[replica] && !this.restarting[replica];
  }

  /** Set: no replica will serve again, and why (Executor.unavailableReason). */
  unavailable: string | undefined = undefined;
  unavailableReason(): string | undefined {
    return this.unavailable;
  }

  run(replica: number, tokens: Int32Array[], want: Want): Promise<SequenceResult[]> {
    if (this.running.has(replica)) this.overlaps += 1;
    this.running.add(replica);
    const failure = this.failNext;
    this.failNext = undefined;
    return new Promise((resolve, reject) => {
      let done = false;
      const end = (settle: () => void) => {
        if (done) return;
        done = true;
        batch.endedAt = performance.now();
        this.running.delete(replica);
        settle();
      };
      const batch: RecordedBatch = {
        replica,
        ids: tokens.map((row) => row[0]),
        lengths: tokens.map((row) => row.length),
        want: structuredClone(want),
        startedAt: performance.now(),
        finish: () => end(() => (failure === undefined ? resolve(tokens.map((row) => syntheticResult(row, want))) : reject(failure))),
        fail: (error) => end(() => reject(error)),
      };
      this.batches.push(batch);
      for (const waiter of [...this.waiters]) {
        if (this.batches.length >= waiter.count) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
      if (!this.hold) setTimeout(() => batch.finish(), this.delayMs);
    });
  }

  /** Resolves once `count` batches have started. */
  batchesStarted(count: number): Promise<void> {
    if (this.batches.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Stops holding and finishes every batch still running. */
  releaseAll(): void {
    this.hold = false;
    for (const batch of this.batches) batch.finish();
  }
}
