// Assembles the Fastify application: plugins, auth, metrics hooks, error mapping, routes.
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Settings } from './settings.js';
import { registerErrorHandling, unauthorized } from './errors.js';
import { ServingRuntime } from './runtime.js';
import { Metrics } from './metrics.js';
import { serviceRoutes } from './routes/service.js';
import { predictRoutes } from './routes/predict.js';
import { embedRoutes } from './routes/embed.js';
import { taskRoutes } from './routes/tasks.js';
import { scoreStreamRoutes } from './routes/score-stream.js';
import { UI_ROUTES, uiRoutes } from './routes/ui.js';

/** Routes reached without the API key: probes, scrapers, and the web page's assets (which hold no data). */
const OPEN_ROUTES = new Set<string>(['/health', '/ready', '/v1/health/live', '/v1/health/ready', '/metrics', ...UI_ROUTES]);

export interface App {
  app: FastifyInstance;
  runtime: ServingRuntime;
}

export async function buildApp(settings: Settings, opts: { version: string; logger?: boolean | object } = { version: '0.0.0' }): Promise<App> {
  const app = Fastify({
    logger: opts.logger ?? { level: settings.logLevel },
    bodyLimit: settings.bodyLimitBytes,
    // Strict input: no type coercion ("yes" is not a boolean), defaults filled in.
    ajv: { customOptions: { coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false } },
    // Requests are drained on shutdown; a keep-alive connection must not hold the process open.
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>();

  const metrics = new Metrics();
  const runtime = new ServingRuntime(settings, metrics, app.log);

  await app.register(cors, { origin: settings.corsOrigins === '*' ? '*' : settings.corsOrigins });
  await app.register(swagger, {
    openapi: { info: { title: 'esm2-serve', version: opts.version, description: 'ESM-2 protein language model inference' } },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.addHook('onRequest', async (request) => {
    if (!settings.apiKey || OPEN_ROUTES.has(request.routeOptions.url ?? '')) return;
    const given = Buffer.from(/^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? '');
    const expected = Buffer.from(settings.apiKey);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw unauthorized();
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    metrics.requestDuration.observe({ route }, reply.elapsedTime / 1000);
  });
  // While draining, replies close their connection: a client keep-alive socket must not hold app.close() (and the exit) open.
  app.addHook('onSend', async (_request, reply) => void (runtime.state === 'draining' && reply.header('connection', 'close')));
  registerErrorHandling(app);

  await app.register(serviceRoutes, { runtime, version: opts.version });
  await app.register(predictRoutes, { runtime });
  await app.register(embedRoutes, { runtime });
  await app.register(taskRoutes, { runtime });
  await app.register(scoreStreamRoutes, { runtime });
  await app.register(uiRoutes);
  return { app, runtime };
}
