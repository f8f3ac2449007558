// The scheduler's view of the world: replicas that run batches of token rows (the Executor of the
// contract module, which engine/pool.ts implements over replica processes). It knows nothing of
// ONNX or processes.
import type { Executor, SequenceResult, Want } from '../contract/index.js';
import type { BatchMemory } from './batch-selection.js';

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
  /** When its batch began (performance.now()); queueMs and inferenceMs are measured from it (tracing builds spans from these). */
  startedAt: number;
  /** Real tokens of its batch (every request's), and max length × sequences. */
  batchTokens: number;
  batchPaddedTokens: number;
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

export interface SchedulerOptions {
  /** Padded-token budget of one batch: max length × sequences. */
  maxBatchTokens: number;
  /** Most sequences in one batch. */
  maxBatchSize: number;
  /** Longest a batch waits for company after its oldest item arrived (batching on). */
  maxWaitMs: number;
  /** false: each request's sequences are batched only with each other, and never wait. */
  batching: boolean;
  /**
   * Wait for company even when no batch runs anywhere (the FastAPI service's behaviour). Default
   * false: an idle service dispatches at once and batches form from what arrives while a batch
   * runs (continuous batching), so a lone request pays no wait.
   */
  waitWhenIdle?: boolean;
  /** Backpressure: most tokens waiting (not running) before submit refuses work. */
  maxQueuedTokens: number;
  /**
   * Longest a batch should run: once the replicas' rate has been measured, a batch holds at most
   * the tokens a replica runs in this long (at least one sequence), so that a request arriving
   * behind running work waits about this long at most. Absent: only the token budget.
   */
  maxBatchMs?: number;
  /**
   * A batch's replica memory bound: sequences join a batch only while `bytesOf(lane, padded
   * length, sequences)` stays within `limitBytes` (a sequence over it alone still runs, alone).
   * Absent: only the token budget bounds a batch.
   */
  batchMemory?: BatchMemory;
  /**
   * Priority classes (SubmitOptions.priority): work of a larger class that has waited longer than
   * this anchors a batch before the smaller class's (every other dispatch at most), so no class
   * starves. Absent: smaller classes always first.
   */
  priorityMaxWaitMs?: number;
}

export interface SubmitOptions {
  /**
   * Aborting drops the request's queued work and rejects with the signal's reason when it is an
   * Error (e.g. the timeout of a whole request), else with CancelledError.
   */
  signal?: AbortSignal;
  /**
   * The request this work belongs to when it comes in several submits (tasks/inference.ts): an
   * idle replica serves first the request served longest ago (round robin over requests), so a
   * small request is not queued behind a large one's parts. Absent: this submit alone.
   */
  flow?: object;
  /**
   * Its class, a whole number 0 … 1000: an idle replica serves the smallest class waiting first
   * (fair queuing by flow within a class), but for work of a larger class waiting past
   * SchedulerOptions.priorityMaxWaitMs (scheduler/priority.ts). Default 0.
   */
  priority?: number;
  /**
   * More work of a request already admitted (its first part passed backpressure): queued whatever
   * the queue holds, so that a large request is never refused against itself. Its sender bounds
   * how much of it waits at once (tasks/inference.ts).
   */
  admitted?: boolean;
  /** Past this, the request's queued work is dropped and it rejects with SchedulerTimeoutError. */
  timeoutMs?: number;
}

export interface SchedulerStats {
  queuedSequences: number;
  queuedTokens: number;
  runningBatches: number;
  busyReplicas: number;
}

/** A failed batch's sequences put back in the queue: after a replica fault (its reason), or in halves after an ORT error ('split'). */
export interface RetryReport {
  reason: string;
  sequences: number;
}

/**
 * Queued sequences of one request dropped before any replica ran them: its client left, it timed
 * out, another of its sequences failed, abortAll (a shutdown that could not wait), or no replica
 * is left to run them (Executor.unavailableReason).
 */
export interface DropReport {
  reason: 'cancelled' | 'timeout' | 'failed' | 'shutdown' | 'unavailable';
  sequences: number;
}
