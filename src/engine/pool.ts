// The replicas of one server as the scheduler's Executor: started together, addressed by index.
// A replica that cannot start is kept as a 'failed' entry (so health and metrics can show it)
// while the others serve; only a pool where no replica starts is an error.
import { EventEmitter } from 'node:events';
import type { Executor, SequenceResult, Want } from '../contract/index.js';
import { ReplicaError } from './errors.js';
import type { Precision } from '../compile/index.js';
import type { FaultInjection, ModelPaths } from './protocol.js';
import { Replica, type ModelSource, type ReplicaFault, type ReplicaState, type RestartPolicy } from './replica.js';

export type PoolLogLevel = 'info' | 'warn' | 'error';

export interface PoolReplicaOptions {
  device: string;
  intraOpNumThreads?: number;
}

export interface PoolOptions {
  replicas: PoolReplicaOptions[];
  /** Fixed graphs for every replica, or the graphs per device (see ReplicaOptions.models). */
  models: ModelPaths | ModelSource;
  /** false: a replica whose GPU is unusable fails the whole start (ReplicaError 'device-unavailable'). Default true. */
  allowCpuFallback?: boolean;
  padTokenId: number;
  runTimeoutMs?: number;
  /** A replica whose heartbeat goes unanswered this long is killed and restarted (see ReplicaOptions.hangTimeoutMs). */
  hangTimeoutMs?: number;
  /** How each replica restarts after a crash or hang (Replica's defaults: 5 tries in a row, 250 ms doubling to 10 s). */
  restart?: Partial<RestartPolicy>;
  log?: (level: PoolLogLevel, message: string) => void;
  /** Test-only: a fault for the replica of that index (see Replica's faultInjection). */
  faultInjection?: Partial<Record<number, FaultInjection>>;
}

export interface PoolReplicaInfo {
  index: number;
  /** The device asked for. */
  device: string;
  /** The device in use ("cpu" after a fallback); the requested one while it never started. */
  actual: string;
  state: ReplicaState;
  /** Precision of the graphs it runs (on the device it obtained); undefined while it never started. */
  precision?: Precision;
  /** The replica's current process (none while it restarts, or when it never started or gave up). */
  pid?: number;
  /** Running a batch now. */
  busy: boolean;
  fallbackReason?: string;
  /** Why the replica could not start, or gave up. */
  error?: string;
  batchesRun: number;
  restarts: number;
  /** Processes killed because their heartbeat went unanswered (stopped, frozen). */
  hangs: number;
  /** The latest crash, run timeout, hang or failed restart (kept once it serves again); absent if none. */
  lastFault?: ReplicaFault;
}

export type ReplicaDownReason = 'crashed' | 'timeout' | 'hung' | 'init-failed' | 'failed';

interface PoolEvents {
  /** The replica serves again after a restart. */
  'replica-up': [index: number, info: PoolReplicaInfo];
  /** The replica stopped serving: crashed, ran past its run timeout or hung (a restart follows), or gave up ('failed'). */
  'replica-down': [index: number, reason: ReplicaDownReason, message: string];
}

interface Slot {
  index: number;
  device: string;
  replica?: Replica;
  /** Why it never started or gave up. */
  error?: string;
}

export class ReplicaPool extends EventEmitter<PoolEvents> implements Executor {
  private closing?: Promise<void>;

  private constructor(private readonly slots: Slot[]) {
    super();
  }

  /**
   * Starts every replica in parallel. Resolves once each has started or failed to; rejects only
   * when none started. Events are emitted from then on: read replicaInfo() for the state at start.
   */
  static async start(opts: PoolOptions): Promise<ReplicaPool> {
    if (opts.replicas.length === 0) throw new Error('a replica pool needs at least one device');
    const log = opts.log ?? (() => undefined);
    const settled = await Promise.allSettled(
      opts.replicas.map((r, index) =>
        Replica.start({
          device: r.device,
          intraOpNumThreads: r.intraOpNumThreads,
          models: opts.models,
          allowCpuFallback: opts.allowCpuFallback,
          padTokenId: opts.padTokenId,
          runTimeoutMs: opts.runTimeoutMs,
          hangTimeoutMs: opts.hangTimeoutMs,
          restart: opts.restart,
          name: `${index} (${r.device})`,
          faultInjection: opts.faultInjection?.[index],
        }),
      ),
    );
    const slots = settled.map((outcome, index): Slot => {
      const device = opts.replicas[index].device;
      if (outcome.status === 'fulfilled') return { index, device, replica: outcome.value };
      const error = outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason);
      log('error', `replica ${index} on ${device} failed to start: ${error}`);
      return { index, device, error };
    });
    // A GPU that may not fall back is fatal even while other replicas serve: an operator who
    // pays for GPUs wants no server at all rather than one quietly on CPU.
    const refused = settled.find((o) => o.status === 'rejected' && o.reason instanceof ReplicaError && o.reason.reason === 'device-unavailable');
    if (refused?.status === 'rejected') {
      await Promise.all(slots.map((s) => s.replica?.close()));
      throw refused.reason;
    }
    if (slots.every((s) => !s.replica)) {
      const reasons = slots.map((s) => `${s.index} (${s.device}): ${s.error}`).join('; ');
      throw new ReplicaError('init-failed', `no replica could start: ${reasons}`);
    }
    const pool = new ReplicaPool(slots);
    for (const slot of slots) if (slot.replica) pool.watch(slot, slot.replica, log);
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  /** Serving, or restarting after a crash (work queued meanwhile runs once it is back). */
  isUp(index: number): boolean {
    const state = this.slots[index]?.replica?.info().state;
    return state === 'ready' || state === 'restarting';
  }

  /** Ready now: serving, not restarting (the scheduler sends batches only to these). */
  isReady(index: number): boolean {
    return this.slots[index]?.replica?.info().state === 'ready';
  }

  /** Replicas that can take work now (ready, not restarting). */
  upCount(): number {
    return this.slots.filter((s) => s.replica?.info().state === 'ready').length;
  }

  /**
   * Why no replica will serve again — every one failed for good (never started, or gave up after
   * its restarts), each one's error — or undefined while one serves or is restarting.
   */
  unavailableReason(): string | undefined {
    const infos = this.replicaInfo();
    if (!infos.every((r) => r.state === 'failed')) return undefined;
    return `every replica has failed (${infos.map((r) => `${r.index} (${r.device}): ${r.error ?? 'failed'}`).join('; ')})`;
  }

  /** True when every replica that started is ready (none restarting, failed or closing). */
  get ready(): boolean {
    const started = this.slots.filter((s) => s.replica);
    return !this.closing && started.every((s) => s.replica!.info().state === 'ready');
  }

  run(index: number, tokens: Int32Array[], want: Want): Promise<SequenceResult[]> {
    const slot = this.slots[index];
    if (!slot) return Promise.reject(new ReplicaError('invalid-request', `no replica ${index} (pool of ${this.size})`));
    if (!slot.replica) return Promise.reject(new ReplicaError('failed', `replica ${index} (${slot.device}) did not start: ${slot.error}`));
    return slot.replica.run({ tokens, want });
  }

  replicaInfo(): PoolReplicaInfo[] {
    return this.slots.map(({ index, device, replica, error }) => {
      if (!replica) return { index, device, actual: device, state: 'failed', busy: false, error, batchesRun: 0, restarts: 0, hangs: 0 };
      const info = replica.info();
      return {
        index, device, actual: info.actual, state: info.state, busy: info.busy,
        ...(info.precision ? { precision: info.precision } : {}),
        ...(info.pid === undefined ? {} : { pid: info.pid }),
        ...(info.fallbackReason ? { fallbackReason: info.fallbackReason } : {}),
        ...(error ? { error } : {}),
        batchesRun: info.batchesRun, restarts: info.restarts, hangs: info.hangs,
        ...(info.lastFault ? { lastFault: info.lastFault } : {}),
      };
    });
  }

  /** Lets every replica finish the work it accepted, then ends their processes. */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.slots.map((s) => s.replica?.close())).then(() => undefined);
    return this.closing;
  }

  /** Kills every replica process at once (see Replica.kill): for a forced exit. */
  kill(): void {
    for (const slot of this.slots) slot.replica?.kill();
  }

  private watch(slot: Slot, replica: Replica, log: (level: PoolLogLevel, message: string) => void): void {
    const { index } = slot;
    const info = replica.info();
    log(info.fallbackReason ? 'warn' : 'info', `replica ${index} ready on ${describe(replica)}, pid ${info.pid}`);
    replica.on('log', (line) => log('warn', `replica ${index}: ${line}`));
    replica.on('crashed', ({ reason, message }) => {
      log('error', message);
      this.emit('replica-down', index, reason, message);
    });
    replica.on('restarted', () => {
      log(replica.info().fallbackReason ? 'warn' : 'info', `replica ${index} restarted on ${describe(replica)}`);
      this.emit('replica-up', index, this.replicaInfo()[index]);
    });
    replica.on('failed', (err) => {
      slot.error = err.message;
      log('error', err.message);
      this.emit('replica-down', index, 'failed', err.message);
    });
  }
}

/** "cuda:0 (fp16)", or after a fallback "cpu (fp32; fallback from cuda:0: cuda:0 unavailable: …)". */
function describe(replica: Replica): string {
  const { actual, precision, fallbackReason, requested } = replica.info();
  const notes = [precision, fallbackReason && `fallback from ${requested}: ${fallbackReason}`].filter(Boolean);
  return notes.length ? `${actual} (${notes.join('; ')})` : actual;
}
