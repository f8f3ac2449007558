// The esm2.v1.Esm2 service (proto/esm2/v1/esm2.proto): each call's message becomes the HTTP body
// (unset fields: the HTTP defaults), checked against the same schema (schemas.ts), and runs the
// same work as the route (calls.ts) under a CallScope of the call: cancelled when the client
// cancels, its deadline the tighter of the client's and REQUEST_TIMEOUT_MS.
import { Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { TSchema, Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { InputError } from '../../tasks/errors.js';
import type { EmbedTensor } from '../../tasks/embed.js';
import { embedCall, fillMaskCall, pllCall, scoreCall, type EmbeddedSequence } from '../calls.js';
import { embedBody, FillMaskBody, pllBody, ScoreBody } from '../schemas.js';
import type { ServingRuntime } from '../runtime.js';
import type { CallScope } from '../routes/common.js';
import type { Client, ClientAccess } from '../clients.js';
import { toGrpcError } from './status.js';
import type { Tracing } from '../tracing.js';

type Message = Record<string, unknown>;
type Call = ServerUnaryCall<Message, Message> | ServerWritableStream<Message, Message>;

/**
 * A call's scope (routes/common.ts) and `end`, to run once the call is answered (`error`: refused
 * or failed) or abandoned. With tracing on, the call's server span is the child of the caller's
 * `traceparent` metadata and its own `traceparent` goes back in the response's initial metadata.
 */
export function grpcScope(call: Call, method: string, tracing?: Tracing): CallScope & { end(error?: unknown): void } {
  const controller = new AbortController();
  const ends: (() => void)[] = [];
  call.once('cancelled', () => controller.abort());
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  const span = tracing?.startRequestSpan(`esm2.v1.Esm2/${method}`, metadataCarrier(call.metadata), { 'rpc.system': 'grpc', 'rpc.service': 'esm2.v1.Esm2', 'rpc.method': method });
  if (span) {
    const out = new Metadata();
    out.set('traceparent', span.traceparent);
    call.sendMetadata(out);
  }
  let ended = false;
  return {
    signal: controller.signal,
    onEnd: (fn) => void ends.push(fn),
    tier: 1, // until authorize() names the caller's
    ...(span ? { span } : {}),
    ...(Number.isFinite(at) ? { deadlineMs: at - Date.now() } : {}),
    end: (error?: unknown) => {
      if (ended) return;
      ended = true;
      for (const fn of ends) fn();
      span?.end(performance.now(), undefined, error ?? (controller.signal.aborted ? new Error('the client cancelled the call') : undefined));
    },
  };
}

/** gRPC metadata as the propagator reads headers: text values by lower-case key. */
function metadataCarrier(metadata: Metadata): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata.getMap()).flatMap(([k, v]) => (typeof v === 'string' ? [[k.toLowerCase(), v]] : [])));
}

/** A schema's body check, compiled once: a message as the HTTP body, proto3's "unset" (empty strings and lists, false) left out so the schema's defaults apply. */
function bodyOf<S extends TSchema>(schema: S): (fields: Record<string, unknown>) => Static<S> {
  const compiled = TypeCompiler.Compile(schema);
  return (fields) => {
    const body = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== '' && v !== false && !(Array.isArray(v) && v.length === 0)));
    const filled = Value.Default(schema, body);
    if (compiled.Check(filled)) return filled;
    const error = compiled.Errors(filled).First();
    throw new InputError(error?.path.replace(/^\//, '').replaceAll('/', '.') || 'body', (error?.message ?? 'invalid').replace(/^Expected/, 'expected'));
  };
}

const tensor = (data: Float32Array, shape: readonly number[]) => ({ data: Buffer.from(data.buffer, data.byteOffset, data.byteLength), shape: [...shape] });
const matrixTensor = (rows: number[][]) => tensor(Float32Array.from(rows.flat()), [rows.length, rows[0]?.length ?? 0]);

/** One sequence's EmbedResult: tensors "mean/<layer>", "per_residue/<layer>", "bos/<layer>", "logits", "contacts". */
function embedResult({ index, encoded, tensors }: EmbeddedSequence): Message {
  const representations: Record<string, Record<string, unknown>> = {};
  const out: Message = { index, length: encoded.length, representations };
  if (encoded.truncated) Object.assign(out, { truncated: true, original_length: encoded.originalLength });
  for (const t of tensors as EmbedTensor[]) {
    const [kind, layer] = t.name.split('/');
    if (layer === undefined) out[kind] = tensor(t.data, t.shape);
    else (representations[layer] ??= {})[kind] = tensor(t.data, t.shape);
  }
  return out;
}

const embedFields = (r: Message) => ({ sequences: r.sequences, include: r.include, repr_layers: r.repr_layers, truncation: r.truncation, model: r.model });

/** The service's handlers; `access` checks the API key and rate limit of every call. */
export function esm2Service(runtime: ServingRuntime, access: ClientAccess, tracing?: Tracing): UntypedServiceImplementation {
  const { settings } = runtime;
  const embed = bodyOf(embedBody(settings.maxBatchSize));
  const pll = bodyOf(pllBody(settings.maxBatchSize));
  const score = bodyOf(ScoreBody);
  const fill = bodyOf(FillMaskBody);

  const unary =
    (method: string, work: (request: Message, scope: CallScope) => Promise<Message>) =>
    (call: ServerUnaryCall<Message, Message>, callback: sendUnaryData<Message>) => {
      const scope = grpcScope(call, method, tracing);
      Promise.resolve()
        .then(() => {
          scope.tier = authorize(access, call).tier;
          return work(call.request, scope);
        })
        .then(
          (answer) => {
            callback(null, answer);
            scope.end();
          },
          (err: unknown) => {
            callback(toGrpcError(err));
            scope.end(err);
          },
        );
    };

  return {
    Embed: unary('Embed', async (r, scope) => {
      const answer = await embedCall(runtime, scope, embed(embedFields(r)), 'safetensors');
      return { model: answer.model, results: answer.results.map(embedResult) };
    }),
    EmbedStream: (call: ServerWritableStream<Message, Message>) => {
      const scope = grpcScope(call, 'EmbedStream', tracing);
      Promise.resolve()
        .then(() => {
          scope.tier = authorize(access, call).tier;
          return embedCall(runtime, scope, embed(embedFields(call.request)), 'safetensors', (result) => void call.write(embedResult(result)));
        })
        .then(
          () => {
            call.end();
            scope.end();
          },
          (err: unknown) => {
            call.emit('error', toGrpcError(err));
            scope.end(err);
          },
        );
    },
    Score: unary('Score', async (r, scope) => {
      const answer = await scoreCall(runtime, scope, score({ sequence: r.sequence, mutations: r.mutations, scan: r.scan, method: r.method, truncation: r.truncation, model: r.model }));
      const { matrix, member_matrices, ...rest } = answer as typeof answer & { matrix?: number[][]; member_matrices?: number[][][] };
      return { ...rest, ...(matrix ? { matrix: matrixTensor(matrix) } : {}), ...(member_matrices ? { member_matrices: member_matrices.map(matrixTensor) } : {}) };
    }),
    Pll: unary('Pll', async (r, scope) => pllCall(runtime, scope, pll({ sequences: r.sequences, truncation: r.truncation, per_position: r.per_position, model: r.model }))),
    FillMask: unary('FillMask', async (r, scope) => fillMaskCall(runtime, scope, fill({ sequence: r.sequence, top_k: r.top_k, truncation: r.truncation, model: r.model }))),
  };
}

/** The API key in `authorization: Bearer …` metadata, the failed-auth throttle and the rate limit, as HTTP checks them (clients.ts): the caller and its tier. */
export function authorize(access: ClientAccess, call: Call): Client {
  const value = call.metadata.get('authorization')[0];
  return access.check(typeof value === 'string' ? value : value?.toString(), peerAddress(call.getPeer()));
}

/** "ipv4:127.0.0.1:5000", "[::1]:5000" or "127.0.0.1:5000" → the address without its port. */
export function peerAddress(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[(.*)\](?::\d+)?$/.exec(bare);
  if (bracketed) return bracketed[1];
  return bare.split(':').length === 2 ? bare.slice(0, bare.lastIndexOf(':')) : bare;
}
