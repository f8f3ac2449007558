// What the routes serve from: the model (or an ensemble's members, server/members.ts), its replicas
// and the scheduler, plus the service state (initializing → ready → draining, or unhealthy) that
// health and readiness report.
import type { FastifyBaseLogger } from 'fastify';
import type { Esm2Checkpoint } from '../model/checkpoint.js';
import { DEFAULT_MODEL_REPO, resolveModel } from '../model/hub/index.js';
import { prepareModel, type PreparedModel } from '../engine/prepare.js';
import { resolveDevices, type ResolvedDevices } from '../engine/detect.js';
import type { ReplicaPool, PoolOptions, PoolReplicaInfo } from '../engine/pool.js';
import type { Scheduler, SchedulerOptions } from '../scheduler/scheduler.js';
import type { Precision } from '../compile/index.js';
import type { MaskedLogProbCache } from '../tasks/masked-marginals.js';
import { parseModelNames, type Settings } from './settings.js';
import { batchMemoryBound, type ModelDims } from '../contract/index.js';
import type { ModelInference } from '../tasks/inference.js';
import { ResultMemory } from '../tasks/cost.js';
import { lengthLimit, type LengthLimit } from '../tasks/sequences.js';
import type { Metrics } from './metrics.js';
import { checkpointIdentity, licenseWarning } from '../model/identity.js';
import { InputError } from '../tasks/errors.js';
import { ensembleMismatch, notInterchangeable, replicaLabel, shareDevices, type Member } from './members.js';
import { startModel } from './start-model.js';

/** The batch-queue settings as the scheduler takes them (the server and the engine-only benchmark). */
export function schedulerOptions(settings: Settings, dims?: ModelDims): SchedulerOptions {
  return {
    ...(dims ? { batchMemory: batchMemoryBound(dims, settings.maxBatchMemoryBytes) } : {}),
    maxBatchTokens: settings.maxBatchTokens,
    maxBatchSize: settings.batchQueueMaxSize,
    maxWaitMs: settings.batchQueueMaxWaitMs,
    priorityMaxWaitMs: settings.tierMaxWaitMs,
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
  /** The name every response reports (the demo's name when the demo is served; an ensemble's comma list as given). */
  modelName: string;
  /** "huggingface hub (repo@commit)", "local directory" or "built-in demo"; "resolving" until known. */
  source = 'resolving';
  /** Why the built-in demo checkpoint (random weights) serves; undefined while a real model does. */
  demoReason?: string;
  /** Why DEVICES=auto chose cpu although NVIDIA GPUs are here (detect.ts gpuFallback); /health reports it. */
  devicesFallback?: string;
  /** The checkpoints MODEL_NAME names, in its order (one unless an ensemble). */
  readonly names: readonly string[];
  /** Every checkpoint served, in MODEL_NAME's order, once loaded (an ensemble has several: server/members.ts). */
  members: Member[] = [];

  constructor(
    readonly settings: Settings,
    readonly metrics: Metrics,
    private readonly log: FastifyBaseLogger,
    private readonly engineHooks: EngineTestHooks = {},
  ) {
    this.modelName = settings.modelName ?? DEFAULT_MODEL_REPO;
    metrics.queueLimitTokens.set(settings.maxQueuedTokens);
    this.names = settings.modelName === undefined ? [] : parseModelNames(settings.modelName);
  }

  /** Whether MODEL_NAME names several checkpoints. */
  get ensemble(): boolean {
    return this.names.length > 1;
  }

  /** The first (or only) loaded model; undefined until loaded. */
  get model(): LoadedModel | undefined {
    return this.members[0]?.model;
  }

  /**
   * The member `name` picks (exactly as /v1/models lists it), the first without a name; an unknown
   * name is a 422 on `model` naming the accepted ones. Only once loaded.
   */
  pick(name?: string): Member {
    if (name === undefined) return this.members[0];
    const member = this.members.find((m) => m.name === name);
    if (!member) throw new InputError('model', `no model ${JSON.stringify(name)} here; this server serves ${this.members.map((m) => JSON.stringify(m.name)).join(', ')}`);
    return member;
  }

  /** Why some member has no replica that will ever serve again (then that member, and the ensemble, cannot serve), or undefined. */
  unavailableReason(): string | undefined {
    for (const m of this.members) {
      const why = m.model.pool.unavailableReason();
      if (why) return this.ensemble ? `${m.name}: ${why}` : why;
    }
    return undefined;
  }

  async start(): Promise<void> {
    try {
      this.members = await this.load();
      this.state = 'ready';
      this.message = 'model loaded and every replica is up';
      this.log.info({ model: this.modelName, devices: this.model!.devicesDescription, precision: this.model!.precision }, 'ready');
    } catch (err) {
      this.state = 'unhealthy';
      this.message = err instanceof Error ? err.message : String(err);
      throw err;
    }
  }

  private async load(): Promise<Member[]> {
    const { settings, log } = this;
    const names: (string | undefined)[] = this.names.length > 0 ? [...this.names] : [undefined];
    const prepared: { name: string; source: string; model: PreparedModel; limit: LengthLimit }[] = [];
    const closeAll = async () => void (await Promise.all(prepared.map((p) => p.model.checkpoint.close())));
    let devices: ResolvedDevices | undefined;
    try {
      for (const name of names) {
        // A local directory, a hub repository (downloaded into the shared cache), or — MODEL_NAME
        // unset and the default model out of reach — the demo (see model/hub/resolve.ts).
        this.message = 'resolving the model';
        const label = name ?? this.modelName;
        const resolved = await resolveModel(name, {
          log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
          allowDemo: settings.allowDemoModel,
          // /ready's detail while a large model downloads, so a probe or a person sees it progress.
          onProgress: (file, bytes, total) => {
            this.message = `downloading ${label}: ${file} ${total ? `${Math.floor((100 * bytes) / total)} %` : `${bytes} bytes`}`;
          },
        });
        if (!this.ensemble) {
          this.modelName = resolved.name;
          this.source = resolved.source;
        }
        if (resolved.demo) this.demoReason = resolved.demoReason ?? 'the built-in demo checkpoint';
        this.metrics.demoModel.set(this.demoReason ? 1 : 0);
        this.message = 'loading the model';
        devices ??= await this.resolveDevices();
        const model = await prepareModel({
          modelDir: resolved.dir,
          device: devices.replicas[0].device,
          precision: settings.precision,
          contacts: true,
          log: (message, level = 'info') => log[level](message),
        });
        const licenseNote = licenseWarning(resolved.name, checkpointIdentity(model.checkpoint));
        if (licenseNote) log.warn(licenseNote);
        const limit = lengthLimit(model.checkpoint.config, settings.maxSequenceLength);
        prepared.push({ name: resolved.name, source: resolved.source, model, limit });
        // Refused before any replica starts: members must be interchangeable for scoring.
        const first = prepared[0];
        const why = notInterchangeable(first.model.checkpoint, first.limit, model.checkpoint, limit);
        if (why) throw ensembleMismatch(first.name, resolved.name, why);
      }
    } catch (err) {
      await closeAll();
      throw err;
    }
    if (this.ensemble) this.source = `ensemble of ${prepared.length}: ${prepared.map((p) => p.source).join('; ')}`;
    const shared = shareDevices(devices!, prepared.length);
    if (this.ensemble) log.info({ devices: shared.description }, 'ensemble devices');
    // One result-memory budget for the whole server, whichever member a request runs on.
    const resultMemory = new ResultMemory(settings.maxResultBytesInFlight);
    const members: Member[] = [];
    try {
      for (const [k, p] of prepared.entries()) {
        const context = { settings, log, metrics: this.metrics, engineHooks: this.engineHooks, onBatch: () => this.updateQueueGauges() };
        const model = await startModel(context, { prepared: p.model, devices: shared, limit: p.limit, resultMemory, replicaLabel: (i) => replicaLabel(k, i, this.ensemble) });
        members.push({ name: p.name, source: p.source, model });
      }
    } catch (err) {
      await Promise.all(members.map((m) => m.model.pool.close()));
      await closeAll();
      throw err;
    }
    return members;
  }

  private async resolveDevices(): Promise<ResolvedDevices> {
    const { settings, log } = this;
    const devices = await resolveDevices(settings.devices);
    log.info({ devices: devices.description }, 'devices');
    if (devices.gpuFallback) {
      if (!settings.allowCpuFallback) throw new Error(`DEVICES=${settings.devices} would run on cpu: ${devices.gpuFallback} (ALLOW_CPU_FALLBACK=false)`);
      this.devicesFallback = `DEVICES=${settings.devices} runs on cpu: ${devices.gpuFallback}`;
      log.warn(this.devicesFallback);
      this.metrics.replicaFallbacks.inc({ requested: settings.devices, device: 'cpu' });
    }
    return devices;
  }

  updateQueueGauges(): void {
    let sequences = 0;
    let tokens = 0;
    for (const member of this.members) {
      const stats = member.model.scheduler.stats();
      sequences += stats.queuedSequences;
      tokens += stats.queuedTokens;
    }
    this.metrics.queueSequences.set(sequences);
    this.metrics.queueTokens.set(tokens);
  }

  /** Answers every request with work queued or running now with `error` (a drain out of time); returns how many. */
  abortAll(error: unknown): number {
    return this.members.reduce((n, m) => n + m.model.scheduler.abortAll(error), 0);
  }

  /** Kills the replica processes at once, for an exit that cannot wait for the drain. */
  killReplicas(): void {
    for (const m of this.members) m.model.pool.kill();
  }

  /** Stops taking work, lets queued and running work finish (every member's), closes the replicas. */
  async drain(): Promise<void> {
    this.state = 'draining';
    this.message = 'shutting down: finishing accepted work';
    await Promise.all(
      this.members.map(async ({ model }) => {
        await model.scheduler.drain();
        await model.pool.close();
        await model.checkpoint.close();
      }),
    );
  }
}

/** The precision the replicas run, 'mixed' when they differ; undefined when none has started. */
export function precisionOf(replicas: PoolReplicaInfo[]): Precision | 'mixed' | undefined {
  const precisions = new Set(replicas.flatMap((r) => (r.precision ? [r.precision] : [])));
  return precisions.size > 1 ? 'mixed' : [...precisions][0];
}
