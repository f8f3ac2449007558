// The parent side of a replica: forks replica-process.js, feeds it one batch at a time (FIFO),
// and survives its death. A crash, abort or hang (run past runTimeoutMs → SIGKILL) rejects the
// batch in flight with a ReplicaError and restarts the process with backoff, a bounded number of
// times in a row; the events let a server report health. A stopped or frozen process (its
// heartbeat unanswered for hangTimeoutMs, idle or busy) is killed and restarted the same way. Nothing here waits on inference. A GPU
// the child cannot use is decided here: the cpu with the cpu's graphs (ModelSource), or refused.
import { EventEmitter } from 'node:events';
import { outputsToFetch, type SequenceResult } from './batch.js';
import { formatDevice, parseDevice } from './devices.js';
import { oneLine, ReplicaError } from './errors.js';
import type { ReadyMessage, ReplyMessage } from './protocol.js';
import { ReplicaChild } from './replica-child.js';
import { DEFAULT_HANG_TIMEOUT_MS, type CrashEvent, type DeviceModels, type ReplicaFault, type ReplicaInfo, type ReplicaOptions, type ReplicaState, type RestartPolicy, type RunRequest } from './replica-types.js';
import { DEFAULT_FILE_TRANSFER_MIN_BYTES, DEFAULT_TRANSFER_DIR, readResultFile, removeQuietly, TransferWatch, type Slot } from './transfer.js';

export { DEFAULT_HANG_TIMEOUT_MS } from './replica-types.js';
export type { CrashEvent, DeviceModels, ModelSource, ReplicaFault, ReplicaInfo, ReplicaOptions, ReplicaState, RestartPolicy, RunRequest } from './replica-types.js';

const ESM_PAD_TOKEN_ID = 1;

/** A failure as the reason for giving up states it (health, a 503): one line, without the process's last output (a native stack). */
const summary = (message: string): string => oneLine(message.split('; last output: ')[0]);

interface ReplicaEvents {
  ready: [ReplicaInfo];
  crashed: [CrashEvent];
  restarted: [ReplicaInfo];
  failed: [ReplicaError];
  /** A line the child wrote to stdout/stderr, or a warning about its results' transfer. */
  log: [string];
}

interface Job extends RunRequest {
  /** Rerun of a batch whose result file could not be read: no file this time. */
  inline?: boolean;
  resolve: (results: SequenceResult[]) => void;
  reject: (err: ReplicaError) => void;
}

interface SentJob extends Job {
  id: number;
  resultFile?: string;
}

export class Replica extends EventEmitter<ReplicaEvents> {
  private readonly name: string;
  private readonly policy: RestartPolicy;
  private readonly runTimeoutMs: number;
  private readonly hangTimeoutMs: number;
  private readonly initTimeoutMs: number;
  private state: ReplicaState = 'starting';
  private child?: ReplicaChild;
  private spawning?: Promise<void>;
  private ready!: ReadyMessage;
  /** The graphs the current process loaded. */
  private loaded!: DeviceModels;
  private readonly queue: Job[] = [];
  private readonly transfer: TransferWatch;
  private inFlight?: SentJob;
  /** Result files still being read: close() waits for them too. */
  private pendingReads = 0;
  private runTimer?: NodeJS.Timeout;
  private restartTimer?: NodeJS.Timeout;
  private idleWaiters: (() => void)[] = [];
  private closing?: Promise<void>;
  private nextRunId = 1;
  private batchesRun = 0;
  private restarts = 0;
  private hangs = 0;
  private lastFault?: ReplicaFault;
  private failuresInARow = 0;
  /** What the latest crash, hang or failed restart said (the reason given when it gives up). */
  private lastFailure = '';
  private spawned = 0;
  /** The process close() is stopping (kill() ends it too). */
  private stoppingChild?: ReplicaChild;

  private constructor(private readonly opts: ReplicaOptions) {
    super();
    this.name = opts.name ?? opts.device;
    this.policy = { maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 10_000, ...opts.restart };
    this.runTimeoutMs = opts.runTimeoutMs ?? 600_000;
    this.hangTimeoutMs = opts.hangTimeoutMs ?? DEFAULT_HANG_TIMEOUT_MS;
    this.initTimeoutMs = opts.initTimeoutMs ?? 300_000;
    this.transfer = new TransferWatch(opts.transferDir ?? DEFAULT_TRANSFER_DIR, this.name, (line) => this.emit('log', line));
  }

  /** Forks the child and resolves once its session is ready; rejects with a ReplicaError if it cannot start. */
  static async start(opts: ReplicaOptions): Promise<Replica> {
    parseDevice(opts.device); // a bad spec fails here, before any process is forked
    const replica = new Replica(opts);
    await replica.spawn();
    replica.becomeReady();
    return replica;
  }

  async run(req: RunRequest): Promise<SequenceResult[]> {
    this.validate(req);
    if (this.closing) throw new ReplicaError('closed', `replica ${this.name} is closed`);
    if (this.state === 'failed') throw new ReplicaError('failed', `replica ${this.name} has failed`);
    if (outputsToFetch(req.want).length === 0) return req.tokens.map(() => ({}));
    return new Promise((resolve, reject) => {
      this.queue.push({ ...req, resolve, reject });
      this.pump();
    });
  }

  info(): ReplicaInfo {
    const { actual, fallbackReason, numLayers } = this.ready;
    return {
      name: this.name, requested: this.opts.device, actual, fallbackReason, precision: this.loaded.precision, pid: this.child?.pid,
      state: this.state, busy: this.inFlight !== undefined, queued: this.queue.length,
      batchesRun: this.batchesRun, restarts: this.restarts, hangs: this.hangs, ...(this.lastFault ? { lastFault: this.lastFault } : {}),
      numLayers, inlineFallbacks: this.transfer.fallbacks,
    };
  }

  /** Serves the work already accepted, then ends the child process. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.inFlight || this.queue.length) await new Promise<void>((r) => this.idleWaiters.push(r));
      clearTimeout(this.restartTimer);
      await this.spawning?.catch(() => undefined);
      const child = this.detachChild();
      this.stoppingChild = child;
      if (this.state !== 'failed') this.state = 'closing';
      if (child) await child.stop();
      if (this.state !== 'failed') this.state = 'closed';
    })();
    return this.closing;
  }

  /**
   * Ends the process now (SIGKILL) without finishing accepted work or restarting: for a process
   * about to exit in a hurry, so that no replica (busy, or hung) outlives it.
   */
  kill(): void {
    this.closing ??= Promise.resolve();
    clearTimeout(this.restartTimer);
    clearTimeout(this.runTimer);
    (this.detachChild() ?? this.stoppingChild)?.kill();
    if (this.state !== 'failed') this.state = 'closed';
  }

  private validate({ tokens, want }: RunRequest): void {
    const bad = (why: string) => new ReplicaError('invalid-request', `replica ${this.name}: ${why}`);
    if (!Array.isArray(tokens) || tokens.length === 0) throw bad('a run needs at least one sequence');
    if (!tokens.every((t) => t instanceof Int32Array && t.length >= 2)) {
      throw bad('every sequence must be an Int32Array holding at least cls and eos');
    }
    for (const layer of [...(want.hidden ?? []), ...(want.mean ?? []), ...(want.bos ?? [])]) {
      if (!Number.isInteger(layer) || layer < 0 || layer > this.ready.numLayers) {
        throw bad(`layer ${layer} is outside 0 … ${this.ready.numLayers}`);
      }
    }
    if (want.contacts && !this.loaded.models.contacts) throw bad('contacts need a contacts model');
  }

  private spawn(): Promise<void> {
    this.spawning = this.spawnChild().finally(() => (this.spawning = undefined));
    return this.spawning;
  }

  private graphsFor(device: string): Promise<DeviceModels> {
    const { models } = this.opts;
    return typeof models === 'function' ? models(device) : Promise.resolve({ models });
  }

  private async spawnChild(): Promise<void> {
    // Only the first process is faulty, so a test can see the restarted one serve.
    const faultInjection = this.spawned++ === 0 ? this.opts.faultInjection : undefined;
    const initFor = (device: string, graphs: DeviceModels, fallbackReason?: string) => ({
      type: 'init', device, models: graphs.models,
      padTokenId: this.opts.padTokenId ?? ESM_PAD_TOKEN_ID, intraOpNumThreads: this.opts.intraOpNumThreads,
      fileTransferMinBytes: this.opts.fileTransferMinBytes ?? DEFAULT_FILE_TRANSFER_MIN_BYTES,
      faultInjection, fallbackReason,
    }) as const;
    let graphs = await this.graphsFor(this.opts.device);
    const child = new ReplicaChild();
    this.child = child;
    child.on('log', (line) => this.emit('log', line));
    child.on('reply', (message) => this.onReply(child, message));
    child.on('gone', (how) => this.onGone(child, how));
    // The device could not be used: the cpu, with the cpu's graphs (fp32 where the precision was left to the device).
    const fallBack = async (reason: string) => {
      const why = `${formatDevice(parseDevice(this.opts.device))} unavailable: ${oneLine(reason)}`;
      if (this.opts.allowCpuFallback === false) {
        throw new ReplicaError('device-unavailable', `replica ${this.name}: ${why}; falling back to cpu is not allowed`);
      }
      graphs = await this.graphsFor('cpu');
      return initFor('cpu', graphs, why);
    };
    try {
      this.ready = await child.handshake(initFor(this.opts.device, graphs), this.initTimeoutMs, this.name, fallBack);
      this.loaded = graphs;
      child.watchHeartbeat(this.hangTimeoutMs, (silentMs) => this.onHung(child, silentMs));
    } catch (err) {
      if (this.child === child) this.child = undefined;
      throw err;
    }
  }

  private becomeReady(): void {
    this.state = 'ready';
    this.emit('ready', this.info());
    this.pump();
  }

  /** Starts the next queued batch when the child is free; wakes close() when all work is done. */
  private pump(): void {
    if (!this.inFlight && this.queue.length === 0) {
      if (this.pendingReads === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      return;
    }
    if (this.state !== 'ready' || this.inFlight || !this.child) return;
    const id = this.nextRunId++;
    const next = this.queue.shift()!;
    const resultFile = this.transfer.fileFor(this.child.pid ?? 0, id, next.inline === true);
    const job = { ...next, id, resultFile };
    this.inFlight = job;
    this.runTimer = setTimeout(() => this.onTimeout(), this.runTimeoutMs);
    this.child.send({ type: 'run', id, tokens: job.tokens, want: job.want, resultFile });
  }

  private onReply(child: ReplicaChild, message: ReplyMessage): void {
    const job = this.inFlight;
    if (child !== this.child || !job || message.id !== job.id) return;
    clearTimeout(this.runTimer);
    this.inFlight = undefined;
    if (message.type === 'run-error') {
      job.reject(new ReplicaError('run-failed', `replica ${this.name}: ${message.message}`));
    } else {
      this.batchesRun++;
      this.failuresInARow = 0;
      if (message.type === 'result-file') this.readResults(job, message.layout);
      else {
        if (message.inlineBecause) this.transfer.fellBack('unwritable', message.inlineBecause);
        job.resolve(message.results);
      }
    }
    this.pump(); // the child is free while the parent reads a result file
  }

  private readResults(job: SentJob, layout: SequenceResult<Slot>[]): void {
    this.pendingReads++;
    readResultFile(job.resultFile!, layout)
      .then(job.resolve, (err: Error) => {
        // Missing or truncated (TransferError): neither the batch's fault (no split) nor the
        // process's (no restart). Run it again here, first in line, and have it come inline.
        if (this.state === 'failed') return job.reject(new ReplicaError('failed', `replica ${this.name} has failed`));
        this.transfer.fellBack('unreadable', err.message);
        this.queue.unshift({ ...job, inline: true });
      })
      .finally(() => {
        this.pendingReads--;
        this.pump();
      });
  }

  private onGone(child: ReplicaChild, how: string): void {
    if (child !== this.child) return; // already handled (timeout kill, close)
    this.detachChild();
    this.lose('crashed', `replica ${this.name} (pid ${child.pid}) ${how}`, child.lastOutput());
  }

  private onTimeout(): void {
    const child = this.detachChild();
    child?.kill();
    this.lose('timeout', `replica ${this.name} (pid ${child?.pid}) ran past ${this.runTimeoutMs} ms and was killed`);
  }

  /** No heartbeat answer (SIGSTOP, a frozen cgroup, a machine swapping to death): kill it (SIGKILL ends a stopped process too, so a SIGCONT later finds nothing) and restart. */
  private onHung(child: ReplicaChild, silentMs: number): void {
    if (child !== this.child) return; // already replaced (crash, timeout, close)
    this.detachChild();
    child.kill();
    this.hangs++;
    this.lose('hung', `replica ${this.name} (pid ${child.pid}) did not answer its heartbeat for ${silentMs} ms (hang timeout ${this.hangTimeoutMs} ms) and was killed`);
  }

  private detachChild(): ReplicaChild | undefined {
    const child = this.child;
    this.child = undefined;
    return child;
  }

  /** 'hung' rejects the batch as 'timeout' (a retryable replica fault, like a run past runTimeoutMs). */
  private lose(reason: 'crashed' | 'timeout' | 'hung', message: string, lastOutput = ''): void {
    clearTimeout(this.runTimer);
    const job = this.inFlight;
    this.inFlight = undefined;
    const detail = `${message}${job ? ` during a batch of ${job.tokens.length} sequences` : ''}${lastOutput}`;
    if (job?.resultFile) void removeQuietly(job.resultFile); // the child may have written it before dying
    job?.reject(new ReplicaError(reason === 'hung' ? 'timeout' : reason, detail));
    this.lastFailure = summary(detail);
    this.lastFault = { reason, message: this.lastFailure, at: new Date().toISOString() };
    this.emit('crashed', { reason, message: detail });
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.closing && this.queue.length === 0) {
      this.pump(); // nothing left to serve: let close() finish instead of restarting
      return;
    }
    this.failuresInARow++;
    if (this.failuresInARow > this.policy.maxAttempts) return this.giveUp();
    this.state = 'restarting';
    const delay = Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** (this.failuresInARow - 1));
    const respawn = () =>
      this.spawn().then(
        () => {
          this.restarts++;
          this.becomeReady();
          this.emit('restarted', this.info());
        },
        (err: ReplicaError) => {
          this.lastFailure = summary(err.message);
          this.lastFault = { reason: 'init-failed', message: this.lastFailure, at: new Date().toISOString() };
          this.emit('crashed', { reason: 'init-failed', message: err.message });
          this.scheduleRestart();
        },
      );
    const hold = this.policy.beforeRestart;
    this.restartTimer = setTimeout(() => {
      if (!hold) return void respawn();
      void hold().then(() => void (this.closing || respawn())); // closed or killed while held: no new process
    }, delay);
    this.pump();
  }

  private giveUp(): void {
    this.state = 'failed';
    const err = new ReplicaError('failed', `replica ${this.name} gave up after ${this.failuresInARow} failures in a row; the last: ${this.lastFailure}`);
    for (const job of this.queue.splice(0)) job.reject(err);
    this.emit('failed', err);
    this.pump();
  }
}
