// The options, state and events' types of a Replica (replica.ts), and how it is given its graphs.
import type { Want } from './batch.js';
import type { Precision } from '../compile/index.js';
import type { FaultInjection, ModelPaths } from './protocol.js';

export interface RestartPolicy {
  /** Failed starts or crashed batches in a row before the replica gives up. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Test-only: awaited after the backoff, before the new process is forked (holds the replica in 'restarting'). */
  beforeRestart?: () => Promise<void>;
}

/** The graphs a replica loads on one device, and their precision (when known). */
export interface DeviceModels {
  models: ModelPaths;
  precision?: Precision;
}

/** The graphs for a device (e.g. PreparedModel.graphsFor: fp16 for a GPU, fp32 for the cpu), compiled when first asked for. */
export type ModelSource = (device: string) => Promise<DeviceModels>;

export interface ReplicaOptions {
  /** "cpu", "cuda:N", "tensorrt:N" or "webgpu"; GPU devices fall back to cpu when unusable. */
  device: string;
  /**
   * Fixed graphs, loaded on whatever device the replica ends up on; or a source asked for the
   * requested device's graphs and, after a fallback, for the cpu's (so the cpu runs its precision).
   */
  models: ModelPaths | ModelSource;
  /** false: an unusable GPU fails the start (ReplicaError 'device-unavailable') instead of falling back to cpu. Default true. */
  allowCpuFallback?: boolean;
  /** `CompiledModel.padTokenId`; ESM-2's `<pad>` by default. */
  padTokenId?: number;
  /** Threads of ORT's intra-op pool, e.g. cores / replicas when several share the CPU. */
  intraOpNumThreads?: number;
  runTimeoutMs?: number;
  /**
   * A ready process whose heartbeat (answered by a worker thread, so a long batch does not stop
   * it) stays unanswered this long is hung: killed and restarted as after a run timeout, its batch
   * rejected with ReplicaError 'timeout'. Default DEFAULT_HANG_TIMEOUT_MS.
   */
  hangTimeoutMs?: number;
  initTimeoutMs?: number;
  /** Results of at least this many bytes come back through a file in transferDir, not IPC (Infinity: never). */
  fileTransferMinBytes?: number;
  /** Where result files go: /dev/shm where it exists (DEFAULT_TRANSFER_DIR); tests point it elsewhere. */
  transferDir?: string;
  restart?: Partial<RestartPolicy>;
  name?: string;
  /** Test-only: the first child process aborts, hangs or blocks on its first run. */
  faultInjection?: FaultInjection;
}

export interface RunRequest {
  /** Token ids per sequence, each cls … eos (no padding). */
  tokens: Int32Array[];
  want: Want;
}

export type ReplicaState = 'starting' | 'ready' | 'restarting' | 'closing' | 'closed' | 'failed';

export interface ReplicaInfo {
  name: string;
  requested: string;
  /** Device in use; "cpu" after a fallback. */
  actual: string;
  fallbackReason?: string;
  /** Precision of the graphs loaded (undefined for fixed graphs of unstated precision). */
  precision?: Precision;
  pid?: number;
  state: ReplicaState;
  busy: boolean;
  queued: number;
  batchesRun: number;
  restarts: number;
  /** Processes killed because their heartbeat went unanswered (see ReplicaOptions.hangTimeoutMs). */
  hangs: number;
  /** The latest crash, run timeout, hang or failed restart; kept after the replica serves again. */
  lastFault?: ReplicaFault;
  numLayers: number;
  /** Results big enough for a file that came inline instead (the file could not be written, or read: transfer.ts). */
  inlineFallbacks: number;
}

export const DEFAULT_HANG_TIMEOUT_MS = 10_000;

export interface CrashEvent {
  /** 'hung': the heartbeat went unanswered (the batch in flight, if any, is rejected with 'timeout'). */
  reason: 'crashed' | 'timeout' | 'hung' | 'init-failed';
  message: string;
}

export interface ReplicaFault extends CrashEvent {
  /** When it happened (ISO 8601). */
  at: string;
}
