// One submit() call until it settles: collects its items' outcomes in item order, and settles
// exactly once — whichever of completion, cancellation, timeout or a failed batch comes first.
import type { ItemOutcome } from './types.js';
import type { QueuedItem } from './work-queue.js';

export class PendingRequest {
  /** Its items still waiting in the queue (removed there when the request ends early). */
  readonly queued = new Set<QueuedItem>();
  readonly promise: Promise<ItemOutcome[]>;
  private readonly outcomes: (ItemOutcome | undefined)[];
  private remaining: number;
  private done = false;
  private readonly cleanups: (() => void)[] = [];
  private resolvePromise!: (outcomes: ItemOutcome[]) => void;
  private rejectPromise!: (error: unknown) => void;

  constructor(itemCount: number) {
    this.outcomes = new Array<ItemOutcome | undefined>(itemCount);
    this.remaining = itemCount;
    this.promise = new Promise<ItemOutcome[]>((resolve, reject) => {
      this.resolvePromise = resolve;
      this.rejectPromise = reject;
    });
  }

  get settled(): boolean {
    return this.done;
  }

  /** Runs when the request settles (detaches its abort listener, clears its timeout). */
  onSettled(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  /** Records one item's outcome; resolves once every item has one. Ignored after settling. */
  complete(index: number, outcome: ItemOutcome): void {
    if (this.done || this.outcomes[index]) return;
    this.outcomes[index] = outcome;
    this.remaining -= 1;
    if (this.remaining === 0) this.settle(() => this.resolvePromise(this.outcomes as ItemOutcome[]));
  }

  fail(error: unknown): void {
    this.settle(() => this.rejectPromise(error));
  }

  private settle(finish: () => void): void {
    if (this.done) return;
    this.done = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    finish();
  }
}
