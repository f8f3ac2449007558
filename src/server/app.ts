// Assembles the Fastify application: plugins, auth, metrics hooks, error mapping, routes.
import Fastify, { type FastifyInstance } from 'fastify';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Settings } from './settings.js';
import { clientErrorHandler, registerErrorHandling } from './errors.js';
import { installAccessControl } from './access.js';
import type { ClientAccess } from './clients.js';
import { readBodiesAsJson } from './content-type.js';
import { ServingRuntime, type EngineTestHooks } from './runtime.js';
import { Metrics } from './metrics.js';
import { installConnectionLimits } from './connections.js';
import { BodyBudget } from './body.js';
import { installWriteTimeout } from './write-timeout.js';
import { serviceRoutes } from './routes/service.js';
import { predictRoutes } from './routes/predict.js';
import { embedRoutes } from './routes/embed.js';
import { taskRoutes } from './routes/tasks.js';
import { scoreStreamRoutes } from './routes/score-stream.js';
import { UI_ROUTES, uiRoutes } from './routes/ui.js';
import type { Tracing } from './tracing.js';
import { tracingWanted } from './tracing-env.js';
import { installHttpTracing } from './http-tracing.js';
import type { GrpcServer } from './grpc/server.js';

/** Routes reached without the API key: probes, scrapers, and the web page's assets (which hold no data). */
const OPEN_ROUTES = new Set<string>(['/health', '/ready', '/v1/health/live', '/v1/health/ready', '/metrics', ...UI_ROUTES]);

export interface App {
  app: FastifyInstance;
  runtime: ServingRuntime;
  /** Every route, as registered (for tests that must cover them all, e.g. access control). */
  routes: { method: string; url: string }[];
  /** Request body bytes held against MAX_BODY_BYTES_IN_FLIGHT (server/body.ts). */
  bodies: BodyBudget;
  /** The API key check (reload on SIGHUP; check for other protocols). */
  access: ClientAccess;
  /** The gRPC server when GRPC_PORT is set: `listen()` it after the HTTP server; app.close() drains it (server/grpc/). */
  grpc?: GrpcServer;
}

export async function buildApp(
  settings: Settings,
  opts: { version: string; logger?: boolean | object; engine?: EngineTestHooks; tracing?: Tracing | null } = { version: '0.0.0' },
): Promise<App> {
  const app = Fastify({
    logger: opts.logger ?? { level: settings.logLevel },
    bodyLimit: settings.bodyLimitBytes,
    // Strict input: no type coercion ("yes" is not a boolean), defaults filled in.
    ajv: { customOptions: { coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false } },
    // Requests are drained on shutdown; a keep-alive connection must not hold the process open.
    forceCloseConnections: 'idle',
    // Slow clients: the whole request (headers and body) must arrive within CLIENT_TIMEOUT_MS, else
    // Node answers 408 and closes the connection. Checked every tenth of it (Node's default: 30 s).
    requestTimeout: settings.clientTimeoutMs,
    // The 408 (and 400/431 from the HTTP parser) in the service's own `{detail, error}` form.
    clientErrorHandler: clientErrorHandler(settings.clientTimeoutMs),
    // An idle keep-alive connection is closed after this (Node adds its keepAliveTimeoutBuffer, 1 s,
    // to the timeout it advertises, so a client does not reuse a socket as it closes). Fastify's 72 s
    // let idle sockets pile up (docs/reliability.md, promise 3).
    keepAliveTimeout: settings.keepAliveTimeoutMs,
    http: {
      requestTimeout: settings.clientTimeoutMs,
      headersTimeout: settings.clientTimeoutMs,
      connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.round(settings.clientTimeoutMs / 10))),
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // OpenTelemetry, when the OTEL_* variables ask for it (server/tracing.ts; `tracing`: given, or null: off): first, so that the server span covers every other hook.
  // The SDK and gRPC (≈28 and ≈40 MiB resident) are loaded only when asked for.
  const tracing = opts.tracing === undefined ? (tracingWanted() ? (await import('./tracing.js')).startTracing(opts.version) : undefined) : (opts.tracing ?? undefined);
  if (tracing) installHttpTracing(app, tracing);

  const routes: App['routes'] = [];
  app.addHook('onRoute', ({ method, url }) => void routes.push(...[method].flat().map((m) => ({ method: m, url }))));
  const metrics = new Metrics();
  const runtime = new ServingRuntime(settings, metrics, app.log, opts.engine);
  installConnectionLimits(app.server, settings, metrics);

  // Before any plugin is registered, so that their routes (the API docs) answer errors the same way,
  // and read bodies the same way (a plugin's context copies the parsers when it is registered).
  registerErrorHandling(app);
  const bodies = new BodyBudget(settings.maxBodyBytesInFlight, metrics);
  readBodiesAsJson(app, bodies);
  await app.register(cors, { origin: settings.corsOrigins === '*' ? '*' : settings.corsOrigins });
  await app.register(swagger, {
    openapi: { info: { title: 'esm2-serve', version: opts.version, description: 'ESM-2 protein language model inference' } },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // A client that stops reading an answer has its connection destroyed after RESPONSE_WRITE_TIMEOUT_MS without progress.
  installWriteTimeout(app, settings, metrics);
  const access = installAccessControl(app, settings, OPEN_ROUTES, metrics);
  // gRPC calls take the same path as HTTP requests; closing the app drains them as it drains HTTP.
  const grpc = settings.grpcPort === undefined ? undefined : (await import('./grpc/server.js')).createGrpcServer(runtime, access, app.log, tracing);
  if (grpc) app.addHook('preClose', async () => grpc.close(settings.shutdownTimeoutMs));
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    metrics.requestDuration.observe({ route }, reply.elapsedTime / 1000);
  });
  // The client closed its connection before the answer: its queued work is dropped (routes/common.ts).
  app.addHook('onRequest', async (request, reply) => {
    // Each request adds a bounded set of 'close' listeners (Fastify's, this one, admission's memory
    // release, the inference's end, the client-gone signal, the write timeout, tracing): more than
    // Node's default warning threshold of 10, never more than this.
    reply.raw.setMaxListeners(32);
    reply.raw.once('close', () => void (!reply.raw.writableFinished && metrics.requestsCancelled.inc({ route: request.routeOptions.url ?? 'unmatched' })));
  });
  // A body over BODY_LIMIT_BYTES is refused unread: close the connection rather than read the rest of it.
  app.addHook('onSend', async (_request, reply) => void (reply.statusCode === 413 && reply.header('connection', 'close')));
  // While draining, replies close their connection: a client keep-alive socket must not hold app.close() (and the exit) open.
  app.addHook('onSend', async (_request, reply) => void (runtime.state === 'draining' && reply.header('connection', 'close')));

  await app.register(serviceRoutes, { runtime, version: opts.version });
  await app.register(predictRoutes, { runtime });
  await app.register(embedRoutes, { runtime });
  await app.register(taskRoutes, { runtime });
  await app.register(scoreStreamRoutes, { runtime });
  await app.register(uiRoutes);
  return { app, runtime, routes, bodies, access, ...(grpc ? { grpc } : {}) };
}
