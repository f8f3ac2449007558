// Service routes: /, health (seed-compatible), liveness/readiness probes, /v1/models, /metrics.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServingRuntime } from '../runtime.js';
import { settingsInForce } from '../settings.js';

const GPU_KINDS = /^(cuda|tensorrt|webgpu)/;

export const serviceRoutes: FastifyPluginAsyncTypebox<{ runtime: ServingRuntime; version: string }> = async (app, { runtime, version }) => {
  const replicas = () => runtime.model?.pool.replicaInfo() ?? [];
  /** Ready for traffic: the model is loaded, not draining, and at least one replica serves now. */
  const ready = () => runtime.state === 'ready' && replicas().some((r) => r.state === 'ready');

  app.get('/', { schema: { summary: 'Service information' } }, async () => ({
    service: 'esm2-serve',
    version,
    docs: '/docs',
    health: '/health',
    batch_queue_enabled: runtime.settings.batchQueueEnabled,
  }));

  // healthy: every replica serves. degraded (still 200): some replica is down — restarting after a
  // crash or hang, or failed for good — while another serves or one is coming back, so requests are
  // still accepted and answered. unhealthy (503): every replica has failed, or the service is
  // draining or could not load the model. initializing (503): the model is loading.
  app.get('/health', { schema: { summary: 'Health (seed-compatible): 200 healthy or degraded (some replicas down, still serving); 503 otherwise' } }, async (_request, reply) => {
    const all = replicas();
    const serving = all.filter((r) => r.state === 'ready').length;
    const recovering = all.filter((r) => r.state === 'restarting' || r.state === 'starting').length;
    const gpus = all.filter((r) => GPU_KINDS.test(r.actual));
    const status =
      runtime.state === 'initializing'
        ? 'initializing'
        : runtime.state !== 'ready' || serving + recovering === 0
          ? 'unhealthy'
          : serving === all.length
            ? 'healthy'
            : 'degraded';
    const down = all.length - serving;
    const message =
      status === 'degraded'
        ? `${runtime.message}; ${down} of ${all.length} replicas down (${all.filter((r) => r.state !== 'ready').map((r) => `${r.index}: ${r.state}`).join(', ')})`
        : status === 'unhealthy' && runtime.state === 'ready'
          ? `every replica has failed: ${all.map((r) => `${r.index}: ${r.error ?? r.state}`).join('; ')}`
          : runtime.message;
    return reply.code(status === 'healthy' || status === 'degraded' ? 200 : 503).send({
      status,
      gpu_count: gpus.length,
      gpu_ids: gpus.map((r) => r.index),
      model_loaded: runtime.model !== undefined,
      model_name: runtime.modelName,
      message,
      devices: all.map((r) => ({ id: r.index, requested: r.device, device: r.actual, state: r.state })),
    });
  });

  const live = async () => ({ status: 'alive' });
  app.get('/v1/health/live', { schema: { summary: 'Liveness probe' } }, live);

  const readiness = async (_request: unknown, reply: { code(n: number): { send(b: unknown): unknown } }) =>
    ready()
      ? reply.code(200).send({ status: 'ready' })
      : reply.code(503).send({ status: runtime.state === 'ready' ? 'no replica serving' : runtime.state, detail: runtime.message });
  app.get('/ready', { schema: { summary: 'Readiness probe: 503 until the model is compiled and every replica has started, while draining, and while no replica serves' } }, readiness);
  app.get('/v1/health/ready', { schema: { summary: 'Readiness probe (alias of /ready)' } }, readiness);

  app.get('/v1/models', { schema: { summary: 'The model, devices and settings in force' } }, async () => {
    const model = runtime.model;
    const config = model?.checkpoint.config;
    return {
      name: runtime.modelName,
      source: runtime.source,
      state: runtime.state,
      layers: config?.numLayers ?? null,
      hidden_size: config?.hiddenSize ?? null,
      attention_heads: config?.numHeads ?? null,
      vocabulary: model ? [...model.checkpoint.tokenizer.vocab] : null,
      max_sequence_length: runtime.settings.maxSequenceLength,
      precision: model?.precision ?? null,
      devices: replicas().map((r) => ({ id: r.index, requested: r.device, device: r.actual, state: r.state, fallback_reason: r.fallbackReason ?? null })),
      devices_description: model?.devicesDescription ?? null,
      settings: settingsInForce(runtime.settings),
    };
  });

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', hide: false } }, async (_request, reply) => {
    runtime.updateQueueGauges();
    return reply.type(runtime.metrics.registry.contentType).send(await runtime.metrics.registry.metrics());
  });
};
