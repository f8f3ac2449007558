// The scheduler's view of the world: replicas that run batches of token rows. It knows nothing of
// ONNX or processes; engine/pool.ts implements Executor over replica processes.
import type { SequenceResult, Want } from '../engine/batch.js';

export type { SequenceResult, Want };

export interface Executor {
  /** Number of replicas; a replica is addressed by its index 0 … size − 1. */
  readonly size: number;
  /** True when the replica can take a batch now or soon (started, not failed). */
  isUp(replica: number): boolean;
  /**
   * True when the replica can start a batch now — up and not restarting after a fault. Batches go
   * only to ready replicas, and a pin to a replica that is not ready lapses, so that work lost to a
   * crash runs on a replica that serves rather than waiting out the restart. Absent: isUp.
   */
  isReady?(replica: number): boolean;
  /**
   * Why no replica will ever take work again (every one has failed for good, never to restart),
   * or undefined while one serves or may again (restarting replicas count as coming back). When it
   * says why, the scheduler refuses new work and ends what waits with UnavailableError, at once,
   * instead of leaving it to time out. Absent: never.
   */
  unavailableReason?(): string | undefined;
  /** Runs one batch on one replica (each replica runs one batch at a time). */
  run(replica: number, tokens: Int32Array[], want: Want): Promise<SequenceResult[]>;
}

/** One sequence of one request. */
export interface WorkItem {
  /** Token ids, cls … eos. */
  tokens: Int32Array;
  /** Exactly what this sequence's caller wants; batching never adds to it. */
  want: Want;
  /** Pin to one replica (the distribution strategy of /predict/batch); any replica when absent. */
  replica?: number;
}

export interface ItemOutcome {
  result: SequenceResult;
  /** The replica that ran it. */
  replica: number;
  /** Time from submission to the start of its batch. */
  queueMs: number;
  /** Duration of its batch on the replica. */
  inferenceMs: number;
  /** Sequences in its batch (from every request). */
  batchSize: number;
}

/** Emitted for every batch run, for metrics. */
export interface BatchReport {
  replica: number;
  sequences: number;
  /** Real tokens (sum of lengths). */
  tokens: number;
  /** max length × sequences. */
  paddedTokens: number;
  durationMs: number;
  ok: boolean;
}
