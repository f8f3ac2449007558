// The one shape of inference every task is written against, so the server (a scheduler with the
// request's signal and timeout) and the CLI (a local scheduler) run the same task code.
import type { SequenceResult, Want } from '../engine/batch.js';
import type { Scheduler, SubmitOptions } from '../scheduler/scheduler.js';

export type { SequenceResult, Want };

/** Runs token rows (each cls … eos) and resolves with one result per row, in order. */
export type Infer = (tokens: Int32Array[], want: Want) => Promise<SequenceResult[]>;

/**
 * An Infer that submits through a scheduler: every row becomes one work item with the same want,
 * so the rows of a call batch with each other and with every other request's rows. `options`
 * (signal, timeoutMs) apply to each call separately.
 */
export function schedulerInfer(scheduler: Scheduler, options: SubmitOptions = {}): Infer {
  return async (tokens, want) => {
    const outcomes = await scheduler.submit(
      tokens.map((row) => ({ tokens: row, want })),
      options,
    );
    return outcomes.map((outcome) => outcome.result);
  };
}
