// Every error a client can see, mapped to one HTTP status in one table. Bodies are
// `{ detail, error }` (`detail` as the FastAPI service returned it); never a stack trace.
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance } from 'fastify';
import { ExecutorFault } from '../contract/index.js';
import { CancelledError, OverloadedError, SchedulerTimeoutError, UnavailableError } from '../scheduler/errors.js';
import { CostLimitError, InputError, ResultMemoryBusyError } from '../tasks/errors.js';

export const UNSUPPORTED_MEDIA_TYPE = 'unsupported Content-Type: send the body as JSON, with Content-Type: application/json (or with no Content-Type)';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notReady = (message: string) => new ApiError(503, 'not_ready', message);
/**
 * Retry-After of a 503 `no_replica`: no replica of this process will serve again, and liveness now
 * fails, so the orchestrator restarts it — Kubernetes after 4 failed probes 15 s apart (k8s/base).
 */
export const NO_REPLICA_RETRY_AFTER_S = 60;
/** Every replica has failed for good (`message` says why): refused at once rather than left to time out. */
export const noReplica = (message: string) => new ApiError(503, 'no_replica', message, { 'retry-after': String(NO_REPLICA_RETRY_AFTER_S) });
export const shuttingDown = (timeoutMs: number) =>
  new ApiError(503, 'shutting_down', `the server is shutting down and could not finish this request within SHUTDOWN_TIMEOUT_MS (${timeoutMs} ms)`);
/**
 * Retry-After of a 503 `server_busy`: the budget of body bytes is held by bodies still arriving, which
 * are parsed within milliseconds on a normal connection, or cut off after CLIENT_TIMEOUT_MS.
 */
export const SERVER_BUSY_RETRY_AFTER_S = 1;
/**
 * A request body that does not fit what is left of MAX_BODY_BYTES_IN_FLIGHT (server/body.ts): refused
 * unread (a declared length) or as soon as it would pass the budget (chunked), and its connection closed.
 * 503, not 413 (the body is within BODY_LIMIT_BYTES) nor 429 (this client may have sent nothing else):
 * the server as a whole is briefly out of room, which is what 503 with Retry-After says.
 */
export const serverBusy = (bytes: number, available: number, capacity: number, chunked: boolean) =>
  new ApiError(
    503,
    'server_busy',
    `the server is busy receiving other request bodies: ${chunked ? `this chunked body has reached ${bytes} bytes` : `this body's Content-Length is ${bytes} bytes`}, ` +
      `and only ${Math.max(0, available)} of MAX_BODY_BYTES_IN_FLIGHT (${capacity} bytes) are free; retry in ${SERVER_BUSY_RETRY_AFTER_S} s`,
    { 'retry-after': String(SERVER_BUSY_RETRY_AFTER_S), connection: 'close' },
  );
export const unauthorized = () => new ApiError(401, 'unauthorized', 'missing or invalid API key (send Authorization: Bearer <key>)');

/** What the layers below say, as statuses: recognised by class (the contract's fault for the engine's). */
const BY_CLASS: { type: abstract new (...args: never[]) => Error; status: number; code: string; retryAfterSeconds?: number }[] = [
  { type: OverloadedError, status: 429, code: 'overloaded' },
  { type: ResultMemoryBusyError, status: 429, code: 'overloaded' },
  { type: CostLimitError, status: 413, code: 'too_costly' },
  { type: UnavailableError, status: 503, code: 'no_replica', retryAfterSeconds: NO_REPLICA_RETRY_AFTER_S },
  { type: SchedulerTimeoutError, status: 504, code: 'timeout' },
  { type: CancelledError, status: 499, code: 'cancelled' },
  { type: ExecutorFault, status: 500, code: 'inference_failed' },
];

/** Fastify's own request errors. */
const FASTIFY_CODES: Record<string, { status: number; code: string }> = {
  FST_ERR_VALIDATION: { status: 422, code: 'validation_error' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_json' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'body_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type' },
};

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof InputError) return new ApiError(422, 'validation_error', err.message);
  const e = err as FastifyError & { retryAfterSeconds?: number };
  const known = BY_CLASS.find(({ type }) => err instanceof type);
  if (known) {
    const retryAfter = e.retryAfterSeconds ?? known.retryAfterSeconds;
    const headers: Record<string, string> = retryAfter ? { 'retry-after': String(Math.ceil(retryAfter)) } : {};
    return new ApiError(known.status, known.code, e.message, headers);
  }
  const fastify = e?.code ? FASTIFY_CODES[e.code] : undefined;
  if (fastify) {
    // Fastify says "body/sequences must NOT have more than 64 items"; name the field plainly.
    const message =
      e.code === 'FST_ERR_VALIDATION' ? e.message.replace(/^body\/?/, '').replace(/^ /, 'body ') : e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? UNSUPPORTED_MEDIA_TYPE : e.message;
    return new ApiError(fastify.status, fastify.code, message);
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return new ApiError(e.statusCode, 'bad_request', e.message);
  return new ApiError(500, 'internal_error', 'internal server error');
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const api = toApiError(err);
    if (api.statusCode >= 500) request.log.error({ err }, 'request failed');
    void reply.code(api.statusCode).headers(api.headers).send({ detail: api.message, error: api.code });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ detail: `no route ${request.method} ${request.url}`, error: 'not_found' });
  });
}

/**
 * Errors Node's HTTP parser raises before a request exists (Fastify's clientErrorHandler): a request
 * not received within CLIENT_TIMEOUT_MS (408), headers too large (431), anything malformed (400) —
 * answered with the same `{detail, error}` body as every other error, then the connection closed.
 */
export function clientErrorHandler(clientTimeoutMs: number): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, reason, code, detail] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'request_timeout', `the request (headers and body) was not received within CLIENT_TIMEOUT_MS (${clientTimeoutMs} ms)`]
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', 'headers_too_large', 'the request headers are larger than the server accepts']
          : [400, 'Bad Request', 'bad_request', 'malformed HTTP request'];
    const body = JSON.stringify({ detail, error: code });
    if (socket.writable) {
      socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
    }
    socket.destroy();
  };
}
