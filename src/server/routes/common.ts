// What every inference route shares: the ready model, the submit options of a request (its
// disconnect signal and timeout) and the timing headers.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ItemOutcome } from '../../scheduler/types.js';
import { notReady } from '../errors.js';
import type { LoadedModel, ServingRuntime } from '../runtime.js';

export function readyModel(runtime: ServingRuntime): LoadedModel {
  const model = runtime.model;
  if (runtime.state !== 'ready' || !model) throw notReady(`service is ${runtime.state}: ${runtime.message}`);
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
