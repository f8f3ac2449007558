// A problem with what the caller sent (HTTP 422 at the server, exit 1 in the CLI). `field` names
// the offending part of the request, e.g. "sequences[3]".
export class InputError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'InputError';
  }
}

/**
 * A request whose cost, computed from the request alone before any work, passes a limit (HTTP 413
 * at the server): the message names the figure, the limit, the setting and what to send instead.
 */
export class CostLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CostLimitError';
  }
}

/** The server holds too many results for other requests right now to take this one's (HTTP 429). */
export class ResultMemoryBusyError extends Error {
  constructor(
    readonly retryAfterSeconds: number,
    message: string,
  ) {
    super(message);
    this.name = 'ResultMemoryBusyError';
  }
}
