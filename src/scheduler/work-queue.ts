// The sequences waiting for a replica, one queue per lane in arrival order. Sets keep insertion
// order and delete in O(1), which cancellation of a request's scattered items needs; a failed
// batch's items are put back at their arrival place (putBack), not at the end.
import type { PendingRequest } from './pending-request.js';
import type { Want } from './types.js';
import type { Lane } from './wants.js';

/** One sequence of one request, from submit until its batch starts (or its request ends). */
export interface QueuedItem {
  readonly request: PendingRequest;
  /** The request it belongs to across submits (SubmitOptions.flow), for fair queuing. */
  readonly flow: object;
  /** Its class (SubmitOptions.priority): smaller is served first (priority.ts). */
  readonly priority: number;
  /** Position in its request's items, where its outcome goes. */
  readonly index: number;
  readonly tokens: Int32Array;
  readonly want: Want;
  readonly lane: Lane;
  /** The replica it is pinned to, if any (cleared when its batch is retried elsewhere). */
  replica: number | undefined;
  /** Batches it was in that a replica fault lost. */
  attempts: number;
  /** Most sequences its batch may hold: halved each time ORT fails a batch it was in. */
  maxCompany: number;
  /** Put back after a failed batch: its wait for company is over, a batch holding it goes at once. */
  putBack: boolean;
  /** Global arrival order: the oldest item has the smallest. */
  readonly seq: number;
  /** performance.now() at submit. */
  readonly enqueuedAt: number;
}

export class WorkQueue {
  private readonly lanes: Record<Lane, Set<QueuedItem>> = { default: new Set(), contacts: new Set() };
  private tokenCount = 0;
  private itemCount = 0;
  /** Waiting items per class (priority.ts). */
  private readonly classes = new Map<number, number>();

  /** Waiting sequences. */
  get size(): number {
    return this.itemCount;
  }

  /** Sum of the waiting sequences' token lengths (what backpressure limits). */
  get queuedTokens(): number {
    return this.tokenCount;
  }

  /** A new arrival: it goes last in its lane (its seq is the highest yet). */
  add(item: QueuedItem): void {
    this.lanes[item.lane].add(item);
    this.count(item);
  }

  /**
   * Items of a failed batch, back at their arrival places: before every item that arrived after
   * them, so they run before newer work, as they would have without the failure. Marks them putBack.
   */
  putBack(items: readonly QueuedItem[]): void {
    for (const lane of new Set(items.map((item) => item.lane))) {
      const back = items.filter((item) => item.lane === lane).sort((a, b) => a.seq - b.seq);
      const merged: QueuedItem[] = [];
      let k = 0;
      for (const waiting of this.lanes[lane]) {
        while (k < back.length && back[k].seq < waiting.seq) merged.push(back[k++]);
        merged.push(waiting);
      }
      merged.push(...back.slice(k));
      this.lanes[lane] = new Set(merged);
    }
    for (const item of items) {
      item.putBack = true;
      this.count(item);
    }
  }

  private count(item: QueuedItem): void {
    this.itemCount += 1;
    this.tokenCount += item.tokens.length;
    this.classes.set(item.priority, (this.classes.get(item.priority) ?? 0) + 1);
  }

  /** The smallest class with an item waiting (0 when none waits). */
  topPriority(): number {
    let top = Infinity;
    for (const priority of this.classes.keys()) top = Math.min(top, priority);
    return top === Infinity ? 0 : top;
  }

  /** Removes the item if it is still waiting; true when it was. */
  remove(item: QueuedItem): boolean {
    if (!this.lanes[item.lane].delete(item)) return false;
    this.itemCount -= 1;
    this.tokenCount -= item.tokens.length;
    const left = (this.classes.get(item.priority) ?? 1) - 1;
    if (left === 0) this.classes.delete(item.priority);
    else this.classes.set(item.priority, left);
    return true;
  }

  /** Waiting items of one lane, oldest first. */
  inLane(lane: Lane): Iterable<QueuedItem> {
    return this.lanes[lane];
  }

  /** The requests with an item waiting, in no particular order. */
  requests(): Set<PendingRequest> {
    const requests = new Set<PendingRequest>();
    for (const lane of Object.values(this.lanes)) for (const item of lane) requests.add(item.request);
    return requests;
  }

  /**
   * The waiting item that `accept` takes with the lowest `rank`, the oldest among equals, over every
   * lane (no rank: the oldest). Ranks order the anchors of batches (fair queuing, scheduler.ts).
   */
  oldest(accept: (item: QueuedItem) => boolean, rank?: (item: QueuedItem) => number): QueuedItem | undefined {
    let best: QueuedItem | undefined;
    let bestRank = Infinity;
    for (const lane of Object.values(this.lanes)) {
      for (const item of lane) {
        if (!accept(item)) continue;
        const r = rank ? rank(item) : 0;
        if (!best || r < bestRank || (r === bestRank && item.seq < best.seq)) {
          best = item;
          bestRank = r;
        }
        if (!rank) break; // each lane is in arrival order: its first accepted item is its oldest
      }
    }
    return best;
  }
}
