// The sequences waiting for a replica, one FIFO per lane. Sets keep insertion (= arrival) order
// and delete in O(1), which cancellation of a request's scattered items needs.
import type { PendingRequest } from './pending-request.js';
import type { Want } from './types.js';
import type { Lane } from './wants.js';

/** One sequence of one request, from submit until its batch starts (or its request ends). */
export interface QueuedItem {
  readonly request: PendingRequest;
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
  /** Global arrival order: the oldest item has the smallest. */
  readonly seq: number;
  /** performance.now() at submit. */
  readonly enqueuedAt: number;
}

export class WorkQueue {
  private readonly lanes: Record<Lane, Set<QueuedItem>> = { default: new Set(), contacts: new Set() };
  private tokenCount = 0;
  private itemCount = 0;

  /** Waiting sequences. */
  get size(): number {
    return this.itemCount;
  }

  /** Sum of the waiting sequences' token lengths (what backpressure limits). */
  get queuedTokens(): number {
    return this.tokenCount;
  }

  add(item: QueuedItem): void {
    this.lanes[item.lane].add(item);
    this.itemCount += 1;
    this.tokenCount += item.tokens.length;
  }

  /** Removes the item if it is still waiting; true when it was. */
  remove(item: QueuedItem): boolean {
    if (!this.lanes[item.lane].delete(item)) return false;
    this.itemCount -= 1;
    this.tokenCount -= item.tokens.length;
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

  /** The oldest waiting item that `accept` takes, over every lane. */
  oldest(accept: (item: QueuedItem) => boolean): QueuedItem | undefined {
    let best: QueuedItem | undefined;
    for (const lane of Object.values(this.lanes)) {
      for (const item of lane) {
        if (!accept(item)) continue;
        if (!best || item.seq < best.seq) best = item;
        break; // each lane is in arrival order: its first accepted item is its oldest
      }
    }
    return best;
  }
}
