// POST /v1/score/stream: the deep mutational scan of /v1/score with `scan: true`, reported as it
// runs (an L-residue scan is L forward passes) as server-sent events:
//   event: progress  data: {"done": 12, "total": 28}            (masked rows done / asked for)
//   event: result    data: {model, method, amino_acids, matrix}  (the body /v1/score returns)
//   event: error     data: {detail, error, status}                (a failure after the stream began)
// A request that is invalid or arrives before the model is ready gets the usual JSON error instead.
// POST (not GET) so that the body and the Authorization header travel as for every other route;
// browsers read it with fetch() and a stream reader.
import { setMaxListeners } from 'node:events';
import { PassThrough } from 'node:stream';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { encodeSequence } from '../../tasks/sequences.js';
import { SCORE_METHODS } from '../../tasks/variants.js';
import { scanMutations } from '../../tasks/score.js';
import { toApiError } from '../errors.js';
import { ErrorResponse, Truncation } from '../schemas.js';
import type { ServingRuntime } from '../runtime.js';
import { scoreCost } from '../../tasks/cost.js';
import { admit, httpScope, readyMember, scoreContext } from './common.js';
import { ModelPick } from '../schemas.js';
import { admitEnsembleScore, ensembleScan } from './ensemble-score.js';

/** A comment line keeps proxies and idle timeouts from closing a quiet stream. */
const KEEP_ALIVE_MS = 15_000;

/** One server-sent event. */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export const scoreStreamRoutes: FastifyPluginAsyncTypebox<{ runtime: ServingRuntime }> = async (app, { runtime }) => {
  app.post(
    '/v1/score/stream',
    {
      schema: {
        summary: 'The deep mutational scan with progress, as server-sent events',
        description:
          'Same body as `/v1/score` with `scan: true` (without `scan` or `mutations`). The response is `text/event-stream`: `progress` events ' +
          '`{done, total}` while the masked passes run, then one `result` event with the body `/v1/score` returns, or one `error` event ' +
          '`{detail, error, status}`. Invalid requests are refused with the usual JSON errors before the stream starts. On an ensemble without `model` ' +
          'every member scans: progress counts all their passes, and the result has the mean `matrix`, `member_matrices` and `members`.',
        body: Type.Object({
          sequence: Type.String({ description: 'Protein sequence (see /predict)' }),
          method: Type.Union(SCORE_METHODS.map((m) => Type.Literal(m)), { default: 'masked_marginal' }),
          truncation: Truncation,
          model: ModelPick,
        }),
        response: { 200: Type.Any(), 400: ErrorResponse, 422: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const scanAll = runtime.ensemble && body.model === undefined;
      // An ensemble without a pick scans with every member (ensemble-score.ts), its cost theirs together.
      const ensemble = scanAll ? admitEnsembleScore(runtime, httpScope(request, reply), { ...body, scan: true }) : undefined;
      const member = scanAll ? undefined : readyMember(runtime, body.model);
      const model = member?.model;
      const encoded = ensemble ? ensemble.encoded[0] : encodeSequence(model!.checkpoint.tokenizer, body.sequence, 'sequence', model!.lengthLimit, body.truncation);
      const L = encoded.length;
      const admitted = model && admit(runtime, model, request, reply, scoreCost(model.checkpoint.config, model.windowSize, L, body.method, L, L * 20));
      // Every part of the request listens to its one signal.
      for (const r of ensemble ? ensemble.admitted.requests : [admitted!.request]) setMaxListeners(256, r.signal);

      const stream = new PassThrough();
      // After a client has gone, Fastify destroys the stream; what the scan still reports is dropped.
      const send = (text: string) => void (!stream.destroyed && !stream.writableEnded && stream.write(text));
      const keepAlive = setInterval(() => send(': keep-alive\n\n'), KEEP_ALIVE_MS);
      let last = -1;
      const onProgress = (done: number, total: number) => {
        if (done === last) return;
        last = done;
        send(sseEvent('progress', { done, total }));
      };
      // The stream has begun before the scan ends: no timing headers, the request alone.
      const scan = ensemble
        ? ensembleScan(ensemble, body.method, { onProgress, headers: false }).then((result) => ({ members: ensemble.members.map((m) => m.name), ...result }))
        : admitted!.request.run(() => scanMutations(scoreContext(member!, admitted!.request), encoded.tokens, body.method, { onProgress }));
      scan
        .then((result) => {
          send(
            sseEvent('result', {
              model: member?.name ?? runtime.modelName,
              method: body.method,
              ...(encoded.truncated ? { truncated: true, original_length: encoded.originalLength } : {}),
              ...result,
            }),
          );
        })
        .catch((err: unknown) => {
          const api = toApiError(err);
          if (api.statusCode >= 500) request.log.error({ err }, 'scan stream failed');
          send(sseEvent('error', { detail: api.message, error: api.code, status: api.statusCode }));
        })
        .finally(() => {
          clearInterval(keepAlive);
          stream.end();
        });
      return reply
        .header('content-type', 'text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache, no-transform')
        .header('x-accel-buffering', 'no')
        .send(stream);
    },
  );
};
