// What every inference route shares: the ready model, the submit options of a request (its
// disconnect signal and timeout) and the timing headers.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ItemOutcome } from '../../scheduler/types.js';
import { runSequences, type RowRunner, type RunOptions } from '../../tasks/run.js';
import type { Infer } from '../../tasks/infer.js';
import { noReplica, notReady } from '../errors.js';
import type { LoadedModel, ServingRuntime } from '../runtime.js';

/**
 * The model every inference route runs on, or the 503 refusing the request: not ready (loading,
 * draining), or no replica left to serve (every one failed for good; the scheduler also ends work
 * already queued then). A replica that is restarting still takes work: it waits for the restart.
 */
export function readyModel(runtime: ServingRuntime): LoadedModel {
  const model = runtime.model;
  if (runtime.state !== 'ready' || !model) throw notReady(`service is ${runtime.state}: ${runtime.message}`);
  const unavailable = model.pool.unavailableReason();
  if (unavailable) throw noReplica(`no replica can serve: ${unavailable}`);
  return model;
}

/** Cancels the request's queued work when its client disconnects before the reply is sent. */
export function submitOptions(request: FastifyRequest, reply: FastifyReply, timeoutMs: number): { signal: AbortSignal; timeoutMs: number } {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  request.raw.once('aborted', () => controller.abort());
  return { signal: controller.signal, timeoutMs };
}

export function setTimingHeaders(reply: FastifyReply, outcomes: readonly ItemOutcome[]): void {
  const max = (pick: (o: ItemOutcome) => number) => Math.max(0, ...outcomes.map(pick));
  void reply.header('x-queue-time', max((o) => o.queueMs).toFixed(1));
  void reply.header('x-inference-time', max((o) => o.inferenceMs).toFixed(1));
}

/**
 * A RowRunner over the scheduler for one request: every row shares the request's disconnect signal
 * and timeout, and every outcome is recorded for the timing headers.
 */
export function requestRunner(model: LoadedModel, options: { signal: AbortSignal; timeoutMs: number }, record: ItemOutcome[]): RowRunner {
  return async (rows, want) => {
    const outcomes = await model.scheduler.submit(
      rows.map((r) => ({ tokens: r.tokens, want, ...(r.replica === undefined ? {} : { replica: r.replica }) })),
      options,
    );
    record.push(...outcomes);
    return outcomes;
  };
}

/** Windows are MAX_SEQUENCE_LENGTH residues: the longest a sequence may be without them. */
export function runOptions(model: LoadedModel): RunOptions {
  return { windowSize: model.windowSize, hiddenSize: model.checkpoint.config.hiddenSize, vocabSize: model.checkpoint.config.vocabSize };
}

/** The tasks' Infer over a request's runner; rows longer than the window are run as windows. */
export function requestInfer(model: LoadedModel, run: RowRunner): Infer {
  return async (tokens, want) => {
    const sequences = tokens.map((t) => ({ encoded: { tokens: t, length: t.length - 2, originalLength: t.length - 2, truncated: false } }));
    return (await runSequences(run, sequences, want, runOptions(model))).map((o) => o.result);
  };
}
