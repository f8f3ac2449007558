// What protein scientists run ESM-2 for: variant effects (/v1/score), pseudo-likelihood (/v1/pll)
// and masked-token prediction (/v1/fill-mask), all through the same scheduler as embeddings.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { encodeSequence } from '../../tasks/sequences.js';
import { InputError } from '../../tasks/errors.js';
import { SCORE_METHODS } from '../../tasks/variants.js';
import { scanMutations, scoreMutations } from '../../tasks/score.js';
import { pseudoLikelihoodFromMatrix } from '../../tasks/pll.js';
import { maskedLogProbs } from '../../tasks/masked-marginals.js';
import { DEFAULT_TOP_K, fillMask } from '../../tasks/fill-mask.js';
import { ErrorResponse, ModelPick, Truncation } from '../schemas.js';
import type { ServingRuntime } from '../runtime.js';
import { embedCost, maskedCost, scoreCost } from '../../tasks/cost.js';
import { admit, readyMember, scoreContext } from './common.js';
import { admitEnsembleScore, ensembleScan, ensembleScores, positionsOf } from './ensemble-score.js';

const Sequence = Type.String({ description: 'Protein sequence (see /predict)' });
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
        body: Type.Object({
          sequence: Sequence,
          mutations: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 10_000 })),
          scan: Type.Optional(Type.Boolean()),
          method: Type.Union(SCORE_METHODS.map((m) => Type.Literal(m)), { default: 'masked_marginal' }),
          truncation: Truncation,
          model: ModelPick,
        }),
        response: { 200: Type.Any(), ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (runtime.ensemble && body.model === undefined) {
        const members = runtime.members.map((m) => m.name);
        const ensemble = admitEnsembleScore(runtime, request, reply, body);
        if (body.scan) return { model: runtime.modelName, members, method: body.method, ...(await ensembleScan(ensemble, body.method)) };
        return { model: runtime.modelName, members, method: body.method, scores: await ensembleScores(ensemble, body.mutations!, body.method) };
      }
      const member = readyMember(runtime, body.model);
      const { model } = member;
      if ((body.mutations === undefined) === (body.scan !== true)) throw new InputError('mutations', 'give either "mutations" or "scan": true');
      const encoded = encodeSequence(model.checkpoint.tokenizer, body.sequence, 'sequence', model.lengthLimit, body.truncation);
      const L = encoded.length;
      const answers = body.scan ? L * 20 : body.mutations!.length;
      const cost = scoreCost(model.checkpoint.config, model.windowSize, L, body.method, body.scan ? L : positionsOf(body.mutations!, L), answers);
      const admitted = admit(runtime, model, request, reply, cost);
      if (body.scan) {
        const scan = await admitted.run((inference) => scanMutations(scoreContext(member, inference), encoded.tokens, body.method));
        return { model: member.name, method: body.method, ...scan };
      }
      const scores = await admitted.run((inference) => scoreMutations(scoreContext(member, inference), encoded.tokens, body.mutations!, body.method));
      return { model: member.name, method: body.method, scores };
    },
  );

  app.post(
    '/v1/pll',
    {
      schema: {
        summary: 'Pseudo-log-likelihood and pseudo-perplexity',
        description:
          'PLL = Σ over residues of log p(true residue | that residue masked); perplexity = exp(−PLL / L). ' +
          'With `per_position: true` each result also lists those L log-probabilities, position 1 first.',
        body: Type.Object({
          sequences: Type.Array(Sequence, { minItems: 1, maxItems: settings.maxBatchSize }),
          truncation: Truncation,
          per_position: Type.Optional(Type.Boolean({ description: 'also return log p(true residue | it masked) at each position' })),
          model: ModelPick,
        }),
        response: { 200: Type.Any(), ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const member = readyMember(runtime, body.model);
      const { model } = member;
      const encoded = body.sequences.map((s, i) => encodeSequence(model.checkpoint.tokenizer, s, `sequences[${i}]`, model.lengthLimit, body.truncation));
      const vocabSize = model.checkpoint.tokenizer.vocab.length;
      const perSequence = encoded.map((e) => ({ residues: e.length, positions: e.length }));
      const answers = encoded.reduce((n, e) => n + (body.per_position ? e.length : 0) + 2, 0);
      const admitted = admit(runtime, model, request, reply, maskedCost(model.checkpoint.config, model.windowSize, perSequence, answers));
      const results = await admitted.run((inference) => {
        const score = scoreContext(member, inference);
        return Promise.all(
          encoded.map(async (e) => {
            const matrix = await maskedLogProbs(score.infer, score.tokenizer, e.tokens, { cache: score.cache, windowSize: score.windowSize });
            const pll = pseudoLikelihoodFromMatrix(matrix, e.tokens, vocabSize);
            return body.per_position ? { ...pll, per_position: Array.from({ length: pll.length }, (_, i) => matrix[i * vocabSize + e.tokens[i + 1]]) } : pll;
          }),
        );
      });
      return {
        model: member.name,
        results: results.map((r, index) => ({ index, ...r, ...(encoded[index].truncated ? { truncated: true, original_length: encoded[index].originalLength } : {}) })),
      };
    },
  );

  app.post(
    '/v1/fill-mask',
    {
      schema: {
        summary: 'Predict the residues at <mask> positions',
        description: 'Probabilities are the softmax over the whole vocabulary; only amino-acid tokens are listed. Positions are 1-based.',
        body: Type.Object({ sequence: Sequence, top_k: Type.Integer({ default: DEFAULT_TOP_K }), truncation: Truncation, model: ModelPick }),
        response: { 200: Type.Any(), ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const member = readyMember(runtime, body.model);
      const { model } = member;
      const encoded = encodeSequence(model.checkpoint.tokenizer, body.sequence, 'sequence', model.lengthLimit, body.truncation);
      const cost = embedCost(model.checkpoint.config, model.windowSize, [encoded.length], { logits: true }, 'json');
      const predictions = await admit(runtime, model, request, reply, { ...cost, responseFloats: 0 }).run((inference) =>
        fillMask(inference.infer, model.checkpoint.tokenizer, encoded.tokens, body.top_k),
      );
      return { model: member.name, predictions };
    },
  );
};
