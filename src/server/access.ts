// Who may call what, how often, and the headers every response carries: the API keys (API_KEY,
// API_KEYS_FILE: server/clients.ts), the per-key / per-address rate limit and the security
// headers. CORS is @fastify/cors, registered in app.ts with CORS_ORIGINS.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ClientAccess, type Client } from './clients.js';
import type { Metrics } from './metrics.js';
import type { Settings } from './settings.js';

export { RateLimiter, rateLimited } from './rate-limit.js';

/**
 * The policy of responses that set none of their own: this server's own resources only (the API
 * docs at /docs load their scripts and styles from here), never framed. /ui sets a stricter one.
 */
export const DEFAULT_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Set on every response unless its route set the header itself (the web page's assets set their own cache policy and CSP). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // API answers are computed per request (and may be private): no cache keeps them.
  'cache-control': 'no-store',
  'content-security-policy': DEFAULT_CONTENT_SECURITY_POLICY,
};

const clients = new WeakMap<FastifyRequest, Client>();

/** The caller of an accepted request (its key's name and tier); tier 1 for a request not checked (an open route). */
export function clientOf(request: FastifyRequest): Client {
  return clients.get(request) ?? { tier: 1 };
}

/**
 * Adds the hooks to `app` itself (not as an encapsulated plugin), so they cover every route
 * registered after, and the 404 handler. `openRoutes` are reached without key or rate limit.
 * Returns the key check (ClientAccess: reload on SIGHUP, check for other protocols).
 */
export function installAccessControl(app: FastifyInstance, settings: Settings, openRoutes: ReadonlySet<string>, metrics?: Metrics): ClientAccess {
  const access = new ClientAccess(settings);
  app.addHook('onClose', async () => access.close());

  app.addHook('onRequest', async (request) => {
    if (openRoutes.has(request.routeOptions.url ?? '')) return;
    const client = access.check(request.headers.authorization, request.ip);
    clients.set(request, client);
    if (client.name !== undefined) metrics?.keyRequests.inc({ key: client.name });
  });

  app.addHook('onSend', async (_request, reply) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) if (!reply.hasHeader(name)) void reply.header(name, value);
  });
  return access;
}
