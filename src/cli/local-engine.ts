// The CLI's inference: the same scheduler the server uses, over a pool of one replica, so CLI
// commands run the task code the server runs. Batching is on with no wait: everything a command
// submits at once is queued before the first batch is planned, so it batches anyway.
import type { Esm2Checkpoint } from '../model/checkpoint.js';
import type { Precision } from '../compile/index.js';
import { prepareModel } from '../engine/prepare.js';
import { ReplicaPool } from '../engine/pool.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { schedulerInfer, type Infer } from '../tasks/infer.js';

export interface LocalEngineOptions {
  modelDir: string;
  /** cpu, cuda:N, tensorrt:N or webgpu. */
  device?: string;
  precision?: Precision | 'auto';
  /** Padded-token budget of one batch (esm-extract's --toks_per_batch). */
  toksPerBatch?: number;
  /** ORT intra-op threads; ORT's default when absent. */
  threads?: number;
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
  const scheduler = new Scheduler(pool, {
    batching: true,
    maxWaitMs: 0,
    maxBatchTokens: opts.toksPerBatch ?? DEFAULT_TOKS_PER_BATCH,
    maxBatchSize: MAX_BATCH_SIZE,
    // One process, one user: nothing to protect from overload.
    maxQueuedTokens: Infinity,
  });
  return {
    checkpoint: prepared.checkpoint,
    infer: schedulerInfer(scheduler),
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
