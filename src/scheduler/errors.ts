// Why the scheduler refused or abandoned a request. The server maps each to a status code
// (429 with Retry-After, 499/none for a gone client, 504, 503 when no replica is left); executor
// failures pass through as they are.

/** The queue holds more tokens than MAX_QUEUED_TOKENS allows; nothing of the request was queued. */
export class OverloadedError extends Error {
  constructor(
    /** Estimated seconds until the queue has room for this request (≥ 1). */
    readonly retryAfterSeconds: number,
    message: string,
  ) {
    super(message);
    this.name = 'OverloadedError';
  }
}

/** The request's AbortSignal fired; its queued work was dropped. */
export class CancelledError extends Error {
  constructor(message = 'request cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

/** The request ran past its timeoutMs; its queued work was dropped. */
export class SchedulerTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`request timed out after ${timeoutMs} ms`);
    this.name = 'SchedulerTimeoutError';
  }
}

/** No replica will ever take work again (every one has failed for good): the request is refused, or its queued work dropped. */
export class UnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnavailableError';
  }
}
