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
import type { Member } from '../members.js';
import { requestSpan, traceAdmission, traceInference } from '../http-tracing.js';
import type { RequestSpan } from '../tracing.js';
import { clientOf } from '../access.js';

/**
 * The member a request runs on (`model`: its name, or the first member without one), or the 503
 * refusing the request: not ready (loading, draining), or no replica left to serve (every one of
 * that member failed for good; the scheduler also ends work already queued then). A replica that
 * is restarting still takes work: it waits for the restart. An unknown `model` is a 422.
 */
export function readyMember(runtime: ServingRuntime, name?: string): Member {
  if (runtime.state !== 'ready' || !runtime.model) throw notReady(`service is ${runtime.state}: ${runtime.message}`);
  const member = runtime.pick(name);
  const unavailable = member.model.pool.unavailableReason();
  if (unavailable) throw noReplica(`no replica can serve: ${unavailable}`);
  return member;
}

/** The first (or only) member's model, or the 503 refusing the request (readyMember). */
export function readyModel(runtime: ServingRuntime): LoadedModel {
  return readyMember(runtime).model;
}

/** Every member, for a request that runs them all (an ensemble's score), or the 503 refusing it. */
export function readyMembers(runtime: ServingRuntime): Member[] {
  if (runtime.state !== 'ready' || !runtime.model) throw notReady(`service is ${runtime.state}: ${runtime.message}`);
  const unavailable = runtime.unavailableReason();
  if (unavailable) throw noReplica(`no replica can serve: ${unavailable}`);
  return runtime.members;
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

/**
 * One call as the inference sees it, whatever protocol carried it: HTTP (httpScope) or gRPC
 * (server/grpc/esm2.ts). The request path is the same for both: ready model → validate and encode
 * → cost → admit → InferenceRequest.
 */
export interface CallScope {
  /** Aborts when the client leaves before its answer (a closed connection, a cancelled call). */
  signal: AbortSignal;
  /** Runs `fn` once the call is over: answered, failed or abandoned. */
  onEnd(fn: () => void): void;
  /** The client's own deadline in milliseconds from now (a gRPC deadline); the tighter of it and REQUEST_TIMEOUT_MS applies. */
  deadlineMs?: number;
  /** The request's queue and inference times, once run (HTTP: the x-queue-time and x-inference-time headers). */
  timing?(queueMs: number, inferenceMs: number): void;
  /** The caller's tier (server/clients.ts: its API key's; 1 without keys): the scheduler's priority. */
  tier: number;
  /** The request's trace span when tracing is on (server/tracing.ts), and the HTTP reply its serialization is timed on. */
  span?: RequestSpan;
  reply?: FastifyReply;
}

/** An HTTP request's scope: the client leaves when its connection closes before the reply has been sent. */
export function httpScope(request: FastifyRequest, reply: FastifyReply): CallScope {
  return {
    signal: clientGone(request, reply),
    onEnd: (fn) => void reply.raw.once('close', fn),
    timing: (queueMs, inferenceMs) => {
      void reply.header('x-queue-time', queueMs.toFixed(1));
      void reply.header('x-inference-time', inferenceMs.toFixed(1));
    },
    tier: clientOf(request).tier,
    span: requestSpan(request),
    reply,
  };
}

/** REQUEST_TIMEOUT_MS, or the client's deadline where it is sooner. */
export function callTimeoutMs(runtime: ServingRuntime, scope: CallScope): number {
  return scope.deadlineMs === undefined ? runtime.settings.requestTimeoutMs : Math.max(1, Math.min(runtime.settings.requestTimeoutMs, scope.deadlineMs));
}

/** The accepted request's inference, begun: cost checked and reserved; `run` it (or `end` it) once. */
export interface AdmittedInference {
  request: InferenceRequest;
  /** Runs the work as the request and reports its timing (the HTTP headers). */
  run<T>(work: (request: InferenceRequest) => Promise<T>): Promise<T>;
}

/**
 * Admits a request by its cost (413 past a limit, 429 when the server's result memory is taken
 * now) and starts its inference. The memory stays reserved until the reply is over.
 */
export function admit(runtime: ServingRuntime, model: LoadedModel, request: FastifyRequest, reply: FastifyReply, cost: RequestCost): AdmittedInference {
  return admitCall(runtime, model, httpScope(request, reply), cost);
}

/** admit for any protocol's call (CallScope). */
export function admitCall(runtime: ServingRuntime, model: LoadedModel, scope: CallScope, cost: RequestCost): AdmittedInference {
  const { span, tier } = scope;
  const admittedFrom = performance.now();
  let release: () => void;
  try {
    checkCost(cost, runtime.settings);
    release = model.resultMemory.reserve(cost.resultBytes);
  } catch (error) {
    traceAdmission(span, admittedFrom, cost.tokens, error);
    throw error;
  }
  traceAdmission(span, admittedFrom, cost.tokens);
  scope.onEnd(release);
  runtime.metrics.tierRequests.inc({ tier: String(tier) });
  // The deadline by the measured rate is checked by the request: now when the rate is known, after its first part otherwise.
  const inference = startRequest(model.inference, {
    signal: scope.signal,
    timeoutMs: callTimeoutMs(runtime, scope),
    tokens: cost.tokens,
    record: span?.recording === true,
    priority: tier,
  });
  scope.onEnd(() => inference.end());
  return {
    request: inference,
    async run(work) {
      let result: Awaited<ReturnType<typeof work>>;
      try {
        result = await inference.run(work);
      } catch (error) {
        traceInference(span, inference, () => model.pool.replicaInfo(), scope.reply, false);
        throw error;
      }
      traceInference(span, inference, () => model.pool.replicaInfo(), scope.reply, true);
      const { queueMs, inferenceMs } = inference.timing();
      runtime.metrics.tierQueueWait.observe({ tier: String(tier) }, queueMs / 1000);
      scope.timing?.(queueMs, inferenceMs);
      return result;
    },
  };
}

/** The scoring context of one request: its inference, and the masked rows shared between requests (keyed by member, precision, window). */
export function scoreContext(member: Member, inference: InferenceRequest): ScoreContext {
  const { model } = member;
  return {
    infer: inference.infer,
    tokenizer: model.checkpoint.tokenizer,
    cache: { store: model.maskedCache, model: `${member.name}|${model.precision}|${model.windowSize}` },
    windowSize: model.windowSize,
  };
}

/** An ensemble request admitted: one inference per member, all ended together. */
export interface AdmittedEnsemble {
  requests: InferenceRequest[];
  /**
   * Runs `work` on every member at once (results in members' order); a failure of one ends the
   * others with its error. Sets the timing headers (the longest member's) unless `headers` is false.
   */
  run<T>(work: (request: InferenceRequest, member: Member, index: number) => Promise<T>, options?: { headers?: boolean }): Promise<T[]>;
}

/**
 * Admits a request that runs every member: its cost is the members' costs summed (tokens, result
 * memory, response numbers), checked against the per-request limits and reserved from the one
 * result memory as a whole, so an ensemble never gets members × a request's allowance.
 */
export function admitEnsemble(runtime: ServingRuntime, members: Member[], scope: CallScope, costs: RequestCost[]): AdmittedEnsemble {
  const { settings } = runtime;
  const total: RequestCost = {
    ...costs[0],
    tokens: costs.reduce((n, c) => n + c.tokens, 0),
    resultBytes: costs.reduce((n, c) => n + c.resultBytes, 0),
    // Each member's numbers, and their mean besides.
    responseFloats: costs.reduce((n, c) => n + c.responseFloats, costs[0].responseFloats),
    largest: `${costs[0].largest ? `${costs[0].largest}; ` : ''}run by each of ${members.length} ensemble members, summed`,
  };
  checkCost(total, settings);
  const release = members[0].model.resultMemory.reserve(total.resultBytes);
  scope.onEnd(release);
  const timeoutMs = callTimeoutMs(runtime, scope);
  runtime.metrics.tierRequests.inc({ tier: String(scope.tier) });
  const requests = members.map((m, i) => startRequest(m.model.inference, { signal: scope.signal, timeoutMs, tokens: costs[i].tokens, priority: scope.tier }));
  scope.onEnd(() => requests.forEach((r) => r.end()));
  return {
    requests,
    async run(work, { headers = true } = {}) {
      const results = await Promise.all(
        members.map((member, i) =>
          requests[i].run(() => work(requests[i], member, i)).catch((err: unknown) => {
            for (const r of requests) r.end(err);
            throw err;
          }),
        ),
      );
      if (headers) {
        const timings = requests.map((r) => r.timing());
        scope.timing?.(Math.max(...timings.map((t) => t.queueMs)), Math.max(...timings.map((t) => t.inferenceMs)));
      }
      return results;
    },
  };
}
