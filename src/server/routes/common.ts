// What every inference route shares: the ready model, and one request's inference — admitted by
// its cost before any work, run as one InferenceRequest (tasks/inference.ts) that ends when the
// client leaves, the deadline passes, any part fails or the reply is done, with its result memory
// reserved until the reply has been sent or abandoned. A route reads: validate → infer → reply.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { checkCost, type RequestCost } from '../../tasks/cost.js';
import { startRequest, type InferenceRequest } from '../../tasks/inference.js';
import type { ScoreContext } from '../../tasks/score.js';
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

/** Aborts when the client disconnects before its reply has been sent. */
export function clientGone(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  request.raw.once('aborted', () => controller.abort());
  return controller.signal;
}

/** The accepted request's inference, begun: cost checked and reserved; `run` it (or `end` it) once. */
export interface AdmittedInference {
  request: InferenceRequest;
  /** Runs the work as the request and sets the timing headers. */
  run<T>(work: (request: InferenceRequest) => Promise<T>): Promise<T>;
}

/**
 * Admits a request by its cost (413 past a limit, 429 when the server's result memory is taken
 * now) and starts its inference. The memory stays reserved until the reply is over.
 */
export function admit(runtime: ServingRuntime, model: LoadedModel, request: FastifyRequest, reply: FastifyReply, cost: RequestCost): AdmittedInference {
  const { settings } = runtime;
  checkCost(cost, settings);
  const release = model.resultMemory.reserve(cost.resultBytes);
  reply.raw.once('close', release);
  // The deadline by the measured rate is checked by the request: now when the rate is known, after its first part otherwise.
  const inference = startRequest(model.inference, { signal: clientGone(request, reply), timeoutMs: settings.requestTimeoutMs, tokens: cost.tokens });
  reply.raw.once('close', () => inference.end());
  return {
    request: inference,
    async run(work) {
      const result = await inference.run(work);
      const { queueMs, inferenceMs } = inference.timing();
      void reply.header('x-queue-time', queueMs.toFixed(1));
      void reply.header('x-inference-time', inferenceMs.toFixed(1));
      return result;
    },
  };
}

/** The scoring context of one request: its inference, and the masked rows shared between requests (keyed by model, precision, window). */
export function scoreContext(runtime: ServingRuntime, model: LoadedModel, inference: InferenceRequest): ScoreContext {
  return {
    infer: inference.infer,
    tokenizer: model.checkpoint.tokenizer,
    cache: { store: model.maskedCache, model: `${runtime.modelName}|${model.precision}|${model.windowSize}` },
    windowSize: model.windowSize,
  };
}
