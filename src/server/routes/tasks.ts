// What protein scientists run ESM-2 for: variant effects (/v1/score), pseudo-likelihood (/v1/pll)
// and masked-token prediction (/v1/fill-mask), all through the same scheduler as embeddings. The
// work is server/calls.ts, shared with gRPC.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorResponse, FillMaskBody, pllBody, ScoreBody } from '../schemas.js';
import type { ServingRuntime } from '../runtime.js';
import { fillMaskCall, pllCall, scoreCall } from '../calls.js';
import { httpScope } from './common.js';

const errors = { 400: ErrorResponse, 422: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse, 504: ErrorResponse };

export const taskRoutes: FastifyPluginAsyncTypebox<{ runtime: ServingRuntime }> = async (app, { runtime }) => {
  const { settings } = runtime;

  app.post(
    '/v1/score',
    {
      schema: {
        summary: 'Variant effects: listed mutations, or the full deep mutational scan',
        description:
          'Positions are 1-based; "K2A:V4G" is a multi-mutant scored as the sum of its parts. masked_marginal: log p(mut) − log p(wt) at position i with ' +
          'only i masked; wt_marginal: the same from one unmasked pass. `scan: true` returns the L × 20 matrix (rows: positions, columns: `amino_acids`; wild type 0). ' +
          'On an ensemble without `model`: every member scores, `score` (`matrix`) is their mean, `member_scores` (`member_matrices`) each member\'s, in `members` order.',
        body: ScoreBody,
        response: { 200: Type.Any(), ...errors },
      },
    },
    async (request, reply) => scoreCall(runtime, httpScope(request, reply), request.body),
  );

  app.post(
    '/v1/pll',
    {
      schema: {
        summary: 'Pseudo-log-likelihood and pseudo-perplexity',
        description:
          'PLL = Σ over residues of log p(true residue | that residue masked); perplexity = exp(−PLL / L). ' +
          'With `per_position: true` each result also lists those L log-probabilities, position 1 first.',
        body: pllBody(settings.maxBatchSize),
        response: { 200: Type.Any(), ...errors },
      },
    },
    async (request, reply) => pllCall(runtime, httpScope(request, reply), request.body),
  );

  app.post(
    '/v1/fill-mask',
    {
      schema: {
        summary: 'Predict the residues at <mask> positions',
        description: 'Probabilities are the softmax over the whole vocabulary; only amino-acid tokens are listed. Positions are 1-based.',
        body: FillMaskBody,
        response: { 200: Type.Any(), ...errors },
      },
    },
    async (request, reply) => fillMaskCall(runtime, httpScope(request, reply), request.body),
  );
};
