// A Node gRPC client of esm2-serve (@grpc/grpc-js, the protos loaded as the server loads them),
// for the benchmark's `--protocol grpc` and the tests: unary and streaming calls as promises.
import { credentials, loadPackageDefinition, Metadata, status, type Client, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadProtos } from '../src/server/grpc/server.js';
import type { Completion } from './load.js';

export type GrpcMessage = Record<string, unknown>;

export interface CallOptions {
  /** Sent as `authorization: Bearer <key>`. */
  apiKey?: string;
  /** Milliseconds from now. */
  deadlineMs?: number;
  /** Aborting cancels the call. */
  signal?: AbortSignal;
}

export interface GrpcClient {
  esm2: Client;
  health: Client;
  unary(method: string, request: GrpcMessage, options?: CallOptions): Promise<GrpcMessage>;
  /** A server-streaming call's messages, in order. */
  stream(method: string, request: GrpcMessage, options?: CallOptions): Promise<GrpcMessage[]>;
  check(service?: string): Promise<string>;
  close(): void;
}

const ctor = (root: GrpcObject, path: string) => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root) as ServiceClientConstructor;

function metadataOf(options: CallOptions): Metadata {
  const metadata = new Metadata();
  if (options.apiKey !== undefined) metadata.set('authorization', `Bearer ${options.apiKey}`);
  return metadata;
}

const deadlineOf = (options: CallOptions) => (options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs });

/** A client of `address` (host:port), one HTTP/2 connection per client. */
export function grpcClient(address: string, defaults: CallOptions = {}): GrpcClient {
  const root = loadPackageDefinition(loadProtos());
  const esm2 = new (ctor(root, 'esm2.v1.Esm2'))(address, credentials.createInsecure());
  const health = new (ctor(root, 'grpc.health.v1.Health'))(address, credentials.createInsecure());
  type Unary = (req: GrpcMessage, md: Metadata, opts: object, cb: (err: ServiceError | null, res: GrpcMessage) => void) => { cancel(): void };
  type Streaming = (req: GrpcMessage, md: Metadata, opts: object) => NodeJS.EventEmitter & { cancel(): void };
  return {
    esm2,
    health,
    unary(method, request, options = {}) {
      const o = { ...defaults, ...options };
      return new Promise((resolve, reject) => {
        const call = (esm2 as unknown as Record<string, Unary>)[method].call(esm2, request, metadataOf(o), deadlineOf(o), (err, res) => (err ? reject(err) : resolve(res)));
        o.signal?.addEventListener('abort', () => call.cancel(), { once: true });
      });
    },
    stream(method, request, options = {}) {
      const o = { ...defaults, ...options };
      return new Promise((resolve, reject) => {
        const messages: GrpcMessage[] = [];
        const call = (esm2 as unknown as Record<string, Streaming>)[method].call(esm2, request, metadataOf(o), deadlineOf(o));
        o.signal?.addEventListener('abort', () => call.cancel(), { once: true });
        call.on('data', (m: GrpcMessage) => messages.push(m));
        call.on('error', reject);
        call.on('end', () => resolve(messages));
      });
    },
    check(service = '') {
      return new Promise((resolve, reject) => {
        (health as unknown as Record<string, Unary>).Check.call(health, { service }, new Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res.status as string)));
      });
    },
    close() {
      esm2.close();
      health.close();
    },
  };
}

/** A Tensor message's numbers (its bytes are little-endian float32; copied, since a Buffer need not be aligned). */
export function tensorFloats(tensor: unknown): Float32Array {
  const { data } = tensor as { data: Buffer };
  return new Float32Array(Uint8Array.from(data).buffer);
}

/** The benchmark's gRPC requests: Embed of the next `batchSize` sequences (mean of the last layer, as /predict). */
export const GRPC_EMBED_PATH = 'esm2.v1.Esm2/Embed';

/** A `send` for closedLoop over one gRPC channel (calls multiplexed on its HTTP/2 connection); resolves, never rejects. */
export function grpcSender(client: GrpcClient, opts: { batchSize: number; sequences: readonly string[]; apiKey?: string; timeoutMs: number }): (index: number) => Promise<Completion> {
  const all = opts.sequences;
  return async (index) => {
    const sequences = Array.from({ length: opts.batchSize }, (_, k) => all[(index * opts.batchSize + k) % all.length]);
    const residues = sequences.reduce((sum, s) => sum + s.length, 0);
    const startedAt = performance.now();
    try {
      await client.unary('Embed', { sequences, include: ['mean'] }, { deadlineMs: opts.timeoutMs, ...(opts.apiKey ? { apiKey: opts.apiKey } : {}) });
      return { startedAt, endedAt: performance.now(), ok: true, status: 'OK', sequences: sequences.length, residues };
    } catch (err) {
      const e = err as Partial<ServiceError>;
      const name = e.code === undefined ? 'error' : (status[e.code] ?? String(e.code));
      return { startedAt, endedAt: performance.now(), ok: false, status: name === 'DEADLINE_EXCEEDED' ? 'timeout' : name, sequences: sequences.length, residues, detail: `${name}: ${e.details ?? e.message}` };
    }
  };
}
