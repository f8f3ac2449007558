// Priority classes (the server's client tiers): an idle replica anchors its batch on the work of
// the smallest class waiting, fair queuing by flow within it. No class starves: work of a larger
// class that has waited past the bound (SchedulerOptions.priorityMaxWaitMs) anchors a batch
// first — every other dispatch at most, so that under sustained overload both classes keep
// being served, each at least every second batch.
import type { QueuedItem } from './work-queue.js';

/** The largest class a submit may name (SubmitOptions.priority): 0 … PRIORITY_MAX. */
export const PRIORITY_MAX = 1000;

/** Ranks are class × SERVED_SPAN + the flow's last dispatch number: 1001 × 2^42 < 2^53, exact. */
const SERVED_SPAN = 2 ** 42;

export interface RankContext {
  /** The smallest class with work waiting now (WorkQueue.topPriority). */
  top: number;
  now: number;
  /** Promote overdue work of larger classes this dispatch (undefined: not this one). */
  maxWaitMs: number | undefined;
}

/** Whether `item` is work of a larger class than `top` that has waited past the bound, in `context`. */
export function overdue(item: QueuedItem, context: RankContext): boolean {
  return context.maxWaitMs !== undefined && item.priority > context.top && context.now - item.enqueuedAt > context.maxWaitMs;
}

/**
 * The anchor rank of a waiting item (lowest anchors first, the oldest among equals): work put back
 * after a failed batch, then overdue work of a larger class, then by class; within one, the flow
 * served longest ago (`lastServed`, a dispatch number) first.
 */
export function anchorRank(item: QueuedItem, lastServed: number, context: RankContext): number {
  if (item.putBack) return -1;
  const cls = overdue(item, context) ? 0 : item.priority + 1;
  return cls * SERVED_SPAN + lastServed;
}
