// What the routes serve from: the model, its replicas and the scheduler, plus the service state
// (initializing → ready → draining, or unhealthy) that health and readiness report.
import type { FastifyBaseLogger } from 'fastify';
import type { Esm2Checkpoint } from '../model/checkpoint.js';
import { DEFAULT_MODEL_REPO, resolveModel } from '../model/hub/index.js';
import { prepareModel } from '../engine/prepare.js';
import { resolveDevices } from '../engine/detect.js';
import { ReplicaPool, type PoolOptions, type PoolReplicaInfo } from '../engine/pool.js';
import { ReplicaError } from '../engine/errors.js';
import { Scheduler, type DropReport, type RetryReport, type SchedulerOptions } from '../scheduler/scheduler.js';
import type { BatchReport } from '../scheduler/types.js';
import type { Precision } from '../compile/index.js';
import { MaskedLogProbCache } from '../tasks/masked-marginals.js';
import type { Settings } from './settings.js';
import { batchMemoryBound, type ModelDims } from '../contract/index.js';
import type { ModelInference } from '../tasks/inference.js';
import { ResultMemory } from '../tasks/cost.js';
import { lengthLimit, type LengthLimit } from '../tasks/sequences.js';
import type { Metrics } from './metrics.js';

/** The batch-queue settings as the scheduler takes them (the server and the engine-only benchmark). */
export function schedulerOptions(settings: Settings, dims?: ModelDims): SchedulerOptions {
  return {
    ...(dims ? { batchMemory: batchMemoryBound(dims, settings.maxBatchMemoryBytes) } : {}),
    maxBatchTokens: settings.maxBatchTokens,
    maxBatchSize: settings.batchQueueMaxSize,
    maxWaitMs: settings.batchQueueMaxWaitMs,
    waitWhenIdle: settings.batchQueueWaitWhenIdle,
    batching: settings.batchQueueEnabled,
    maxQueuedTokens: settings.maxQueuedTokens,
    maxBatchMs: settings.maxBatchMs,
  };
}

export type ServiceState = 'initializing' | 'ready' | 'draining' | 'unhealthy';

/** Test-only engine options (tests/reliability): a fault in one replica's first process, a quicker restart policy. */
export interface EngineTestHooks {
  faultInjection?: PoolOptions['faultInjection'];
  restart?: PoolOptions['restart'];
}

export interface LoadedModel {
  checkpoint: Esm2Checkpoint;
  pool: ReplicaPool;
  scheduler: Scheduler;
  /** The replicas' precision at start (each runs the one of the device it obtained); 'mixed' when they differ. */
  precision: Precision | 'mixed';
  devicesDescription: string;
  /** The most residues a sequence may have whole: MAX_SEQUENCE_LENGTH, or the family's limit where smaller (ESM-1b: 1022). */
  lengthLimit: LengthLimit;
  /** Residues per window in truncation "window" mode (lengthLimit.residues). */
  windowSize: number;
  /** Masked log-probability matrices of recently scored proteins (variant scores, PLL). */
  maskedCache: MaskedLogProbCache;
  /** What every request runs on (tasks/inference.ts). */
  inference: ModelInference;
  /** The server's memory for results, shared by the requests in flight. */
  resultMemory: ResultMemory;
}

export class ServingRuntime {
  state: ServiceState = 'initializing';
  message = 'loading the model';
  /** The name every response reports (the demo's name when the demo is served). */
  modelName: string;
  /** "huggingface hub (repo@commit)", "local directory" or "built-in demo"; "resolving" until known. */
  source = 'resolving';
  /** Why the built-in demo checkpoint (random weights) serves; undefined while a real model does. */
  demoReason?: string;
  /** Why DEVICES=auto chose cpu although NVIDIA GPUs are here (detect.ts gpuFallback); /health reports it. */
  devicesFallback?: string;
  private loaded?: LoadedModel;

  constructor(
    readonly settings: Settings,
    readonly metrics: Metrics,
    private readonly log: FastifyBaseLogger,
    private readonly engineHooks: EngineTestHooks = {},
  ) {
    this.modelName = settings.modelName ?? DEFAULT_MODEL_REPO;
  }

  /** The loaded model; throws 503-worthy errors while not ready. */
  get model(): LoadedModel | undefined {
    return this.loaded;
  }

  async start(): Promise<void> {
    try {
      this.loaded = await this.load();
      this.state = 'ready';
      this.message = 'model loaded and every replica is up';
      this.log.info({ model: this.modelName, devices: this.loaded.devicesDescription, precision: this.loaded.precision }, 'ready');
    } catch (err) {
      this.state = 'unhealthy';
      this.message = err instanceof Error ? err.message : String(err);
      throw err;
    }
  }

  private async load(): Promise<LoadedModel> {
    const { settings, log } = this;
    // A local directory, a hub repository (downloaded into the shared cache), or — MODEL_NAME
    // unset and the default model out of reach — the demo (see model/hub/resolve.ts).
    this.message = 'resolving the model';
    const resolved = await resolveModel(settings.modelName, {
      log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
      allowDemo: settings.allowDemoModel,
      // /ready's detail while a large model downloads, so a probe or a person sees it progress.
      onProgress: (file, bytes, total) => {
        this.message = `downloading ${this.modelName}: ${file} ${total ? `${Math.floor((100 * bytes) / total)} %` : `${bytes} bytes`}`;
      },
    });
    this.modelName = resolved.name;
    this.source = resolved.source;
    if (resolved.demo) this.demoReason = resolved.demoReason ?? 'the built-in demo checkpoint';
    this.message = 'loading the model';
    const modelDir = resolved.dir;
    const devices = await resolveDevices(settings.devices);
    log.info({ devices: devices.description }, 'devices');
    if (devices.gpuFallback) {
      if (!settings.allowCpuFallback) throw new Error(`DEVICES=${settings.devices} would run on cpu: ${devices.gpuFallback} (ALLOW_CPU_FALLBACK=false)`);
      this.devicesFallback = `DEVICES=${settings.devices} runs on cpu: ${devices.gpuFallback}`;
      log.warn(this.devicesFallback);
      this.metrics.replicaFallbacks.inc({ requested: settings.devices, device: 'cpu' });
    }
    const prepared = await prepareModel({
      modelDir,
      device: devices.replicas[0].device,
      precision: settings.precision,
      contacts: true,
      log: (message, level = 'info') => log[level](message),
    });
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
        ...this.engineHooks,
      });
    } catch (err) {
      await prepared.checkpoint.close();
      if (err instanceof ReplicaError && err.reason === 'device-unavailable') throw new Error(`${err.message} (ALLOW_CPU_FALLBACK=false)`);
      throw err;
    }
    const m = this.metrics;
    const labels = (index: number) => ({ device: pool.replicaInfo()[index].device, replica: String(index) });
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
    scheduler.on('batch', (report: BatchReport) => this.recordBatch(report, pool));
    pool.on('replica-up', () => scheduler.wake()); // a restarted replica takes waiting work at once
    pool.on('replica-down', () => scheduler.wake()); // the last one failed: what waits is answered 503 at once
    scheduler.on('retry', ({ reason, sequences }: RetryReport) => {
      m.batchRetries.inc({ reason });
      m.retriedSequences.inc({ reason }, sequences);
    });
    scheduler.on('dropped', ({ reason, sequences }: DropReport) => m.droppedSequences.inc({ reason }, sequences));
    const limit = lengthLimit(dims, settings.maxSequenceLength);
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
      resultMemory: new ResultMemory(settings.maxResultBytesInFlight),
    };
  }

  private recordBatch(report: BatchReport, pool: ReplicaPool): void {
    const m = this.metrics;
    m.batchSequences.observe(report.sequences);
    m.batchTokens.observe(report.paddedTokens);
    m.batchPadding.observe(report.paddedTokens > 0 ? 1 - report.tokens / report.paddedTokens : 0);
    m.inferenceDuration.observe({ device: pool.replicaInfo()[report.replica].device }, report.durationMs / 1000);
    if (report.ok) m.residues.inc(report.tokens - 2 * report.sequences);
    this.updateQueueGauges();
  }

  updateQueueGauges(): void {
    const stats = this.loaded?.scheduler.stats();
    this.metrics.queueSequences.set(stats?.queuedSequences ?? 0);
    this.metrics.queueTokens.set(stats?.queuedTokens ?? 0);
  }

  /** Answers every request with work queued or running now with `error` (a drain out of time); returns how many. */
  abortAll(error: unknown): number {
    return this.loaded?.scheduler.abortAll(error) ?? 0;
  }

  /** Kills the replica processes at once, for an exit that cannot wait for the drain. */
  killReplicas(): void {
    this.loaded?.pool.kill();
  }

  /** Stops taking work, lets queued and running work finish, closes the replicas. */
  async drain(): Promise<void> {
    this.state = 'draining';
    this.message = 'shutting down: finishing accepted work';
    if (!this.loaded) return;
    await this.loaded.scheduler.drain();
    await this.loaded.pool.close();
    await this.loaded.checkpoint.close();
  }
}

/** The precision the replicas run, 'mixed' when they differ; undefined when none has started. */
export function precisionOf(replicas: PoolReplicaInfo[]): Precision | 'mixed' | undefined {
  const precisions = new Set(replicas.flatMap((r) => (r.precision ? [r.precision] : [])));
  return precisions.size > 1 ? 'mixed' : [...precisions][0];
}
