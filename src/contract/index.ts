// The neutral contract between the engine (replica processes running ONNX graphs) and the
// scheduler (the one place batches form): what a sequence wants, what it gets back, the executor
// that runs batches, and how a batch can fail. Both layers import this module; neither imports
// the other, and no layer tells failures apart by error names or message text.

/** What a caller wants per sequence. Layer indices are absolute: 0 … numLayers. */
export interface Want {
  /** All token rows (cls … eos) × vocab. */
  logits?: boolean;
  /** Per-token hidden states of these layers, all token rows × hidden. */
  hidden?: number[];
  /** Mean over residue rows 1 … L (cls, eos and pad excluded) of these layers. */
  mean?: number[];
  /** Row 0 (the cls / beginning-of-sequence token) of these layers. */
  bos?: number[];
  /** L × L contact probabilities (needs the 'contacts' model). */
  contacts?: boolean;
}

/** One sequence's outputs; `A` is Float32Array except while a result is in transit. */
export interface SequenceResult<A = Float32Array> {
  logits?: A;
  hidden?: Record<number, A>;
  mean?: Record<number, A>;
  bos?: Record<number, A>;
  contacts?: A;
}

/**
 * How a batch failed, which decides what the scheduler does with its sequences:
 * - `replica`: the replica failed (crashed, hung, gave up, closed), not the work — retry elsewhere;
 * - `batch`: the runtime failed this batch on a live replica (e.g. out of memory) — retry in halves,
 *   so that only a sequence failing alone fails its request;
 * - `request`: the work itself is wrong — fail the requests, nothing to retry.
 */
export type FaultKind = 'replica' | 'batch' | 'request';

/** The error an executor rejects a batch with when it knows why; anything else counts as `request`. */
export class ExecutorFault extends Error {
  constructor(
    readonly kind: FaultKind,
    message: string,
  ) {
    super(message);
    this.name = 'ExecutorFault';
  }
}

export const faultKindOf = (error: unknown): FaultKind => (error instanceof ExecutorFault ? error.kind : 'request');

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
  /** Runs one batch on one replica (each replica runs one batch at a time); rejects with an ExecutorFault when it can say why. */
  run(replica: number, tokens: Int32Array[], want: Want): Promise<SequenceResult[]>;
}

export { batchMemoryBound, replicaBatchBytes, resultBytes, type ModelDims } from './cost.js';
