// Promise 6, access control: with API_KEY set, every route the app has (enumerated as registered,
// so a new route cannot slip through) answers 401 without the key or with a wrong one, except
// the probes, /metrics and the web page's own files (the page asks for the key; its API calls
// send it); RATE_LIMIT_PER_MINUTE answers 429 with Retry-After per key or per client address;
// every response carries the security headers; CORS answers only the origins in CORS_ORIGINS.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { DEFAULT_CONTENT_SECURITY_POLICY, RateLimiter } from '../src/server/access.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const KEY = 'test-key-0123456789';
const OPEN = ['/health', '/ready', '/v1/health/live', '/v1/health/ready', '/metrics', '/ui', '/ui/', '/ui/style.css', '/ui/js/*'];

/** A concrete URL for a route pattern: parameters and wildcards filled in. */
const concrete = (url: string) => url.replace(/:\w+/g, 'x').replace(/\*/g, 'main.js');

function checkSecurityHeaders(res: LightMyRequestResponse, what: string): void {
  assert.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: x-content-type-options`);
  assert.equal(res.headers['x-frame-options'], 'DENY', `${what}: x-frame-options`);
  assert.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: referrer-policy`);
  assert.match(String(res.headers['content-security-policy']), /default-src '(self|none)'/, `${what}: content-security-policy`);
  assert.ok(res.headers['cache-control'], `${what}: cache-control`);
  if (String(res.headers['content-type']).startsWith('application/json')) assert.equal(res.headers['cache-control'], 'no-store', `${what}: JSON is not stored`);
}

describe('API_KEY', () => {
  let s: TestServer;
  // Its wrong keys are many guesses from one address: the throttle (AUTH_FAILURES_PER_MINUTE) is off here, tested in server-tiers.
  before(async () => (s = await startTestServer({ API_KEY: KEY, AUTH_FAILURES_PER_MINUTE: '0' })));
  after(() => s.close());

  test('every route but the open ones answers 401 without the key or with a wrong one; all carry the security headers', async () => {
    const routes = s.routes.filter((r) => r.method !== 'HEAD');
    assert.ok(routes.length >= 20, `${routes.length} routes`);
    for (const path of ['/predict', '/predict/batch', '/v1/embed', '/v1/score', '/v1/pll', '/v1/fill-mask', '/v1/models', '/docs', '/openapi.json', '/']) {
      assert.ok(routes.some((r) => r.url === path), `${path} is among the routes`);
    }
    const checked: string[] = [];
    for (const { method, url } of routes) {
      const path = concrete(url);
      const ask = (authorization?: string) =>
        s.app.inject({ method: method as 'GET', url: path, headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, ...(method === 'POST' ? { payload: '{}' } : {}) });
      const what = `${method} ${url}`;
      const without = await ask();
      checkSecurityHeaders(without, what);
      // OPTIONS * is @fastify/cors's preflight answer: a browser sends no key on a preflight, and it holds no data.
      if (OPEN.includes(url) || method === 'OPTIONS') {
        assert.notEqual(without.statusCode, 401, `${what} is open`);
        continue;
      }
      assert.equal(without.statusCode, 401, `${what} without a key`);
      assert.equal((without.json() as { error: string }).error, 'unauthorized');
      for (const wrong of [`Bearer ${KEY.slice(0, -1)}x`, `Bearer ${KEY}-and-more`, `Basic ${KEY}`, 'Bearer ']) {
        assert.equal((await ask(wrong)).statusCode, 401, `${what} with ${JSON.stringify(wrong)}`);
      }
      const right = await ask(`Bearer ${KEY}`);
      assert.notEqual(right.statusCode, 401, `${what} with the key`);
      checkSecurityHeaders(right, `${what} with the key`);
      checked.push(what);
    }
    // Unknown paths too: nothing is revealed without the key.
    assert.equal((await s.app.inject({ method: 'GET', url: '/no/such/route' })).statusCode, 401);
    assert.equal((await s.app.inject({ method: 'GET', url: '/no/such/route', headers: { authorization: `Bearer ${KEY}` } })).statusCode, 404);
    console.log(`401 without the key on ${checked.length} routes: ${checked.join(', ')}`);
  });

  test('over real HTTP: the key opens /v1/models, /docs and /openapi.json; the page /ui loads without it', async () => {
    for (const path of ['/v1/models', '/docs', '/openapi.json']) {
      assert.equal((await fetch(`${s.url}${path}`)).status, 401, path);
      const res = await fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${KEY}` } });
      assert.ok(res.status === 200 || res.status === 302, `${path}: ${res.status}`);
      await res.arrayBuffer();
    }
    const page = await fetch(`${s.url}/ui`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    await page.arrayBuffer();
  });
});

describe('RATE_LIMIT_PER_MINUTE', () => {
  let s: TestServer;
  let keyed: TestServer;
  before(async () => {
    s = await startTestServer({ RATE_LIMIT_PER_MINUTE: '5' });
    keyed = await startTestServer({ RATE_LIMIT_PER_MINUTE: '3', API_KEY: KEY });
  });
  after(async () => {
    await s.close();
    await keyed.close();
  });

  // The limiter reads performance.now(): held still here, every request of a test falls in one
  // instant, so the budget and Retry-After are exact however long the requests take.
  const holdClock = (t: TestContext) => {
    const now = performance.now();
    t.mock.method(performance, 'now', () => now);
  };

  test('per client address: the 6th request in a minute gets 429 with Retry-After; another address and the probes are not limited', async (t) => {
    holdClock(t);
    const from = (remoteAddress: string) => s.app.inject({ method: 'GET', url: '/v1/models', remoteAddress });
    for (let i = 0; i < 5; i++) assert.equal((await from('10.0.0.1')).statusCode, 200, `request ${i + 1}`);
    const refused = await from('10.0.0.1');
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.headers['retry-after'], '12', '60 s / 5 requests: one more is allowed in 12 s');
    assert.equal((refused.json() as { error: string }).error, 'rate_limited');
    assert.match((refused.json() as { detail: string }).detail, /5 requests per minute/);
    checkSecurityHeaders(refused, '429');
    assert.equal((await from('10.0.0.2')).statusCode, 200, 'another client has its own budget');
    for (let i = 0; i < 20; i++) {
      for (const url of ['/health', '/ready', '/metrics']) assert.equal((await s.app.inject({ method: 'GET', url, remoteAddress: '10.0.0.1' })).statusCode, 200, url);
    }
  });

  test('per API key: its requests share the budget; requests without the key get 401 and spend none of it', async (t) => {
    holdClock(t);
    const ask = (authorization?: string, remoteAddress = '10.0.0.3') =>
      keyed.app.inject({ method: 'GET', url: '/v1/models', remoteAddress, headers: authorization ? { authorization } : {} });
    for (let i = 0; i < 10; i++) assert.equal((await ask(undefined, `10.0.1.${i}`)).statusCode, 401);
    for (let i = 0; i < 3; i++) assert.equal((await ask(`Bearer ${KEY}`, `10.0.2.${i}`)).statusCode, 200);
    const refused = await ask(`Bearer ${KEY}`, '10.0.2.99');
    assert.equal(refused.statusCode, 429, 'the key is limited whatever the address');
    assert.equal(refused.headers['retry-after'], '20');
  });

  test('the limiter refills at the rate and forgets idle clients', () => {
    let now = 0;
    const limiter = new RateLimiter(60, () => now);
    for (let i = 0; i < 60; i++) assert.equal(limiter.take('a'), 0);
    assert.equal(Math.round(limiter.take('a')), 1000, 'one more in 1 s');
    now += 1000;
    assert.equal(limiter.take('a'), 0);
    assert.ok(limiter.take('a') > 0);
    assert.equal(limiter.take('b'), 0);
    assert.equal(limiter.trackedClients, 2);
    now += 60_000;
    (limiter as unknown as { sweep(): void }).sweep();
    assert.equal(limiter.trackedClients, 0, 'full buckets are forgotten');
    limiter.close();
  });
});

describe('CORS_ORIGINS and security headers', () => {
  let s: TestServer;
  const ALLOWED = 'https://allowed.example';
  before(async () => (s = await startTestServer({ CORS_ORIGINS: ALLOWED, API_KEY: KEY })));
  after(() => s.close());

  test('an allowed Origin gets Access-Control-Allow-Origin; another gets none, on requests and preflights', async () => {
    const auth = { authorization: `Bearer ${KEY}` };
    const allowed = await fetch(`${s.url}/v1/models`, { headers: { origin: ALLOWED, ...auth } });
    assert.equal(allowed.headers.get('access-control-allow-origin'), ALLOWED);
    await allowed.arrayBuffer();
    const evil = await fetch(`${s.url}/v1/models`, { headers: { origin: 'https://evil.example', ...auth } });
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    await evil.arrayBuffer();

    const preflight = (origin: string) =>
      fetch(`${s.url}/v1/embed`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    const ok = await preflight(ALLOWED);
    assert.equal(ok.status, 204, 'a browser preflight (which carries no key) is answered');
    assert.equal(ok.headers.get('access-control-allow-origin'), ALLOWED);
    assert.match(ok.headers.get('access-control-allow-methods') ?? '', /POST/);
    const refused = await preflight('https://evil.example');
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    await refused.arrayBuffer();
  });

  test('security headers on JSON, Prometheus text, errors and the API docs', async () => {
    const cases: [string, Record<string, string>][] = [
      ['/health', {}],
      ['/metrics', {}],
      ['/v1/models', { authorization: `Bearer ${KEY}` }],
      ['/v1/models', {}],
      ['/docs/', { authorization: `Bearer ${KEY}` }],
      ['/nowhere', { authorization: `Bearer ${KEY}` }],
    ];
    for (const [url, headers] of cases) {
      const res = await s.app.inject({ method: 'GET', url, headers });
      checkSecurityHeaders(res, `GET ${url} → ${res.statusCode}`);
    }
    const docs = await s.app.inject({ method: 'GET', url: '/docs/', headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(docs.statusCode, 200);
    assert.equal(docs.headers['content-security-policy'], DEFAULT_CONTENT_SECURITY_POLICY);
    assert.ok(!/<script>(?!\s*<\/script>)/.test(docs.body) && !/<script(?![^>]*\bsrc=)[^>]*>\s*\S/.test(docs.body), 'the docs page has no inline script for the policy to block');
    const validation = await s.app.inject({ method: 'POST', url: '/predict', headers: { authorization: `Bearer ${KEY}` }, payload: { sequence: 5 } });
    assert.equal(validation.statusCode, 422);
    checkSecurityHeaders(validation, 'a 422');
  });
});
