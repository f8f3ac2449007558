// The scheduler's view of the world: replicas that run batches of token rows (the Executor of the
// contract module, which engine/pool.ts implements over replica processes). It knows nothing of
// ONNX or processes.
import type { Executor, SequenceResult, Want } from '../contract/index.js';

export type { Executor, SequenceResult, Want };

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
