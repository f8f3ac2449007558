// The FastAPI service's endpoints, same field names: POST /predict and POST /predict/batch.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { encodeSequence } from '../../tasks/sequences.js';
import { distribute, distributionInfo } from '../../scheduler/distributor.js';
import type { RowOutcome } from '../../tasks/inference.js';
import type { EncodedSequence } from '../../tasks/sequences.js';
import { embedCost } from '../../tasks/cost.js';
import { ErrorResponse, PredictBatchResponse, PredictBody, PredictResponse, predictBatchBody } from '../schemas.js';
import type { ServingRuntime } from '../runtime.js';
import { admit, readyMember } from './common.js';
import type { LoadedModel } from '../runtime.js';

export const predictRoutes: FastifyPluginAsyncTypebox<{ runtime: ServingRuntime }> = async (app, { runtime }) => {
  const { settings } = runtime;
  const errors = { 400: ErrorResponse, 422: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse, 504: ErrorResponse };

  /** One sequence's seed-style fields from its outcome. */
  const prediction = (model: LoadedModel, sequence: string, encoded: EncodedSequence, outcome: RowOutcome, embeddings: boolean, attention: boolean) => {
    const { config } = model.checkpoint; // the request's own member, not readyMember() again: replies to accepted work still go out while draining
    const length = encoded.length;
    return {
      sequence: sequence.replace(/\s+/g, '').toUpperCase(),
      sequence_length: length,
      ...(encoded.truncated ? { truncated: true } : {}),
      embedding: embeddings ? Array.from(outcome.result.mean![config.numLayers]) : null,
      embedding_dim: config.hiddenSize,
      attention_shape: attention ? [config.numHeads, length, length] : null,
      gpu_id: outcome.replica,
    };
  };

  app.post(
    '/predict',
    { schema: { summary: 'Embed one sequence (seed-compatible)', body: PredictBody, response: { 200: PredictResponse, ...errors } } },
    async (request, reply) => {
      const body = request.body;
      const member = readyMember(runtime, body.model);
      const { model } = member;
      const encoded = encodeSequence(model.checkpoint.tokenizer, body.sequence, 'sequence', model.lengthLimit, body.truncation);
      const want = { mean: [model.checkpoint.config.numLayers] };
      const admitted = admit(runtime, model, request, reply, embedCost(model.checkpoint.config, model.windowSize, [encoded.length], want, 'json'));
      const [outcome] = await admitted.run((inference) => inference.sequences([{ encoded }], want));
      return {
        ...prediction(model, body.sequence, encoded, outcome, body.include_embeddings, body.include_attention),
        inference_time_ms: admitted.request.timing().inferenceMs,
        model_name: member.name,
      };
    },
  );

  app.post(
    '/predict/batch',
    { schema: { summary: 'Embed a batch of sequences across the devices (seed-compatible)', body: predictBatchBody(settings.maxBatchSize), response: { 200: PredictBatchResponse, ...errors } } },
    async (request, reply) => {
      const body = request.body;
      const member = readyMember(runtime, body.model);
      const { model } = member;
      const encoded = body.sequences.map((s, i) => encodeSequence(model.checkpoint.tokenizer, s, `sequences[${i}]`, model.lengthLimit, body.truncation));
      const want = { mean: [model.checkpoint.config.numLayers] };
      const up = Array.from({ length: model.pool.size }, (_, i) => i).filter((i) => model.pool.isUp(i));
      const plan = distribute(encoded.map((e) => e.tokens.length), Math.max(1, up.length), settings.distributionStrategy);
      const replicaOf = new Array<number>(encoded.length);
      plan.forEach((indices, device) => indices.forEach((i) => (replicaOf[i] = up[device] ?? 0)));
      const started = performance.now();
      const cost = embedCost(model.checkpoint.config, model.windowSize, encoded.map((e) => e.length), want, 'json');
      const outcomes = await admit(runtime, model, request, reply, cost).run((inference) => inference.sequences(encoded.map((e, i) => ({ encoded: e, replica: replicaOf[i] })), want));
      const totalMs = performance.now() - started;
      // Reported from where each sequence actually ran (equal to the plan unless a replica went down).
      const ranOn: number[][] = Array.from({ length: model.pool.size }, () => []);
      outcomes.forEach((o, i) => ranOn[o.replica].push(i));
      return {
        results: outcomes.map((o, i) => prediction(model, body.sequences[i], encoded[i], o, body.include_embeddings, body.include_attention)),
        total_sequences: outcomes.length,
        total_inference_time_ms: totalMs,
        average_time_per_sequence_ms: totalMs / outcomes.length,
        distribution_info: distributionInfo(ranOn),
        model_name: member.name,
      };
    },
  );
};
