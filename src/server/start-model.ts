// One prepared checkpoint brought into service: its replicas (a ReplicaPool on the devices), its
// Scheduler, and their metrics. The runtime starts one per model — several for an ensemble
// (server/members.ts), each with its own pool and scheduler on the same devices.
import type { FastifyBaseLogger } from 'fastify';
import type { PreparedModel } from '../engine/prepare.js';
import type { ResolvedDevices } from '../engine/detect.js';
import { ReplicaPool, type PoolReplicaInfo } from '../engine/pool.js';
import { ReplicaError } from '../engine/errors.js';
import { Scheduler, type DropReport, type RetryReport } from '../scheduler/scheduler.js';
import type { BatchReport } from '../scheduler/types.js';
import { MaskedLogProbCache } from '../tasks/masked-marginals.js';
import type { ModelInference } from '../tasks/inference.js';
import type { ResultMemory } from '../tasks/cost.js';
import type { LengthLimit } from '../tasks/sequences.js';
import type { Metrics } from './metrics.js';
import type { Settings } from './settings.js';
import { precisionOf, schedulerOptions, type EngineTestHooks, type LoadedModel } from './runtime.js';

export interface StartContext {
  settings: Settings;
  log: FastifyBaseLogger;
  metrics: Metrics;
  engineHooks: EngineTestHooks;
  /** After every batch's metrics (the runtime updates its queue gauges). */
  onBatch: () => void;
}

export interface StartModelOptions {
  prepared: PreparedModel;
  devices: ResolvedDevices;
  limit: LengthLimit;
  /** The server's one budget of result memory, shared by every model it serves. */
  resultMemory: ResultMemory;
  /** The `replica` metric label of replica `index` (members.ts replicaLabel). */
  replicaLabel: (index: number) => string;
}

/** Starts the replicas and scheduler of one prepared checkpoint, with their metrics. */
export async function startModel(context: StartContext, { prepared, devices, limit, resultMemory, replicaLabel }: StartModelOptions): Promise<LoadedModel> {
  const { settings, log, metrics: m } = context;
  let pool: ReplicaPool;
  try {
    pool = await ReplicaPool.start({
      replicas: devices.replicas,
      // Each replica loads the graphs of the device it obtains: fp32 on a cpu fallback (PRECISION=auto).
      models: prepared.graphsFor,
      allowCpuFallback: settings.allowCpuFallback,
      padTokenId: prepared.checkpoint.tokenizer.padId,
      runTimeoutMs: settings.replicaRunTimeoutMs,
      hangTimeoutMs: settings.replicaHangTimeoutMs,
      log: (level, message) => log[level](message),
      ...context.engineHooks,
    });
  } catch (err) {
    if (err instanceof ReplicaError && err.reason === 'device-unavailable') throw new Error(`${err.message} (ALLOW_CPU_FALLBACK=false)`);
    throw err;
  }
  const labels = (index: number) => ({ device: pool.replicaInfo()[index].device, replica: replicaLabel(index) });
  const countFallback = (info: PoolReplicaInfo) => void (info.fallbackReason && m.replicaFallbacks.inc({ requested: info.device, device: info.actual }));
  for (const info of pool.replicaInfo()) {
    m.replicaUp.set(labels(info.index), info.state === 'failed' ? 0 : 1);
    countFallback(info);
  }
  pool.on('replica-up', (index: number, info: PoolReplicaInfo) => {
    m.replicaUp.set(labels(index), 1);
    m.replicaRestarts.inc(labels(index));
    countFallback(info);
  });
  pool.on('replica-down', (index: number, reason) => {
    m.replicaUp.set(labels(index), 0);
    if (reason === 'hung') m.replicaHangs.inc(labels(index));
  });
  const dims = prepared.checkpoint.config;
  const scheduler = new Scheduler(pool, schedulerOptions(settings, dims));
  scheduler.on('batch', (report: BatchReport) => {
    m.batchSequences.observe(report.sequences);
    m.batchTokens.observe(report.paddedTokens);
    m.batchPadding.observe(report.paddedTokens > 0 ? 1 - report.tokens / report.paddedTokens : 0);
    m.inferenceDuration.observe({ device: pool.replicaInfo()[report.replica].device }, report.durationMs / 1000);
    if (report.ok) m.residues.inc(report.tokens - 2 * report.sequences);
    context.onBatch();
  });
  pool.on('replica-up', () => scheduler.wake()); // a restarted replica takes waiting work at once
  pool.on('replica-down', () => scheduler.wake()); // the last one failed: what waits is answered 503 at once
  scheduler.on('retry', ({ reason, sequences }: RetryReport) => {
    m.batchRetries.inc({ reason });
    m.retriedSequences.inc({ reason }, sequences);
  });
  scheduler.on('dropped', ({ reason, sequences }: DropReport) => m.droppedSequences.inc({ reason }, sequences));
  const inference: ModelInference = {
    scheduler,
    dims,
    windowSize: limit.residues,
    inFlightBatches: Math.max(1, pool.size) + 1,
  };
  return {
    checkpoint: prepared.checkpoint,
    pool,
    scheduler,
    precision: precisionOf(pool.replicaInfo()) ?? prepared.precision,
    devicesDescription: devices.description,
    lengthLimit: limit,
    windowSize: limit.residues,
    maskedCache: new MaskedLogProbCache(),
    inference,
    resultMemory,
  };
}
