// Service routes: /, health (seed-compatible), liveness/readiness probes, /v1/models, /metrics.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { precisionOf, type LoadedModel, type ServingRuntime } from '../runtime.js';
import type { Member } from '../members.js';
import { checkpointIdentity, identityJson } from '../../model/identity.js';
import { settingsInForce } from '../settings.js';
import { FAMILY_NAMES } from '../../model/config.js';
import { healthVerdict, livenessVerdict } from '../health.js';
import type { PoolReplicaInfo } from '../../engine/pool.js';

const GPU_KINDS = /^(cuda|tensorrt|webgpu)/;

/** One ensemble member in /v1/models. */
const memberInfo = ({ name, source, model }: Member) => ({
  name,
  source,
  family: model.checkpoint.config.family,
  family_name: FAMILY_NAMES[model.checkpoint.config.family],
  layers: model.checkpoint.config.numLayers,
  hidden_size: model.checkpoint.config.hiddenSize,
  tasks: tasksOf(model),
  ...identityJson(checkpointIdentity(model.checkpoint)),
  precision: precisionOf(model.pool.replicaInfo()) ?? model.precision,
});

/** One replica in /health and /v1/models: the device asked for, the one obtained and why they differ, its precision. */
const deviceInfo = (r: PoolReplicaInfo) => ({
  id: r.index,
  requested: r.device,
  device: r.actual,
  precision: r.precision ?? null,
  state: r.state,
  fallback_reason: r.fallbackReason ?? null,
});

/** What a checkpoint serves: contacts only with a contact head (contact_head.regression tensors). */
const tasksOf = (model: LoadedModel) => ['embed', 'logits', ...(model.checkpoint.hasContactHead ? ['contacts'] : []), 'fill-mask', 'score', 'scan', 'pll'];

export const serviceRoutes: FastifyPluginAsyncTypebox<{ runtime: ServingRuntime; version: string }> = async (app, { runtime, version }) => {
  /** Every replica of every member (an ensemble's devices entries also name their member). */
  const replicas = () => runtime.members.flatMap((m) => m.model.pool.replicaInfo());
  const devices = () =>
    runtime.ensemble ? runtime.members.flatMap((m) => m.model.pool.replicaInfo().map((r) => ({ ...deviceInfo(r), model: m.name }))) : replicas().map(deviceInfo);
  /** Ready for traffic: the model is loaded, not draining, and at least one replica of every member serves now. */
  const ready = () => runtime.state === 'ready' && runtime.members.length > 0 && runtime.members.every((m) => m.model.pool.replicaInfo().some((r) => r.state === 'ready'));

  app.get('/', { schema: { summary: 'Service information' } }, async () => ({
    service: 'esm2-serve',
    version,
    docs: '/docs',
    health: '/health',
    batch_queue_enabled: runtime.settings.batchQueueEnabled,
  }));

  // The statuses and when each is given: server/health.ts.
  app.get('/health', { schema: { summary: 'Health (seed-compatible): 200 healthy, degraded (some replica down or on a fallback device, still serving) or demo (random weights); 503 otherwise' } }, async (_request, reply) => {
    const all = replicas();
    // Members run on the same devices: the GPUs are the first member's.
    const gpus = (runtime.model?.pool.replicaInfo() ?? []).filter((r) => GPU_KINDS.test(r.actual));
    const { status, code, message } = healthVerdict({ state: runtime.state, message: runtime.message, replicas: all, demoReason: runtime.demoReason, devicesFallback: runtime.devicesFallback });
    return reply.code(code).send({
      status,
      gpu_count: gpus.length,
      gpu_ids: gpus.map((r) => r.index),
      model_loaded: runtime.model !== undefined,
      model_name: runtime.modelName,
      message,
      devices: devices(),
    });
  });

  // When liveness fails and when it must not: server/health.ts livenessVerdict.
  app.get('/v1/health/live', { schema: { summary: 'Liveness probe: 503 only when every replica has failed for good (or the model could not be loaded); 200 while starting, serving, degraded or draining' } }, async (_request, reply) => {
    const { code, body } = livenessVerdict(runtime.state, runtime.message, runtime.unavailableReason());
    return reply.code(code).send(body);
  });

  /** Why no replica serves now: every one failed for good, or each is restarting. */
  const noneServing = () =>
    runtime.unavailableReason() ?? `no replica serves now (${replicas().map((r) => `${r.index}: ${r.state}`).join(', ')})`;
  const readiness = async (_request: unknown, reply: { code(n: number): { send(b: unknown): unknown } }) =>
    ready()
      ? reply.code(200).send({ status: 'ready' })
      : runtime.state === 'ready'
        ? reply.code(503).send({ status: 'no replica serving', detail: noneServing() })
        : reply.code(503).send({ status: runtime.state, detail: runtime.message });
  app.get('/ready', { schema: { summary: 'Readiness probe: 503 until the model is compiled and every replica has started, while draining, and while no replica serves' } }, readiness);
  app.get('/v1/health/ready', { schema: { summary: 'Readiness probe (alias of /ready)' } }, readiness);

  app.get('/v1/models', { schema: { summary: 'The model, devices and settings in force' } }, async () => {
    const model = runtime.model;
    const config = model?.checkpoint.config;
    return {
      name: runtime.modelName,
      source: runtime.source,
      state: runtime.state,
      // The model family config.json chose: "esm2" (rotary), "esm1" (absolute, ESM-1b/ESM-1v) or "esmc" (model_type "esmc").
      family: config?.family ?? null,
      family_name: config ? FAMILY_NAMES[config.family] : null,
      tasks: model ? tasksOf(model) : null,
      layers: config?.numLayers ?? null,
      hidden_size: config?.hiddenSize ?? null,
      attention_heads: config?.numHeads ?? null,
      // The published model(s) of this shape, the parameter count, and the licence of those published weights (null: not a published shape).
      ...(model ? identityJson(checkpointIdentity(model.checkpoint)) : { published_shape: null, parameters: null, license: null }),
      vocabulary: model ? [...model.checkpoint.tokenizer.vocab] : null,
      // Ids below this are tokens; the rest (ESM C: 33 of 64) are placeholders `<unused_N>` the head still has logits for.
      vocabulary_tokens: model ? model.checkpoint.tokenizer.tokenCount : null,
      // MAX_SEQUENCE_LENGTH, or the family's hard limit where smaller (ESM-1b/1v: 1022); windows are this long too.
      max_sequence_length: model?.lengthLimit.residues ?? runtime.settings.maxSequenceLength,
      max_sequence_length_reason: model?.lengthLimit.reason ?? null,
      // Each replica's precision is that of the device it obtained; this one is theirs ('mixed' when they differ).
      precision: precisionOf(replicas()) ?? model?.precision ?? null,
      devices: devices(),
      devices_description: model?.devicesDescription ?? null,
      settings: settingsInForce(runtime.settings),
      // An ensemble (MODEL_NAME a comma list): every member, in order; `model` in a request picks one.
      ...(runtime.ensemble ? { ensemble: true, members: runtime.members.map(memberInfo) } : {}),
    };
  });

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', hide: false } }, async (_request, reply) => {
    runtime.updateQueueGauges();
    return reply.type(runtime.metrics.registry.contentType).send(await runtime.metrics.registry.metrics());
  });
};
