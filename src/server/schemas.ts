// Request and response schemas (TypeBox → JSON Schema: validation and the OpenAPI document).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { EMBED_INCLUDES } from '../tasks/embed.js';
import { TRUNCATION_MODES } from '../tasks/sequences.js';
import { SCORE_METHODS } from '../tasks/variants.js';
import { DEFAULT_TOP_K } from '../tasks/fill-mask.js';

const Sequence = Type.String({ description: 'Protein sequence: the 20 standard amino acids plus X B U Z O, case-insensitive; <mask> and other special tokens allowed' });
export const Truncation = Type.Union(TRUNCATION_MODES.map((m) => Type.Literal(m)), {
  default: 'error',
  description:
    'sequences longer than MAX_SEQUENCE_LENGTH: "error" (422), "truncate" (first residues, flagged), "window" (overlapping windows of MAX_SEQUENCE_LENGTH residues, stride half a window, averaged)',
});

/** Every inference route's optional pick of an ensemble member (GET /v1/models lists their names). */
export const ModelPick = Type.Optional(
  Type.String({ description: 'the model to run, by its name exactly as GET /v1/models lists it: one member of an ensemble (default: the first; /v1/score: all of them, averaged); on a one-model server its name' }),
);

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const PredictBody = Type.Object({
  sequence: Sequence,
  include_embeddings: Type.Boolean({ default: true, description: 'return the mean embedding of the last layer over residues (cls/eos excluded)' }),
  include_attention: Type.Boolean({ default: false, description: 'return the attention shape [heads, L, L] of this sequence' }),
  truncation: Truncation,
  model: ModelPick,
});
export type PredictBody = Static<typeof PredictBody>;

const PredictionFields = {
  sequence: Type.String(),
  sequence_length: Type.Integer({ description: 'residues' }),
  embedding: Nullable(Type.Array(Type.Number())),
  embedding_dim: Type.Integer(),
  attention_shape: Nullable(Type.Array(Type.Integer())),
  gpu_id: Type.Integer({ description: 'index of the replica (device) that ran the sequence' }),
  truncated: Type.Optional(Type.Boolean({ description: 'present and true when truncation "truncate" cut the sequence' })),
};

export const PredictResponse = Type.Object({
  ...PredictionFields,
  inference_time_ms: Type.Number(),
  model_name: Type.String(),
});

export function predictBatchBody(maxBatchSize: number) {
  return Type.Object({
    sequences: Type.Array(Sequence, { minItems: 1, maxItems: maxBatchSize }),
    include_embeddings: Type.Boolean({ default: true }),
    include_attention: Type.Boolean({ default: false }),
    truncation: Truncation,
    model: ModelPick,
  });
}
export type PredictBatchBody = Static<ReturnType<typeof predictBatchBody>>;

export const PredictBatchResponse = Type.Object({
  results: Type.Array(Type.Object(PredictionFields)),
  total_sequences: Type.Integer(),
  total_inference_time_ms: Type.Number(),
  average_time_per_sequence_ms: Type.Number(),
  distribution_info: Type.Object({
    total_sequences: Type.Integer(),
    num_gpus_used: Type.Integer(),
    sequences_per_gpu: Type.Record(Type.String(), Type.Integer()),
    gpu_assignments: Type.Record(Type.String(), Type.Array(Type.Integer())),
  }),
  model_name: Type.String(),
});

export function embedBody(maxBatchSize: number) {
  return Type.Object({
    sequences: Type.Array(Sequence, { minItems: 1, maxItems: maxBatchSize }),
    include: Type.Array(Type.Union(EMBED_INCLUDES.map((kind) => Type.Literal(kind))), { default: ['mean'], minItems: 1, uniqueItems: true }),
    repr_layers: Type.Array(Type.Integer(), { default: [-1], minItems: 1, description: 'absolute layers (0 = embeddings) or negative from the end (-1 = last, after the final LayerNorm)' }),
    truncation: Truncation,
    model: ModelPick,
  });
}
export type EmbedBody = Static<ReturnType<typeof embedBody>>;

const TaskSequence = Type.String({ description: 'Protein sequence (see /predict)' });

export const ScoreBody = Type.Object({
  sequence: TaskSequence,
  mutations: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 10_000 })),
  scan: Type.Optional(Type.Boolean()),
  method: Type.Union(SCORE_METHODS.map((m) => Type.Literal(m)), { default: 'masked_marginal' }),
  truncation: Truncation,
  model: ModelPick,
});
export type ScoreBody = Static<typeof ScoreBody>;

export function pllBody(maxBatchSize: number) {
  return Type.Object({
    sequences: Type.Array(TaskSequence, { minItems: 1, maxItems: maxBatchSize }),
    truncation: Truncation,
    per_position: Type.Optional(Type.Boolean({ description: 'also return log p(true residue | it masked) at each position' })),
    model: ModelPick,
  });
}
export type PllBody = Static<ReturnType<typeof pllBody>>;

export const FillMaskBody = Type.Object({ sequence: TaskSequence, top_k: Type.Integer({ default: DEFAULT_TOP_K }), truncation: Truncation, model: ModelPick });
export type FillMaskBody = Static<typeof FillMaskBody>;

export const ErrorResponse = Type.Object({ detail: Type.String(), error: Type.String() });
