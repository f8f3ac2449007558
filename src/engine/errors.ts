// The one error type the engine rejects runs and starts with; `reason` says what happened.

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

export class ReplicaError extends Error {
  constructor(
    readonly reason: ReplicaErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'ReplicaError';
  }
}

/** An error text on one line (ORT's messages may span several), for logs and start-up errors. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
