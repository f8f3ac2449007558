// Messages between a Replica (parent) and its replica-process (child). They travel over Node IPC
// with serialization 'advanced' (structured clone), so typed arrays cross as raw bytes, not JSON;
// large results take a /dev/shm file instead (transfer.ts) and only their layout rides the IPC.
import type { SequenceResult, Want } from './batch.js';
import type { Slot } from './transfer.js';

/** How every replica process is forked: structured-clone IPC, so typed arrays stay binary. */
export const REPLICA_FORK_OPTIONS = { serialization: 'advanced' } as const;

/**
 * The child's file descriptor of the heartbeat pipe (stdio index 4 of the fork): the parent writes
 * a byte every interval, a worker thread of the child (replica-heartbeat.ts) echoes it. Not the IPC
 * channel: the child's main thread is blocked while ORT runs a batch.
 */
export const HEARTBEAT_FD = 4;

/**
 * Test-only faults the child injects on its first run, to prove that a replica is isolated.
 * 'block-on-run': the main thread is blocked for BLOCK_ON_RUN_MS (as by a long session.run), then
 * the batch runs normally — a long but live run, which the heartbeat must not call hung.
 */
export type FaultInjection = 'crash-on-run' | 'hang-on-run' | 'block-on-run';

export const BLOCK_ON_RUN_MS = 3000;

export interface ModelPaths {
  /** ONNX graph of variant 'default' (logits and hidden states). */
  default: string;
  /** ONNX graph of variant 'contacts'; its session is created on the first contacts request. */
  contacts?: string;
}

export interface InitMessage {
  type: 'init';
  device: string;
  models: ModelPaths;
  padTokenId: number;
  intraOpNumThreads?: number;
  /** Results of at least this many bytes go through `RunMessage.resultFile`, not the IPC channel. */
  fileTransferMinBytes: number;
  faultInjection?: FaultInjection;
  /**
   * Set on the second init of a child whose device was unavailable: the parent's answer to
   * DeviceUnavailableMessage (device cpu, the cpu's graphs), echoed in ReadyMessage.
   */
  fallbackReason?: string;
}

export interface RunMessage {
  type: 'run';
  id: number;
  tokens: Int32Array[];
  want: Want;
  /** Where a large result may be written (see transfer.ts); absent: always inline (e.g. the rerun of a batch whose file was unreadable). */
  resultFile?: string;
}

export interface CloseMessage {
  type: 'close';
}

export type ParentMessage = InitMessage | RunMessage | CloseMessage;

export interface ReadyMessage {
  type: 'ready';
  /** Device actually used ("cpu" after a fallback). */
  actual: string;
  /** Why the requested device could not be used; absent when it was. */
  fallbackReason?: string;
  /** Highest K of the graph's `hidden_K` outputs. */
  numLayers: number;
}

/**
 * The requested (non-cpu) device could not create a session. The child stays up and waits for the
 * parent: a second InitMessage (cpu, with the graphs the cpu wants) or the end of the process.
 */
export interface DeviceUnavailableMessage {
  type: 'device-unavailable';
  /** ORT's error, as it gave it. */
  reason: string;
}

export interface InitErrorMessage {
  type: 'init-error';
  message: string;
}

export interface ResultMessage {
  type: 'result';
  id: number;
  results: SequenceResult[];
  /** Why a result big enough for `resultFile` came inline instead (no room, a short write: TransferError). */
  inlineBecause?: string;
}

/** The result was written to the run's `resultFile`; `layout` says where each array lies. */
export interface ResultFileMessage {
  type: 'result-file';
  id: number;
  layout: SequenceResult<Slot>[];
}

export interface RunErrorMessage {
  type: 'run-error';
  id: number;
  message: string;
}

export type ReplyMessage = ResultMessage | ResultFileMessage | RunErrorMessage;

export type ChildMessage = ReadyMessage | DeviceUnavailableMessage | InitErrorMessage | ReplyMessage;
