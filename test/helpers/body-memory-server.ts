// A child process serving one POST route through the service's body reading (server/content-type.ts
// and server/body.ts, with the same timeouts as server/app.ts), answering its parent's
// { type: 'memory' } with process.memoryUsage() after a full gc() (run with --expose-gc) and the budget.
// argv: BODY_LIMIT_BYTES MAX_BODY_BYTES_IN_FLIGHT CLIENT_TIMEOUT_MS [fastify: Fastify's own parsers, as before the budget, for bench/body-flood.ts]
import Fastify from 'fastify';
import { BodyBudget } from '../../src/server/body.js';
import { readBodiesAsJson } from '../../src/server/content-type.js';
import { registerErrorHandling } from '../../src/server/errors.js';

const [bodyLimit, budgetBytes, clientTimeoutMs] = process.argv.slice(2, 5).map(Number);
const fastifyParsers = process.argv[5] === 'fastify';
const app = Fastify({
  logger: false,
  bodyLimit,
  requestTimeout: clientTimeoutMs,
  http: { requestTimeout: clientTimeoutMs, headersTimeout: clientTimeoutMs, connectionsCheckingInterval: Math.max(50, Math.round(clientTimeoutMs / 10)) },
});
registerErrorHandling(app);
const budget = new BodyBudget(budgetBytes);
if (!fastifyParsers) readBodiesAsJson(app, budget);
app.addHook('onSend', async (_request, reply) => void (reply.statusCode === 413 && reply.header('connection', 'close')));
app.post('/echo', async (request) => ({ keys: Object.keys(request.body as object) }));
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (message: { type: string }) => {
  if (message.type === 'memory') {
    gc?.();
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
    process.send!({ type: 'memory', rss, heapUsed, external, arrayBuffers, inFlight: budget.inFlight, peak: budget.peak });
  } else if (message.type === 'exit') {
    void app.close().then(() => process.exit(0));
  }
});
process.send!({ type: 'ready', port: typeof address === 'object' && address ? address.port : 0 });
