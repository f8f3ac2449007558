// The gRPC server (GRPC_PORT, on HOST): esm2.v1.Esm2, the standard grpc.health.v1.Health and
// server reflection (grpcurl list), from the .proto files in proto/, loaded at run time with
// @grpc/proto-loader (docs/dependencies.md). Started after the HTTP server listens, drained with it.
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, Server, ServerCredentials, type GrpcObject, type ServiceClientConstructor, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { status } from '@grpc/grpc-js';
import type { FastifyBaseLogger } from 'fastify';
import type { ServingRuntime } from '../runtime.js';
import type { ClientAccess } from '../clients.js';
import type { Tracing } from '../tracing.js';
import { esm2Service } from './esm2.js';

/** proto/ at the package's root (dist/src/server/grpc → ../../../../proto). */
export const PROTO_ROOT = fileURLToPath(new URL('../../../../proto/', import.meta.url));
export const ESM2_PROTO = 'esm2/v1/esm2.proto';
export const HEALTH_PROTO = 'grpc/health/v1/health.proto';
export const ESM2_SERVICE = 'esm2.v1.Esm2';

/** How messages become objects: field names as in the .proto, 64-bit numbers as numbers, unset fields absent, lists always present. */
export const PROTO_OPTIONS: Options = { keepCase: true, longs: Number, enums: String, defaults: false, arrays: true, oneofs: true, includeDirs: [PROTO_ROOT] };

/** Both protos as one package definition (reflection describes every service in it). */
export function loadProtos(): PackageDefinition {
  return loadSync([ESM2_PROTO, HEALTH_PROTO], PROTO_OPTIONS);
}

const service = (root: GrpcObject, path: string) => (path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root) as ServiceClientConstructor).service;

type HealthCall = ServerUnaryCall<{ service?: string }, unknown>;
/** How often Watch looks at the service's state (the runtime emits no events). */
const WATCH_INTERVAL_MS = 1000;

export interface GrpcServer {
  /** Binds GRPC_PORT on HOST; resolves with the port bound (GRPC_PORT=0: a free one). */
  listen(): Promise<number>;
  /** The port bound; undefined before listen. */
  readonly port: number | undefined;
  /** Stops taking calls and waits for those in flight (the drain); `forceAfterMs` ends the rest. */
  close(forceAfterMs?: number): Promise<void>;
}

/** `tracing`: the server's (server/tracing.ts) when on: each call's span, under the caller's `traceparent` metadata. */
export function createGrpcServer(runtime: ServingRuntime, access: ClientAccess, log: FastifyBaseLogger, tracing?: Tracing): GrpcServer {
  const { settings } = runtime;
  const definition = loadProtos();
  const root = loadPackageDefinition(definition);
  // Messages up to BODY_LIMIT_BYTES, as HTTP bodies; answers as large as they come (cost limits bound them).
  const server = new Server({ 'grpc.max_receive_message_length': settings.bodyLimitBytes, 'grpc.max_send_message_length': -1 });
  server.addService(service(root, ESM2_SERVICE), esm2Service(runtime, access, tracing));

  // Health: SERVING while the runtime is ready (the same as GET /ready's 200), NOT_SERVING otherwise.
  const serving = () => (runtime.state === 'ready' && !runtime.unavailableReason() ? 'SERVING' : 'NOT_SERVING');
  const known = (name = '') => name === '' || name === ESM2_SERVICE;
  const watches = new Map<ServerWritableStream<{ service?: string }, unknown>, NodeJS.Timeout>();
  server.addService(service(root, 'grpc.health.v1.Health'), {
    Check: (call: HealthCall, callback: sendUnaryData<unknown>) =>
      known(call.request.service) ? callback(null, { status: serving() }) : callback({ code: status.NOT_FOUND, details: `unknown service ${JSON.stringify(call.request.service)}` }),
    Watch: (call: ServerWritableStream<{ service?: string }, unknown>) => {
      let last = '';
      const send = () => {
        const now = known(call.request.service) ? serving() : 'SERVICE_UNKNOWN';
        if (now !== last) call.write({ status: (last = now) });
      };
      send();
      watches.set(call, setInterval(send, WATCH_INTERVAL_MS));
      call.once('cancelled', () => {
        clearInterval(watches.get(call));
        watches.delete(call);
      });
    },
  });
  new ReflectionService(definition).addToServer(server);

  let port: number | undefined;
  return {
    get port() {
      return port;
    },
    listen: () =>
      new Promise<number>((resolve, reject) => {
        const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
        server.bindAsync(`${host}:${settings.grpcPort ?? 0}`, ServerCredentials.createInsecure(), (err, bound) => {
          if (err) return reject(err);
          port = bound;
          log.info({ host: settings.host, port: bound }, 'gRPC listening');
          resolve(bound);
        });
      }),
    close: (forceAfterMs) =>
      new Promise<void>((resolve) => {
        // Watches never end by themselves: they end (OK) when the drain begins.
        for (const [call, timer] of watches) {
          clearInterval(timer);
          call.end();
        }
        watches.clear();
        const force = forceAfterMs === undefined ? undefined : setTimeout(() => server.forceShutdown(), forceAfterMs);
        force?.unref();
        server.tryShutdown(() => {
          if (force) clearTimeout(force);
          resolve();
        });
      }),
  };
}
