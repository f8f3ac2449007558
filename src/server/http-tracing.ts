// Tracing of the HTTP routes (server/tracing.ts): the server span of each request, set up by a
// Fastify hook, and its children built from what the request measured (tasks/inference.ts
// BatchRecord). The tree, all children of the server span: admission, then per batch its rows rode
// in: queue wait, batch, replica run; then serialization (the reply being written).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { InferenceRequest } from '../tasks/inference.js';
import type { PoolReplicaInfo } from '../engine/pool.js';
import type { RequestSpan, Tracing } from './tracing.js';

const spans = new WeakMap<FastifyRequest, RequestSpan>();

/** The request's server span, when tracing is on (and the request is sampled or not: check `recording`). */
export function requestSpan(request: FastifyRequest): RequestSpan | undefined {
  return spans.get(request);
}

/** A server span for every request: `traceparent` in (its parent) and out (names it); ended when the reply is over. */
export function installHttpTracing(app: FastifyInstance, tracing: Tracing): void {
  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url;
    const span = tracing.startRequestSpan(route ? `${request.method} ${route}` : request.method, request.headers, {
      'http.request.method': request.method,
      'url.path': request.url.split('?')[0],
      ...(route ? { 'http.route': route } : {}),
    });
    spans.set(request, span);
    void reply.header('traceparent', span.traceparent);
    reply.raw.once('close', () => span.end(performance.now(), reply.statusCode, reply.raw.writableFinished ? undefined : new Error('client closed the connection before the reply was sent')));
  });
  app.addHook('onClose', async () => tracing.shutdown());
}

/** Admission (the cost check and the result-memory reservation) from `start` to now; `error`: it refused. */
export function traceAdmission(span: RequestSpan | undefined, start: number, tokens: number, error?: unknown): void {
  span?.child('admission', start, performance.now(), { 'esm2.request.tokens': tokens }, error);
}

/**
 * The request's batches as spans (queue wait, batch, replica run for each), and serialization from
 * now until the reply is over (its content type: JSON or safetensors).
 */
/** `reply`: the HTTP reply whose serialization is timed (none for a gRPC call). */
export function traceInference(span: RequestSpan | undefined, inference: InferenceRequest, replicas: () => PoolReplicaInfo[], reply: FastifyReply | undefined, ok: boolean): void {
  if (!span?.recording) return;
  const info = replicas();
  for (const b of inference.batches()) {
    const replica = { 'esm2.replica.index': b.replica, 'esm2.replica.device': info[b.replica]?.actual ?? 'unknown' };
    span.child('queue wait', b.queuedAt, b.startedAt, { 'esm2.request.sequences': b.sequences, 'esm2.request.tokens': b.tokens });
    span.child('batch', b.startedAt, b.deliveredAt, {
      ...replica,
      'esm2.batch.sequences': b.batchSequences,
      'esm2.batch.tokens': b.batchTokens,
      'esm2.batch.padded_tokens': b.batchPaddedTokens,
      'esm2.batch.padding_share': b.batchPaddedTokens > 0 ? 1 - b.batchTokens / b.batchPaddedTokens : 0,
      'esm2.request.sequences': b.sequences,
      'esm2.request.tokens': b.tokens,
    });
    span.child('replica run', b.startedAt, b.startedAt + b.durationMs, { ...replica, 'esm2.replica.run_ms': b.durationMs });
  }
  if (!ok || !reply) return;
  const start = performance.now();
  span.atEnd((end) => {
    const type = String(reply.getHeader('content-type') ?? '');
    span.child('serialization', start, end, { 'http.response.header.content-type': type, 'esm2.response.format': formatOf(type) }, reply.raw.writableFinished ? undefined : new Error('reply not finished'));
  });
}

function formatOf(contentType: string): string {
  if (contentType.includes('json')) return 'json';
  return contentType.includes('octet-stream') || contentType.includes('safetensors') ? 'safetensors' : contentType;
}
