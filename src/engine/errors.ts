// The one error type the engine rejects runs and starts with; `reason` says what happened, and
// the contract's fault kind (what the scheduler does about it) follows from the reason.
import { ExecutorFault, type FaultKind } from '../contract/index.js';

export type ReplicaErrorReason =
  /** The request itself is wrong (no sequences, unknown layer, contacts without a contacts model). */
  | 'invalid-request'
  /** ORT rejected or failed the batch; the replica process is fine and keeps serving. */
  | 'run-failed'
  /** The replica process died (native crash, abort, signal) while the batch was in flight. */
  | 'crashed'
  /** The batch ran past runTimeoutMs; the process was killed and is being restarted. */
  | 'timeout'
  /** The replica process could not create its session (bad model file, out of memory, …). */
  | 'init-failed'
  /** The replica's GPU could not be used and falling back to cpu was not allowed. */
  | 'device-unavailable'
  /** close() was called: the replica no longer accepts work. */
  | 'closed'
  /** The replica gave up after too many failed restarts. */
  | 'failed';

/** Faults of the replica, not of the work: the work is retried on another replica. */
const REPLICA_FAULTS: ReadonlySet<ReplicaErrorReason> = new Set(['crashed', 'timeout', 'failed', 'closed']);

export function faultKindOfReason(reason: ReplicaErrorReason): FaultKind {
  if (REPLICA_FAULTS.has(reason)) return 'replica';
  return reason === 'run-failed' ? 'batch' : 'request';
}

export class ReplicaError extends ExecutorFault {
  constructor(
    readonly reason: ReplicaErrorReason,
    message: string,
  ) {
    super(faultKindOfReason(reason), message);
    this.name = 'ReplicaError';
  }
}

/** An error text on one line (ORT's messages may span several), for logs and start-up errors. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
