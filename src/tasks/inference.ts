// One request's inference, for every route and every CLI command: the request's rows go to the
// scheduler in parts (never more than its in-flight allowance waiting or running at once), all
// under one deadline and one cancellation. When the request ends for any reason — its client
// left, its deadline passed, any part failed, its reply was sent — nothing more of it is queued
// and what it has queued is dropped; only batches already running finish, unheard.
import type { ModelDims, SequenceResult, Want } from '../contract/index.js';
import { CancelledError, SchedulerTimeoutError, type Scheduler } from '../scheduler/index.js';
import type { ItemOutcome } from '../scheduler/types.js';
import type { EncodedSequence } from './sequences.js';
import { assembleWindows, windowTokens, windowWant, windowsFor } from './windows.js';
import { checkDeadline } from './cost.js';

/** The one shape of inference the task code is written against: one result per cls … eos row, in order. */
export type Infer = (tokens: Int32Array[], want: Want) => Promise<SequenceResult[]>;

export interface RowOutcome {
  result: SequenceResult;
  /** The replica that ran the row (of a windowed sequence: its first window). */
  replica: number;
}

/** What a server or a CLI command serves requests from: its scheduler and its model's shape. */
export interface ModelInference {
  scheduler: Scheduler;
  dims: ModelDims;
  /** Longer sequences run as windows of this many residues (tasks/windows.ts). */
  windowSize: number;
  /**
   * Batches' worth of tokens (the scheduler's current batch budget) one request may have queued or
   * running at once — the replicas plus one, so every replica stays busy with one waiting — its
   * further rows queued as earlier ones finish. Every part after the first is queued whatever the
   * queue holds, so a large request is never refused against itself; backpressure (429) applies
   * to new requests.
   */
  inFlightBatches: number;
}

export interface RequestOptions {
  /** The client's end (disconnect): the request is cancelled. */
  signal?: AbortSignal;
  /** The whole request's deadline, from now: past it, it fails with SchedulerTimeoutError. */
  timeoutMs?: number;
  /**
   * The tokens the request will run (its cost). With a deadline, once the replicas' rate is known
   * (at the start, or after its first part on a fresh server), a request that cannot finish in
   * time ends at once with CostLimitError (413) instead of running until the 504.
   */
  tokens?: number;
  /** Keep a BatchRecord of every batch its rows rode in (tracing: spans are built from them afterwards). */
  record?: boolean;
  /** The scheduler's priority class of its work (the client's tier: smaller first; SubmitOptions.priority). */
  priority?: number;
}

/**
 * One batch that ran rows of this request, as measured (performance.now() times): queued at
 * `queuedAt`, the batch began at `startedAt` and ran `durationMs` on `replica`, its results reached
 * the request at `deliveredAt`. `sequences`/`tokens`: this request's rows in it; `batch…`: every request's.
 */
export interface BatchRecord {
  queuedAt: number;
  startedAt: number;
  durationMs: number;
  deliveredAt: number;
  replica: number;
  sequences: number;
  tokens: number;
  batchSequences: number;
  batchTokens: number;
  batchPaddedTokens: number;
}

interface PendingRow {
  tokens: Int32Array;
  want: Want;
  replica?: number;
  done: (outcome: ItemOutcome) => void;
}

export class InferenceRequest {
  /** Aborted, with the reason, once the request has ended. */
  readonly signal: AbortSignal;
  /** The longest queue wait and batch time of its rows so far (the timing headers). */
  private longest = { queueMs: 0, inferenceMs: 0 };
  private readonly controller = new AbortController();
  private readonly pending: PendingRow[] = [];
  private readonly failures: ((error: unknown) => void)[] = [];
  private inFlightTokens = 0;
  private inFlightRows = 0;
  private admitted = false;
  private timer: NodeJS.Timeout | undefined;
  private detach: (() => void) | undefined;

  private readonly startedAt = performance.now();
  private readonly records: BatchRecord[] = [];
  private tokensDone = 0;
  private deadlineChecked = false;

  constructor(
    readonly model: ModelInference,
    private readonly options: RequestOptions = {},
  ) {
    this.signal = this.controller.signal;
    const { signal, timeoutMs } = options;
    if (signal) {
      const onAbort = () => this.end(new CancelledError());
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.detach = () => signal.removeEventListener('abort', onAbort);
      }
    }
    if (timeoutMs !== undefined && !this.ended) {
      this.timer = setTimeout(() => this.end(new SchedulerTimeoutError(timeoutMs)), timeoutMs);
    }
  }

  get ended(): boolean {
    return this.signal.aborted;
  }

  /** The tasks' Infer over this request: rows longer than the window run as windows. */
  readonly infer: Infer = async (tokens, want) => {
    const sequences = tokens.map((t) => ({ encoded: { tokens: t, length: t.length - 2, originalLength: t.length - 2, truncated: false } }));
    return (await this.sequences(sequences, want)).map((o) => o.result);
  };

  /**
   * Ends the request (idempotent): the deadline is cleared, pending rows never go out, queued ones
   * are dropped by the scheduler (they share this signal), and every call still waiting rejects
   * with `reason` (the default: the reply was sent, nothing more is needed).
   */
  end(reason: unknown = new CancelledError('request ended')): void {
    if (this.ended) return;
    clearTimeout(this.timer);
    this.detach?.();
    this.pending.length = 0;
    this.controller.abort(reason);
    for (const fail of this.failures.splice(0)) fail(reason);
  }

  /** Runs `work` as this request: a failure of any part ends all of it; so does finishing. */
  async run<T>(work: (request: InferenceRequest) => Promise<T>): Promise<T> {
    try {
      return await work(this);
    } catch (error) {
      this.end(error);
      throw error;
    } finally {
      this.end();
    }
  }

  /** Token rows (cls … eos, each within the window), one outcome per row in order. */
  rows(rows: readonly { tokens: Int32Array; replica?: number }[], want: Want): Promise<RowOutcome[]> {
    if (this.ended) return Promise.reject(this.signal.reason);
    if (rows.length === 0) return Promise.resolve([]);
    return new Promise<RowOutcome[]>((resolve, reject) => {
      const out = new Array<RowOutcome>(rows.length);
      let left = rows.length;
      this.failures.push(reject);
      rows.forEach((row, i) =>
        this.pending.push({
          tokens: row.tokens,
          want,
          replica: row.replica,
          done: (outcome) => {
            out[i] = { result: outcome.result, replica: outcome.replica };
            if (--left === 0) {
              const k = this.failures.indexOf(reject);
              if (k >= 0) this.failures.splice(k, 1);
              resolve(out);
            }
          },
        }),
      );
      this.pump();
    });
  }

  /** Sequences, those longer than the window as windows assembled into one result; one outcome per sequence. */
  async sequences(sequences: readonly { encoded: EncodedSequence; replica?: number }[], want: Want): Promise<RowOutcome[]> {
    const { windowSize, dims } = this.model;
    const plain = sequences.flatMap((s, i) => (s.encoded.length > windowSize ? [] : [i]));
    const windowed = sequences.flatMap((s, i) => (s.encoded.length > windowSize ? [i] : []));
    const out = new Array<RowOutcome>(sequences.length);
    const plainRun = this.rows(plain.map((i) => ({ tokens: sequences[i].encoded.tokens, replica: sequences[i].replica })), want).then((outcomes) =>
      outcomes.forEach((o, k) => (out[plain[k]] = o)),
    );
    // Each windowed sequence on its own: its windows' results are held only until it is assembled.
    const windowRuns = windowed.map(async (i) => {
      const { tokens, length } = sequences[i].encoded;
      const layout = windowsFor(length, windowSize);
      const parts = await this.rows(layout.map((w) => ({ tokens: windowTokens(tokens, w) })), windowWant(want));
      out[i] = { result: assembleWindows(length, layout, parts.map((p) => p.result), want, dims.hiddenSize, dims.vocabSize), replica: parts[0].replica };
    });
    await Promise.all([plainRun, ...windowRuns]);
    return out;
  }

  /** The longest queue wait and batch time of its rows (the x-queue-time / x-inference-time headers). */
  timing(): { queueMs: number; inferenceMs: number } {
    return { ...this.longest };
  }

  /** The batches its rows rode in so far (only with RequestOptions.record). */
  batches(): readonly BatchRecord[] {
    return this.records;
  }

  /** One record per batch of a part's outcomes (a part may have been split over several batches). */
  private record(part: PendingRow[], outcomes: ItemOutcome[]): void {
    const deliveredAt = performance.now();
    const byBatch = new Map<string, BatchRecord>();
    outcomes.forEach((o, k) => {
      const key = `${o.replica}@${o.startedAt}`;
      const known = byBatch.get(key);
      if (known) {
        known.sequences += 1;
        known.tokens += part[k].tokens.length;
        known.queuedAt = Math.min(known.queuedAt, o.startedAt - o.queueMs);
        return;
      }
      byBatch.set(key, {
        queuedAt: o.startedAt - o.queueMs,
        startedAt: o.startedAt,
        durationMs: o.inferenceMs,
        deliveredAt,
        replica: o.replica,
        sequences: 1,
        tokens: part[k].tokens.length,
        batchSequences: o.batchSize,
        batchTokens: o.batchTokens,
        batchPaddedTokens: o.batchPaddedTokens,
      });
    });
    this.records.push(...byBatch.values());
  }

  /** Sends parts while the in-flight allowance has room (a first part always goes, if admitted). */
  private pump(): void {
    const { scheduler, inFlightBatches } = this.model;
    // Parts of about one batch (whose budget shrinks to MAX_BATCH_MS once the rate is known).
    const partTokens = scheduler.batchTokens();
    const maxInFlightTokens = inFlightBatches * partTokens;
    // At least one row per batch in flight, however long rows are against the budget.
    while (!this.ended && this.pending.length > 0 && (this.inFlightTokens < maxInFlightTokens || this.inFlightRows < inFlightBatches)) {
      const room = Math.max(1, Math.min(partTokens, maxInFlightTokens - this.inFlightTokens));
      const part: PendingRow[] = [];
      let tokens = 0;
      // Rows in order, at least one.
      while (this.pending.length > 0 && (part.length === 0 || tokens + this.pending[0].tokens.length <= room)) {
        const row = this.pending.shift()!;
        part.push(row);
        tokens += row.tokens.length;
      }
      if (!this.admitted) {
        if (!this.checkDeadline()) return;
        // Admission: the queue must have room for what this request puts in it at once.
        const refused = scheduler.refusal(Math.min(maxInFlightTokens, tokens + this.pendingTokens()));
        if (refused) return this.end(refused);
        this.admitted = true;
      }
      this.inFlightTokens += tokens;
      this.inFlightRows += part.length;
      scheduler
        .submit(
          part.map((row) => ({ tokens: row.tokens, want: row.want, ...(row.replica === undefined ? {} : { replica: row.replica }) })),
          { signal: this.signal, admitted: true, flow: this, ...(this.options.priority === undefined ? {} : { priority: this.options.priority }) },
        )
        .then(
          (outcomes) => {
            this.inFlightTokens -= tokens;
            this.inFlightRows -= part.length;
            if (this.ended) return;
            this.tokensDone += tokens;
            if (this.options.record) this.record(part, outcomes);
            if (!this.checkDeadline()) return;
            outcomes.forEach((outcome, k) => {
              this.longest.queueMs = Math.max(this.longest.queueMs, outcome.queueMs);
              this.longest.inferenceMs = Math.max(this.longest.inferenceMs, outcome.inferenceMs);
              part[k].done(outcome);
            });
            this.pump();
          },
          (error: unknown) => {
            this.inFlightTokens -= tokens;
            this.inFlightRows -= part.length;
            this.end(this.ended ? this.signal.reason : error);
          },
        );
    }
  }

  /** False (and the request ended) when the rest of its tokens cannot run before its deadline at the measured rate; checked once. */
  private checkDeadline(): boolean {
    const { tokens, timeoutMs } = this.options;
    if (this.deadlineChecked || tokens === undefined || timeoutMs === undefined) return true;
    const rate = this.model.scheduler.tokensPerSecond();
    if (rate === undefined) return true;
    this.deadlineChecked = true;
    try {
      checkDeadline(tokens - this.tokensDone, rate, timeoutMs - (performance.now() - this.startedAt), this.tokensDone > 0 ? 'the rest of this request' : 'this request');
      return true;
    } catch (error) {
      this.end(error);
      return false;
    }
  }

  private pendingTokens(): number {
    let sum = 0;
    for (const row of this.pending) sum += row.tokens.length;
    return sum;
  }
}

/** A request on `model`: the one way any route or command runs inference. */
export function startRequest(model: ModelInference, options: RequestOptions = {}): InferenceRequest {
  return new InferenceRequest(model, options);
}
