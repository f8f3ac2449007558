// What the routes serve from: the model, its replicas and the scheduler, plus the service state
// (initializing → ready → draining, or unhealthy) that health and readiness report.
import { existsSync } from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import type { Esm2Checkpoint } from '../model/checkpoint.js';
import { DEMO_MODEL_NAME, ensureDemoCheckpoint } from '../model/demo.js';
import { prepareModel } from '../engine/prepare.js';
import { resolveDevices } from '../engine/detect.js';
import { ReplicaPool } from '../engine/pool.js';
import { Scheduler } from '../scheduler/scheduler.js';
import type { BatchReport } from '../scheduler/types.js';
import type { Precision } from '../compile/index.js';
import { MaskedLogProbCache } from '../tasks/masked-marginals.js';
import type { Settings } from './settings.js';
import type { Metrics } from './metrics.js';

export type ServiceState = 'initializing' | 'ready' | 'draining' | 'unhealthy';

export interface LoadedModel {
  checkpoint: Esm2Checkpoint;
  pool: ReplicaPool;
  scheduler: Scheduler;
  precision: Precision;
  devicesDescription: string;
  /** Residues per window in truncation "window" mode (MAX_SEQUENCE_LENGTH). */
  windowSize: number;
  /** Masked log-probability matrices of recently scored proteins (variant scores, PLL). */
  maskedCache: MaskedLogProbCache;
}

export class ServingRuntime {
  state: ServiceState = 'initializing';
  message = 'loading the model';
  /** The name every response reports. */
  modelName: string;
  source: 'local directory' | 'built-in demo';
  private loaded?: LoadedModel;

  constructor(
    readonly settings: Settings,
    readonly metrics: Metrics,
    private readonly log: FastifyBaseLogger,
  ) {
    this.modelName = settings.modelName ?? DEMO_MODEL_NAME;
    this.source = settings.modelName ? 'local directory' : 'built-in demo';
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
    let modelDir = settings.modelName;
    if (modelDir === undefined) {
      modelDir = await ensureDemoCheckpoint();
      log.warn(`MODEL_NAME is not set: serving the built-in DEMO checkpoint (${DEMO_MODEL_NAME}) from ${modelDir}. Its outputs are meaningless; set MODEL_NAME to a checkpoint directory.`);
    } else if (!existsSync(modelDir)) {
      throw new Error(`MODEL_NAME=${modelDir}: no such directory (HuggingFace hub ids are not supported yet; give a local checkpoint directory)`);
    }
    const devices = await resolveDevices(settings.devices);
    log.info({ devices: devices.description }, 'devices');
    const prepared = await prepareModel({
      modelDir,
      device: devices.replicas[0].device,
      precision: settings.precision,
      contacts: true,
      log: (message) => log.info(message),
    });
    const pool = await ReplicaPool.start({
      replicas: devices.replicas,
      models: prepared.models,
      padTokenId: prepared.checkpoint.tokenizer.padId,
      log: (level, message) => log[level](message),
    });
    for (const info of pool.replicaInfo()) this.metrics.replicaUp.set({ device: info.device }, info.state === 'failed' ? 0 : 1);
    pool.on('replica-up', (index: number) => this.metrics.replicaUp.set({ device: pool.replicaInfo()[index].device }, 1));
    pool.on('replica-down', (index: number) => this.metrics.replicaUp.set({ device: pool.replicaInfo()[index].device }, 0));
    const scheduler = new Scheduler(pool, {
      maxBatchTokens: settings.maxBatchTokens,
      maxBatchSize: settings.batchQueueMaxSize,
      maxWaitMs: settings.batchQueueMaxWaitMs,
      batching: settings.batchQueueEnabled,
      maxQueuedTokens: settings.maxQueuedTokens,
    });
    scheduler.on('batch', (report: BatchReport) => this.recordBatch(report, pool));
    return { checkpoint: prepared.checkpoint, pool, scheduler, precision: prepared.precision, devicesDescription: devices.description, windowSize: settings.maxSequenceLength, maskedCache: new MaskedLogProbCache() };
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
