// The CLI's inference: the same scheduler and request path the server uses, over a pool of one
// replica, so CLI commands run the task code the server runs (windows past 1,022 residues
// included). Batching is on with no wait: what a command has in flight batches anyway.
import type { Esm2Checkpoint } from '../model/checkpoint.js';
import { familyResidueLimit } from '../model/config.js';
import type { Precision } from '../compile/index.js';
import { prepareModel } from '../engine/prepare.js';
import { ReplicaPool } from '../engine/pool.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { startRequest, type Infer, type InferenceRequest, type ModelInference, type RequestOptions } from '../tasks/inference.js';

export interface LocalEngineOptions {
  modelDir: string;
  /** cpu, cuda:N, tensorrt:N or webgpu. */
  device?: string;
  precision?: Precision | 'auto';
  /** Padded-token budget of one batch (esm-extract's --toks_per_batch). */
  toksPerBatch?: number;
  /** ORT intra-op threads; ORT's default when absent. */
  threads?: number;
  /** Residues per window for longer sequences (default 1022; never above the family's limit). */
  windowSize?: number;
  /** Also compile the contact-head graph. */
  contacts?: boolean;
  /** false: an unusable GPU is an error (ReplicaError 'device-unavailable') rather than a run on cpu. Default true. */
  allowCpuFallback?: boolean;
  cacheDir?: string;
  /** Progress and warnings for the user (stderr in the CLI). */
  log?: (message: string) => void;
}

export interface LocalEngine {
  checkpoint: Esm2Checkpoint;
  /** What requests run on (the scheduler, the model's shape, the window). */
  inference: ModelInference;
  /** A request: a command's whole work, one cancellation (no deadline unless given). */
  request(options?: RequestOptions): InferenceRequest;
  /** One call as its own request. */
  infer: Infer;
  /** The scheduler behind `infer` (its 'batch' events report every batch). */
  scheduler: Scheduler;
  /** Identity of the model behind `infer` (directory and precision), for result caches. */
  model: string;
  /** The device asked for. */
  requestedDevice: string;
  /** The device that actually runs (a GPU falls back to cpu when unusable). */
  device: string;
  /** Why `device` is not `requestedDevice`. */
  fallbackReason?: string;
  /** The precision of the graphs that run: that of `device` (fp32 on a cpu fallback with precision auto). */
  precision: Precision;
  close(): Promise<void>;
}

export const DEFAULT_TOKS_PER_BATCH = 4096;
/** ESM-2's trained length: longer sequences run as windows of this many residues. */
export const DEFAULT_WINDOW = 1022;
const MAX_BATCH_SIZE = 64;

export async function startLocalEngine(opts: LocalEngineOptions): Promise<LocalEngine> {
  const device = opts.device ?? 'cpu';
  const log = opts.log ?? (() => undefined);
  const prepared = await prepareModel({
    modelDir: opts.modelDir,
    device,
    precision: opts.precision,
    contacts: opts.contacts,
    cacheDir: opts.cacheDir,
    log: (message, level) => log(level === 'warn' ? `warning: ${message}` : message),
  });
  let pool: ReplicaPool;
  try {
    pool = await ReplicaPool.start({
      replicas: [{ device, intraOpNumThreads: opts.threads }],
      // The graphs of the device obtained: a GPU that falls back runs the cpu's precision.
      models: prepared.graphsFor,
      allowCpuFallback: opts.allowCpuFallback,
      padTokenId: prepared.compiled[0].padTokenId,
      // "replica ready" lines are server talk; a command reports only what the user must know.
      log: (level, message) => level !== 'info' && log(message),
    });
  } catch (err) {
    await prepared.checkpoint.close();
    throw err;
  }
  const [info] = pool.replicaInfo();
  const precision = info.precision ?? prepared.precision;
  if (info.fallbackReason) log(`warning: ${device} unavailable, running on ${info.actual} (${precision}): ${info.fallbackReason}`);
  // The family's hard limit wins over a larger window (ESM-1b/1v: 1022 residues, its position table).
  const windowSize = Math.min(opts.windowSize ?? DEFAULT_WINDOW, familyResidueLimit(prepared.checkpoint.config));
  const scheduler = new Scheduler(pool, {
    batching: true,
    maxWaitMs: 0,
    maxBatchTokens: Math.max(opts.toksPerBatch ?? DEFAULT_TOKS_PER_BATCH, windowSize + 2),
    maxBatchSize: MAX_BATCH_SIZE,
    // One process, one user: nothing to protect from overload.
    maxQueuedTokens: Infinity,
  });
  const inference: ModelInference = {
    scheduler,
    dims: prepared.checkpoint.config,
    windowSize,
    // One batch waiting keeps the replica busy; results are held only for what is in flight.
    inFlightBatches: 2,
  };
  return {
    checkpoint: prepared.checkpoint,
    inference,
    request: (options) => startRequest(inference, options),
    infer: (tokens, want) => startRequest(inference).run((request) => request.infer(tokens, want)),
    scheduler,
    model: `${prepared.checkpoint.dir} (${precision})`,
    requestedDevice: device,
    device: info.actual,
    ...(info.fallbackReason ? { fallbackReason: info.fallbackReason } : {}),
    precision,
    async close() {
      await pool.close();
      await prepared.checkpoint.close();
    },
  };
}
