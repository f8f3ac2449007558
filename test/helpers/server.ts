// A real esm2-serve on the golden checkpoint, listening on a random loopback port.
import assert from 'node:assert/strict';
import type { GoldenCase } from './golden.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/server/app.js';
import type { EngineTestHooks, ServingRuntime } from '../../src/server/runtime.js';
import type { BodyBudget } from '../../src/server/body.js';
import type { ClientAccess } from '../../src/server/clients.js';
import { loadSettings } from '../../src/server/settings.js';
import { fixtureModelDir } from './paths.js';

export interface TestServer {
  app: FastifyInstance;
  runtime: ServingRuntime;
  routes: { method: string; url: string }[];
  /** Request body bytes held against MAX_BODY_BYTES_IN_FLIGHT. */
  bodies: BodyBudget;
  /** The API key check (reload: what SIGHUP does). */
  access: ClientAccess;
  url: string;
  /** The gRPC port, when GRPC_PORT was given. */
  grpcPort?: number;
  close(): Promise<void>;
}

/** Starts the service with the given settings (environment-variable names) over the defaults; `engine`: test-only replica faults and restart policy. */
export async function startTestServer(env: Record<string, string> = {}, opts: { engine?: EngineTestHooks } = {}): Promise<TestServer> {
  const cache = await mkdtemp(join(tmpdir(), 'esm2-server-'));
  process.env.ESM2_COMPILE_CACHE = cache;
  const settings = loadSettings({ MODEL_NAME: fixtureModelDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', DEVICES: 'cpu', ...env });
  const { app, runtime, routes, bodies, access, grpc } = await buildApp(settings, { version: 'test', logger: false, ...(opts.engine ? { engine: opts.engine } : {}) });
  await app.listen({ host: settings.host, port: 0 });
  const grpcPort = await grpc?.listen();
  await runtime.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    app,
    runtime,
    routes,
    bodies,
    access,
    url: `http://127.0.0.1:${port}`,
    ...(grpcPort === undefined ? {} : { grpcPort }),
    async close() {
      await app.close();
      await runtime.drain();
      await rm(cache, { recursive: true, force: true });
    },
  };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

/** POST /v1/score on every case that lists variants, both methods: each mutation's score within 1e-3 of the fixture's. */
export async function assertGoldenScores(url: string, cases: readonly GoldenCase[], headers: Record<string, string> = {}): Promise<void> {
  for (const c of cases.filter((x) => x.variant_scores)) {
    for (const method of ['masked_marginal', 'wt_marginal'] as const) {
      const { status, json } = await postJson(`${url}/v1/score`, { sequence: c.sequence, mutations: c.variant_scores!.map((v) => v.mutation), method }, headers);
      assert.equal(status, 200, JSON.stringify(json));
      assert.equal(json.method, method);
      const scores = json.scores as { mutation: string; score: number }[];
      c.variant_scores!.forEach((v, i) => {
        assert.equal(scores[i].mutation, v.mutation);
        assert.ok(Math.abs(scores[i].score - v[method]) <= 1e-3, `${c.id} ${v.mutation} ${method}: ${scores[i].score} vs ${v[method]}`);
      });
    }
  }
}
