// The one way into inference: requests become per-sequence work items, idle replicas take
// length-bucketed batches of them, and each request gets back exactly what it asked for.
// Everything is promise/timer driven; no call here blocks or waits on a replica.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { planBatch, type BatchLimits, type BatchMemory, type BatchPlan } from './batch-selection.js';
import { CancelledError, OverloadedError, SchedulerTimeoutError, UnavailableError } from './errors.js';
import { PendingRequest } from './pending-request.js';
import { anchorRank, overdue, type RankContext } from './priority.js';
import { ThroughputMeter } from './throughput.js';
import { faultKindOf } from '../contract/index.js';
import type { BatchReport, DropReport, Executor, ItemOutcome, RetryReport, SchedulerOptions, SchedulerStats, SequenceResult, SubmitOptions, WorkItem } from './types.js';
import { validateItems, validateOptions, validateSubmitOptions } from './validation.js';
import { laneOf, mergeWants, pickWanted, type Lane } from './wants.js';
import { WorkQueue, type QueuedItem } from './work-queue.js';

export type { BatchMemory, DropReport, RetryReport, SchedulerOptions, SchedulerStats, SubmitOptions };

/** How soon to look again when work waits but no replica is up to take it. */
const STRANDED_RECHECK_MS = 100;

/** A sequence whose batches keep killing replicas fails after this many retries. */
const MAX_FAULT_RETRIES = 2;

/**
 * Emits 'batch' (a BatchReport) after every batch, whether it succeeded or failed; 'retry' (a
 * RetryReport) when a failed batch's sequences go back in the queue; 'dropped' (a DropReport) when
 * a request's queued sequences leave the queue without running.
 */
export class Scheduler extends EventEmitter {
  private readonly queue = new WorkQueue();
  private readonly busy: boolean[];
  private readonly meter = new ThroughputMeter();
  /** Per lane too: a contacts batch runs several times slower per token than a default one. */
  private readonly laneMeters: Record<Lane, ThroughputMeter> = { default: new ThroughputMeter(), contacts: new ThroughputMeter() };
  private readonly limits: BatchLimits;
  private runningBatches = 0;
  /** The items of every batch now running. */
  private readonly running = new Set<readonly QueuedItem[]>();
  /** When each flow last had a batch dispatched (a dispatch count): fair queuing serves the flow served longest ago first. */
  private readonly lastServed = new WeakMap<object, number>();
  private dispatches = 0;
  /** The last dispatch was anchored on overdue work of a larger class: the next one is not (priority.ts). */
  private lastPromoted = false;
  /** Items put back in the queue after a replica fault (a metric). */
  retriedItems = 0;
  private nextSeq = 0;
  private wakeTimer: NodeJS.Timeout | undefined;
  private pumpPending = false;
  private drainWaiters: (() => void)[] = [];

  constructor(
    private readonly executor: Executor,
    private readonly options: SchedulerOptions,
  ) {
    super();
    validateOptions(executor, options);
    this.busy = new Array<boolean>(executor.size).fill(false);
    this.limits = { maxBatchTokens: options.maxBatchTokens, maxBatchSize: options.maxBatchSize, memory: options.batchMemory };
  }

  /**
   * Queues one request's sequences; resolves with their outcomes in item order. Rejects at once,
   * queuing nothing, with OverloadedError when the queue is too full (a request larger than
   * maxQueuedTokens on its own is still taken when nothing else waits — otherwise it could never
   * run), with UnavailableError when no replica will ever run it (every one has failed), or with
   * TypeError/RangeError for malformed items.
   */
  submit(items: readonly WorkItem[], options: SubmitOptions = {}): Promise<ItemOutcome[]> {
    try {
      validateItems(items, this.executor.size);
      validateSubmitOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const { signal, timeoutMs } = options;
    // A bare abort() gives a DOMException AbortError: that is a cancellation.
    const abortError = () => (signal?.reason instanceof Error && signal.reason.name !== 'AbortError' ? signal.reason : new CancelledError());
    if (signal?.aborted) return Promise.reject(abortError());
    if (items.length === 0) return Promise.resolve([]);
    const refused = this.refusal(options.admitted ? 0 : items.reduce((sum, item) => sum + item.tokens.length, 0));
    if (refused) return Promise.reject(refused);

    const now = performance.now();
    const request = new PendingRequest(items.length);
    const flow = options.flow ?? request;
    items.forEach((item, index) => {
      const queued: QueuedItem = {
        request,
        flow,
        priority: options.priority ?? 0,
        index,
        tokens: item.tokens,
        want: item.want,
        lane: laneOf(item.want),
        replica: item.replica,
        seq: this.nextSeq++,
        enqueuedAt: now,
        attempts: 0,
        maxCompany: Infinity,
        putBack: false,
      };
      this.queue.add(queued);
      request.queued.add(queued);
    });
    if (signal) {
      const onAbort = () => this.abandon(request, abortError());
      signal.addEventListener('abort', onAbort, { once: true });
      request.onSettled(() => signal.removeEventListener('abort', onAbort));
    }
    if (timeoutMs !== undefined) {
      const timer = setTimeout(() => this.abandon(request, new SchedulerTimeoutError(timeoutMs)), timeoutMs);
      request.onSettled(() => clearTimeout(timer));
    }
    this.schedulePump();
    return request.promise;
  }

  stats(): SchedulerStats {
    return {
      queuedSequences: this.queue.size,
      queuedTokens: this.queue.queuedTokens,
      runningBatches: this.runningBatches,
      busyReplicas: this.busy.filter(Boolean).length,
    };
  }

  /**
   * Ends every request that has work queued or running with `error`, at once (a shutdown that
   * cannot wait any longer): queued work is dropped, running batches finish unheard. Returns how
   * many requests were ended.
   */
  abortAll(error: unknown): number {
    const requests = this.queue.requests();
    for (const items of this.running) for (const item of items) requests.add(item.request);
    let ended = 0;
    for (const request of requests) {
      if (request.settled) continue;
      this.abandon(request, error, 'shutdown');
      ended += 1;
    }
    return ended;
  }

  /** Resolves once nothing is queued or running (for graceful shutdown; refusing new work is the caller's job). */
  drain(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private idle(): boolean {
    return this.queue.size === 0 && this.runningBatches === 0;
  }

  private upReplicas(): boolean[] {
    return Array.from({ length: this.executor.size }, (_, replica) => this.executor.isUp(replica));
  }

  private readyReplicas(): boolean[] {
    return Array.from({ length: this.executor.size }, (_, replica) => this.executor.isReady?.(replica) ?? this.executor.isUp(replica));
  }

  /**
   * The padded-token budget of the next batch: MAX_BATCH_TOKENS, or less once the replicas' rate
   * is known, so that a batch runs about maxBatchMs (never less than one row: a longer anchor runs alone).
   */
  batchTokens(lane: Lane = 'default'): number {
    const { maxBatchMs, maxBatchTokens } = this.options;
    const perReplica = maxBatchMs === undefined ? undefined : (this.laneMeters[lane].tokensPerSecond(1) ?? this.meter.tokensPerSecond(1));
    if (perReplica === undefined) return maxBatchTokens;
    return Math.max(1, Math.min(maxBatchTokens, Math.floor((perReplica * maxBatchMs!) / 1000)));
  }

  /** The recent rate of the replicas up, in real tokens per second (undefined before any batch ran). */
  tokensPerSecond(): number | undefined {
    return this.meter.tokensPerSecond(this.upReplicas().filter(Boolean).length);
  }

  /** Looks at the queue again now, e.g. when a replica is back after a restart. */
  wake(): void {
    this.schedulePump();
  }

  /**
   * Why a new request of `tokens` tokens would be refused now — UnavailableError (no replica will
   * ever run it) or OverloadedError (the queue is too full) — or undefined when it would be taken.
   * Senders of work in parts ask this once, for their first part, then submit with `admitted`.
   */
  refusal(tokens: number): UnavailableError | OverloadedError | undefined {
    return this.unavailable() ?? (tokens > 0 ? this.overload(tokens) : undefined);
  }

  /** UnavailableError with the executor's reason when no replica will ever take work again. */
  private unavailable(): UnavailableError | undefined {
    const reason = this.executor.unavailableReason?.();
    return reason === undefined ? undefined : new UnavailableError(`no replica can serve: ${reason}`);
  }

  /** The error refusing `tokens` more, or undefined when they fit. */
  private overload(tokens: number): OverloadedError | undefined {
    const queued = this.queue.queuedTokens;
    const limit = this.options.maxQueuedTokens;
    if (queued === 0 || queued + tokens <= limit) return undefined;
    // Room comes when the queue is down to limit − tokens, or empty for a request over the limit alone.
    const excess = Math.min(queued, queued + tokens - limit);
    const replicasUp = this.upReplicas().filter(Boolean).length;
    return new OverloadedError(
      this.meter.secondsToProcess(excess, replicasUp),
      `queue full: ${queued} tokens waiting, ${tokens} more would pass the limit of ${limit}`,
    );
  }

  /** Ends a request early: its queued items leave the queue; its running ones finish unheard. */
  private abandon(request: PendingRequest, error: unknown, why?: DropReport['reason']): void {
    if (request.settled) return;
    for (const item of request.queued) this.queue.remove(item);
    if (request.queued.size > 0) {
      const reason = why ?? (error instanceof CancelledError ? 'cancelled' : error instanceof SchedulerTimeoutError ? 'timeout' : 'failed');
      const dropped: DropReport = { reason, sequences: request.queued.size };
      this.emit('dropped', dropped);
    }
    request.queued.clear();
    request.fail(error);
    this.schedulePump();
    this.notifyIfDrained();
  }

  private notifyIfDrained(): void {
    if (!this.idle()) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  /** Coalesces the pumps asked for within one tick (e.g. many submits) into one. */
  private schedulePump(): void {
    if (this.pumpPending) return;
    this.pumpPending = true;
    queueMicrotask(() => {
      this.pumpPending = false;
      this.pump();
    });
  }

  /** Gives every idle replica a batch that is ready, and sets one timer for the earliest wait. */
  private pump(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (this.queue.size === 0) return;
    // The last replica failed for good: what waits would wait forever (until its timeout); end it now.
    const unavailable = this.unavailable();
    if (unavailable) {
      for (const request of this.queue.requests()) this.abandon(request, unavailable, 'unavailable');
      return;
    }
    const now = performance.now();
    const up = this.readyReplicas();
    // Items of a batch left waiting for company are not offered to the next replica this round.
    const waiting = new Set<QueuedItem>();
    let wakeAt = Infinity;
    const ranking: RankContext = { top: 0, now, maxWaitMs: undefined };
    for (let replica = 0; replica < up.length && this.queue.size > 0; replica++) {
      if (!up[replica] || this.busy[replica]) continue;
      ranking.top = this.queue.topPriority();
      ranking.maxWaitMs = this.lastPromoted ? undefined : this.options.priorityMaxWaitMs;
      const plan = planBatch(this.queue, {
        limits: this.limits,
        budgetFor: (lane) => this.batchTokens(lane),
        // Work put back after a failed batch first; then by class (overdue work first); then round robin over requests, oldest first within one.
        rank: (item) => anchorRank(item, this.lastServed.get(item.flow) ?? 0, ranking),
        batching: this.options.batching,
        maxWaitMs: this.options.maxWaitMs,
        now,
        waitAllowed: this.options.waitWhenIdle === true || this.runningBatches > 0,
        // A pin binds while its replica is ready; when it is down or restarting the item may run anywhere.
        runnable: (item) =>
          !waiting.has(item) && (item.replica === undefined || item.replica === replica || !up[item.replica]),
      });
      if (!plan) continue;
      if (plan.ready) {
        this.lastPromoted = overdue(plan.items[0], ranking);
        this.dispatch(replica, plan);
      } else {
        for (const item of plan.items) waiting.add(item);
        wakeAt = Math.min(wakeAt, plan.deadline);
      }
    }
    if (wakeAt < Infinity) {
      this.wakeTimer = setTimeout(() => this.pump(), Math.max(0, Math.ceil(wakeAt - now)));
    } else if (this.queue.size > 0 && this.runningBatches === 0) {
      // No replica is up and nothing running will call us back: look again soon, so work is not
      // stranded. Unref'd: this poll alone must not keep a process alive (the replicas do).
      this.wakeTimer = setTimeout(() => this.pump(), STRANDED_RECHECK_MS).unref();
    }
  }

  private dispatch(replica: number, plan: BatchPlan): void {
    for (const item of plan.items) {
      this.queue.remove(item);
      item.request.queued.delete(item);
    }
    this.busy[replica] = true;
    this.runningBatches += 1;
    this.running.add(plan.items);
    this.dispatches += 1;
    for (const item of plan.items) this.lastServed.set(item.flow, this.dispatches);
    void this.runBatch(replica, plan);
  }

  private async runBatch(replica: number, { items, lane }: BatchPlan): Promise<void> {
    const startedAt = performance.now();
    let results: SequenceResult[] | undefined;
    let failure: unknown;
    try {
      results = await this.executor.run(replica, items.map((item) => item.tokens), mergeWants(items.map((item) => item.want), lane));
      if (!Array.isArray(results) || results.length !== items.length) {
        throw new Error(`replica ${replica} returned ${results?.length} results for a batch of ${items.length}`);
      }
    } catch (error) {
      results = undefined;
      failure = error;
    }
    const durationMs = performance.now() - startedAt;
    this.busy[replica] = false;
    this.runningBatches -= 1;
    this.running.delete(items);

    const tokens = items.reduce((sum, item) => sum + item.tokens.length, 0);
    const maxLength = Math.max(...items.map((item) => item.tokens.length));
    if (results) {
      this.meter.record(tokens, durationMs);
      this.laneMeters[lane].record(tokens, durationMs);
      this.deliver(replica, items, results, { startedAt, durationMs, tokens, paddedTokens: maxLength * items.length });
    } else {
      this.recover(items, failure);
    }
    this.schedulePump();
    this.notifyIfDrained();
    const report: BatchReport = {
      replica,
      sequences: items.length,
      tokens,
      paddedTokens: maxLength * items.length,
      durationMs,
      ok: results !== undefined,
    };
    this.emit('batch', report);
  }

  /**
   * A failed batch. A replica fault (crash, hang, replica gone) is not the items' fault: they go
   * back at their arrival places (WorkQueue.putBack), unpinned, for another replica or the restarted
   * one, up to MAX_FAULT_RETRIES times. An ORT error in a batch of several (e.g. out of memory) puts
   * them back in halves, until the sequence that fails alone is found; only its request fails.
   * Anything else fails the requests that had a sequence in the batch; the scheduler keeps serving.
   */
  private recover(items: QueuedItem[], failure: unknown): void {
    const kind = faultKindOf(failure);
    // The engine's own word for the fault (e.g. 'crashed'), for the retry metric; the kind decides.
    const reason = (failure as { reason?: unknown }).reason;
    const label = typeof reason === 'string' ? reason : kind;
    const live = items.filter((item) => !item.request.settled);
    const requeue = (back: QueuedItem[]) => {
      this.queue.putBack(back);
      for (const item of back) item.request.queued.add(item);
    };
    if (kind === 'replica') {
      this.retriedItems += live.length;
      for (const item of live) {
        item.attempts += 1;
        item.replica = undefined;
      }
      const back = live.filter((item) => item.attempts <= MAX_FAULT_RETRIES);
      if (back.length > 0) this.emit('retry', { reason: label, sequences: back.length } satisfies RetryReport);
      requeue(back); // first: failing a spent item's request below takes its other items out again
      const spent = new Set(live.filter((item) => item.attempts > MAX_FAULT_RETRIES).map((item) => item.request));
      for (const request of spent) this.abandon(request, failure);
      return;
    }
    if (kind === 'batch' && items.length > 1) {
      const half = Math.ceil(items.length / 2);
      if (live.length > 0) this.emit('retry', { reason: 'split', sequences: live.length } satisfies RetryReport);
      for (const item of live) item.maxCompany = Math.min(item.maxCompany, half);
      requeue(live);
      return;
    }
    for (const request of new Set(live.map((item) => item.request))) this.abandon(request, failure);
  }

  private deliver(replica: number, items: QueuedItem[], results: SequenceResult[], batch: { startedAt: number; durationMs: number; tokens: number; paddedTokens: number }): void {
    const { startedAt, durationMs } = batch;
    items.forEach((item, k) => {
      if (item.request.settled) return; // cancelled, timed out or failed while running: dropped
      let result: SequenceResult;
      try {
        result = pickWanted(results[k], item.want);
      } catch (error) {
        this.abandon(item.request, error);
        return;
      }
      item.request.complete(item.index, {
        result,
        replica,
        queueMs: startedAt - item.enqueuedAt,
        inferenceMs: durationMs,
        batchSize: items.length,
        startedAt,
        batchTokens: batch.tokens,
        batchPaddedTokens: batch.paddedTokens,
      });
    });
  }
}
