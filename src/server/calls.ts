// The inference routes' work, from a validated body to the answer, shared by HTTP (routes/) and
// gRPC (grpc/esm2.ts): the member picked → sequences encoded and checked → the cost → admitted
// (common.ts admitCall) → run as one InferenceRequest. The protocols differ only in how a body
// arrives and how the answer is written.
import { encodeSequence, type EncodedSequence } from '../tasks/sequences.js';
import { InputError } from '../tasks/errors.js';
import { embedTensors, embedWant, NO_CONTACT_HEAD, resolveReprLayers, type EmbedSpec, type EmbedTensor } from '../tasks/embed.js';
import { embedCost, maskedCost, scoreCost, type ResponseFormat } from '../tasks/cost.js';
import { scanMutations, scoreMutations } from '../tasks/score.js';
import { pseudoLikelihoodFromMatrix } from '../tasks/pll.js';
import { maskedLogProbs } from '../tasks/masked-marginals.js';
import { fillMask } from '../tasks/fill-mask.js';
import type { EmbedBody, FillMaskBody, PllBody, ScoreBody } from './schemas.js';
import type { ServingRuntime } from './runtime.js';
import { admitCall, readyMember, scoreContext, type CallScope } from './routes/common.js';
import { admitEnsembleScore, ensembleScan, ensembleScores, positionsOf } from './routes/ensemble-score.js';

/** One sequence's embedding: its index in the request, its encoding and its tensors. */
export interface EmbeddedSequence {
  index: number;
  encoded: EncodedSequence;
  tensors: EmbedTensor[];
}

/** /v1/embed's answer before it is written: the member's name and every sequence's tensors. */
export interface EmbedAnswer {
  model: string;
  results: EmbeddedSequence[];
}

/**
 * /v1/embed. `format` is the response's (its JSON size is a limit, safetensors' is not). With
 * `onResult`, each sequence is handed over as soon as it is done (any order; a stream writes it).
 */
export async function embedCall(
  runtime: ServingRuntime,
  scope: CallScope,
  body: EmbedBody,
  format: ResponseFormat,
  onResult?: (result: EmbeddedSequence, model: string) => void,
): Promise<EmbedAnswer> {
  const member = readyMember(runtime, body.model);
  const { model } = member;
  const { config, tokenizer } = model.checkpoint;
  let layers: number[];
  try {
    layers = resolveReprLayers(body.repr_layers, config.numLayers);
  } catch (err) {
    throw new InputError('repr_layers', (err as Error).message);
  }
  const spec: EmbedSpec = { include: body.include, layers };
  if (spec.include.includes('contacts') && !model.checkpoint.hasContactHead) throw new InputError('include', NO_CONTACT_HEAD);
  const encoded = body.sequences.map((s, i) => encodeSequence(tokenizer, s, `sequences[${i}]`, model.lengthLimit, body.truncation));
  const want = embedWant(spec);
  const cost = embedCost(config, model.windowSize, encoded.map((e) => e.length), want, format);
  const embedded = (index: number, result: Parameters<typeof embedTensors>[0]): EmbeddedSequence => ({
    index,
    encoded: encoded[index],
    tensors: embedTensors(result, spec, encoded[index].length, config.hiddenSize, config.vocabSize),
  });
  const results = await admitCall(runtime, model, scope, cost).run(async (inference) => {
    if (!onResult) return (await inference.sequences(encoded.map((e) => ({ encoded: e })), want)).map((o, i) => embedded(i, o.result));
    // One call per sequence, so that each is handed over as it completes.
    return Promise.all(
      encoded.map(async (e, i) => {
        const [outcome] = await inference.sequences([{ encoded: e }], want);
        const result = embedded(i, outcome.result);
        onResult(result, member.name);
        return result;
      }),
    );
  });
  return { model: member.name, results };
}

/** /v1/score: listed mutations or the scan; an ensemble without `model` answers the members' mean. */
export async function scoreCall(runtime: ServingRuntime, scope: CallScope, body: ScoreBody) {
  if (runtime.ensemble && body.model === undefined) {
    const members = runtime.members.map((m) => m.name);
    const ensemble = admitEnsembleScore(runtime, scope, body);
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
  const admitted = admitCall(runtime, model, scope, cost);
  if (body.scan) {
    const scan = await admitted.run((inference) => scanMutations(scoreContext(member, inference), encoded.tokens, body.method));
    return { model: member.name, method: body.method, ...scan };
  }
  const scores = await admitted.run((inference) => scoreMutations(scoreContext(member, inference), encoded.tokens, body.mutations!, body.method));
  return { model: member.name, method: body.method, scores };
}

/** /v1/pll: each sequence's pseudo-log-likelihood (and per-position log-probabilities when asked). */
export async function pllCall(runtime: ServingRuntime, scope: CallScope, body: PllBody) {
  const member = readyMember(runtime, body.model);
  const { model } = member;
  const encoded = body.sequences.map((s, i) => encodeSequence(model.checkpoint.tokenizer, s, `sequences[${i}]`, model.lengthLimit, body.truncation));
  const vocabSize = model.checkpoint.tokenizer.vocab.length;
  const perSequence = encoded.map((e) => ({ residues: e.length, positions: e.length }));
  const answers = encoded.reduce((n, e) => n + (body.per_position ? e.length : 0) + 2, 0);
  const admitted = admitCall(runtime, model, scope, maskedCost(model.checkpoint.config, model.windowSize, perSequence, answers));
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
}

/** /v1/fill-mask: the most probable residues at each <mask>. */
export async function fillMaskCall(runtime: ServingRuntime, scope: CallScope, body: FillMaskBody) {
  const member = readyMember(runtime, body.model);
  const { model } = member;
  const encoded = encodeSequence(model.checkpoint.tokenizer, body.sequence, 'sequence', model.lengthLimit, body.truncation);
  const cost = embedCost(model.checkpoint.config, model.windowSize, [encoded.length], { logits: true }, 'json');
  const predictions = await admitCall(runtime, model, scope, { ...cost, responseFloats: 0 }).run((inference) =>
    fillMask(inference.infer, model.checkpoint.tokenizer, encoded.tokens, body.top_k),
  );
  return { model: member.name, predictions };
}
