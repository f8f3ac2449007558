// POST /v1/embed: representations of any layers, logits and contacts, as JSON or — with
// `Accept: application/octet-stream` — as one safetensors body (no giant JSON float arrays).
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { safetensorsStream } from '../../model/safetensors.js';
import { JsonTensor, jsonStream } from '../streamed-body.js';
import { embedJson, embedSafetensorsEntries } from '../../tasks/embed.js';
import { ErrorResponse, embedBody } from '../schemas.js';
import type { ServingRuntime } from '../runtime.js';
import { httpScope } from './common.js';
import { embedCall } from '../calls.js';

const SAFETENSORS = 'application/octet-stream';

export const embedRoutes: FastifyPluginAsyncTypebox<{ runtime: ServingRuntime }> = async (app, { runtime }) => {
  const { settings } = runtime;
  app.post(
    '/v1/embed',
    {
      schema: {
        summary: 'Representations, logits and contact maps',
        description:
          'JSON: `{model, results: [{index, length, representations: {"<layer>": {mean, per_residue, bos}}, logits, contacts}]}` ' +
          '(per_residue and logits have one row per residue, cls/eos excluded; logits have one column per id of `/v1/models` `vocabulary` — ' +
          'on ESM C 64, of which the first `vocabulary_tokens` (33) are tokens and the rest unused placeholders). Layer L (the last) is after ' +
          "the final LayerNorm in every family (ESM C's `embeddings`). With `Accept: application/octet-stream` the " +
          'tensors come back as one safetensors file named `<index>/mean/<layer>`, `<index>/per_residue/<layer>`, ' +
          '`<index>/bos/<layer>`, `<index>/logits`, `<index>/contacts`.',
        body: embedBody(settings.maxBatchSize),
        // 200 is JSON or a safetensors body, described above; left unconstrained.
        response: { 200: Type.Any(), 400: ErrorResponse, 422: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse, 504: ErrorResponse },
      },
    },
    async (request, reply) => {
      const safetensors = request.headers.accept?.includes(SAFETENSORS) === true;
      const answer = await embedCall(runtime, httpScope(request, reply), request.body, safetensors ? 'safetensors' : 'json');
      const tensors = answer.results.map((r) => r.tensors);
      const encoded = answer.results.map((r) => r.encoded);
      const member = { name: answer.model };
      // Both forms go out streamed as the client reads (RESPONSE_WRITE_TIMEOUT_MS bounds one that does not).
      if (safetensors) {
        const body = safetensorsStream(tensors.flatMap((t, i) => embedSafetensorsEntries(i, t)), { model: member.name });
        return reply.type(SAFETENSORS).header('content-length', body.byteLength).send(body);
      }
      return reply.type('application/json; charset=utf-8').send(
        jsonStream({
          model: member.name,
          results: tensors.map((t, i) => ({
            index: i,
            length: encoded[i].length,
            ...(encoded[i].truncated ? { truncated: true, original_length: encoded[i].originalLength } : {}),
            ...embedJson(t, (tensor) => new JsonTensor(tensor.data, tensor.shape)),
          })),
        }),
      );
    },
  );
};
