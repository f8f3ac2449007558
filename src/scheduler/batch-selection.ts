// Which waiting items an idle replica runs next. The oldest item it may run anchors the batch
// (no item starves behind a stream of better-fitting ones) — of the request served longest ago,
// so a small request never waits behind a large one's queued parts (fair queuing, round robin over
// requests); company is the compatible items closest to it in length, so padding stays small.
import type { Lane } from './wants.js';
import type { QueuedItem, WorkQueue } from './work-queue.js';

export interface BatchLimits {
  /** Padded-token budget: max length × sequences. */
  maxBatchTokens: number;
  maxBatchSize: number;
  /** Replica memory of a batch (e.g. contact maps grow with length²), when bounded. */
  memory?: BatchMemory;
}

export interface BatchMemory {
  limitBytes: number;
  /** Estimated peak bytes on the replica of `sequences` rows of `lane` padded to `tokens`. */
  bytesOf(lane: Lane, tokens: number, sequences: number): number;
}

export interface Selection<T> {
  /** The anchor first, then the company in the order it was added. */
  items: T[];
  /** Waiting longer cannot improve the batch: it is at maxBatchSize, has no room for another item
   *  as long as its longest, or already had to turn a waiting candidate away (surplus work). */
  full: boolean;
}

/**
 * Greedy length bucketing: candidates of the smallest priority class, then closest in length to the
 * anchor, first (ties: older first),
 * each added while max_len × n ≤ maxBatchTokens, n ≤ maxBatchSize and the batch's replica memory
 * stays within its bound; one that does not fit is skipped, a shorter one further on may still
 * fit. An anchor over the budget runs alone.
 */
export function selectBatch<T extends { readonly tokens: Int32Array; readonly seq: number; readonly maxCompany?: number; readonly lane?: Lane; readonly priority?: number }>(
  anchor: T,
  candidates: readonly T[],
  limits: BatchLimits,
): Selection<T> {
  const lane = anchor.lane ?? 'default';
  const { memory } = limits;
  const fits = (length: number, sequences: number) =>
    length * sequences <= limits.maxBatchTokens && (!memory || memory.bytesOf(lane, length, sequences) <= memory.limitBytes);
  const target = anchor.tokens.length;
  // Smaller priority classes first (scheduler/priority.ts), then closest in length.
  const byCloseness = [...candidates].sort(
    (a, b) => (a.priority ?? 0) - (b.priority ?? 0) || Math.abs(a.tokens.length - target) - Math.abs(b.tokens.length - target) || a.seq - b.seq,
  );
  const items = [anchor];
  let maxLength = target;
  let turnedAway = false;
  // Items from a batch ORT failed carry a smaller cap (the batch is retried in halves).
  let maxSize = Math.min(limits.maxBatchSize, anchor.maxCompany ?? Infinity);
  for (const candidate of byCloseness) {
    if (items.length >= maxSize) {
      turnedAway = true;
      break;
    }
    if ((candidate.maxCompany ?? Infinity) < items.length + 1) continue;
    const widened = Math.max(maxLength, candidate.tokens.length);
    if (!fits(widened, items.length + 1)) {
      turnedAway = true;
      continue;
    }
    items.push(candidate);
    maxLength = widened;
    maxSize = Math.min(maxSize, candidate.maxCompany ?? Infinity);
  }
  const noRoom = items.length >= maxSize || !fits(maxLength, items.length + 1);
  return { items, full: turnedAway || noRoom };
}

export interface PlanContext {
  limits: BatchLimits;
  /** false: a batch holds one request's items only and never waits. */
  batching: boolean;
  maxWaitMs: number;
  now: number;
  /** Whether a batch may wait for company now (see SchedulerOptions.waitWhenIdle). */
  waitAllowed: boolean;
  /** Whether this replica may run the item (pin, and not taken by another plan of this round). */
  runnable: (item: QueuedItem) => boolean;
  /** The padded-token budget of a batch of this lane (the scheduler's, from MAX_BATCH_MS); absent: limits.maxBatchTokens. */
  budgetFor?: (lane: Lane) => number;
  /** Items of lower rank anchor before older ones of higher rank (fair queuing); absent: the oldest anchors. */
  rank?: (item: QueuedItem) => number;
}

export interface BatchPlan {
  items: QueuedItem[];
  lane: Lane;
  /** Dispatch now (also when it holds an item put back after a failed batch); otherwise wait for company until `deadline`. */
  ready: boolean;
  /** The anchor's (oldest item's) arrival + maxWaitMs. */
  deadline: number;
}

/** The batch one idle replica would run now, or undefined when nothing waits that it may run. */
export function planBatch(queue: WorkQueue, context: PlanContext): BatchPlan | undefined {
  const anchor = queue.oldest(context.runnable, context.rank);
  if (!anchor) return undefined;
  const candidates: QueuedItem[] = [];
  for (const item of queue.inLane(anchor.lane)) {
    if (item === anchor || !context.runnable(item)) continue;
    if (!context.batching && item.request !== anchor.request) continue;
    candidates.push(item);
  }
  const limits = context.budgetFor ? { ...context.limits, maxBatchTokens: context.budgetFor(anchor.lane) } : context.limits;
  const { items, full } = selectBatch(anchor, candidates, limits);
  const deadline = anchor.enqueuedAt + context.maxWaitMs;
  // Items put back after a failed batch waited for company once already: no second wait.
  const ready = !context.batching || full || !context.waitAllowed || context.now >= deadline || items.some((item) => item.putBack);
  return { items, lane: anchor.lane, ready, deadline };
}
