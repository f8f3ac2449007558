// Request bodies, read as Buffers (off the V8 heap) against BODY_LIMIT_BYTES and against a budget
// of body bytes the whole server holds at once, MAX_BODY_BYTES_IN_FLIGHT (docs/reliability.md,
// promise 3). Without it, clients that each send most of a body just under the limit and stall
// make the server hold all of them until CLIENT_TIMEOUT_MS (450 × 9.9 MB: 4.4 GB). A body whose
// declared Content-Length does not fit what is left of the budget is refused before a byte of it
// is read (503 server_busy, Retry-After, connection closed); a chunked body is counted as it
// arrives and refused when the next chunk would pass the budget. Every byte counted is given back
// when the body is parsed, refused, or its client leaves or times out (408): the Buffers are then
// dropped, nothing else holds them.
import { errorCodes, type FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { serverBusy } from './errors.js';
import type { Metrics } from './metrics.js';

const { FST_ERR_CTP_BODY_TOO_LARGE, FST_ERR_CTP_INVALID_CONTENT_LENGTH } = errorCodes;

/** The server-wide count of request body bytes held (a declared Content-Length counts in full from its first read). */
export class BodyBudget {
  private held = 0;
  /** The most ever held at once (tests check it never passes `capacity`). */
  peak = 0;

  constructor(
    readonly capacity: number,
    private readonly metrics?: Pick<Metrics, 'bodyBytesInFlight' | 'bodiesRefused'>,
  ) {}

  get inFlight(): number {
    return this.held;
  }

  /** Takes `bytes` if they fit what is left; false (and nothing taken) otherwise. */
  tryTake(bytes: number): boolean {
    if (bytes > this.capacity - this.held) return false;
    this.held += bytes;
    this.peak = Math.max(this.peak, this.held);
    this.metrics?.bodyBytesInFlight.set(this.held);
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
    this.metrics?.bodyBytesInFlight.set(this.held);
  }

  /** The 503 for a body of `bytes` (declared, or received so far for a chunked one) that does not fit. */
  refusal(bytes: number, reason: 'declared' | 'chunked'): Error {
    this.metrics?.bodiesRefused.inc({ reason });
    return serverBusy(bytes, this.capacity - this.held, this.capacity, reason === 'chunked');
  }
}

type Done = (err: Error | null, body?: unknown) => void;
/** What to make of the whole body once read (synchronous; throws for a bad one). */
export type BodyDecoder = (request: FastifyRequest, body: Buffer) => unknown;

/**
 * A Fastify content-type parser (the stream form: Fastify hands it the request stream unread) that
 * reads the body into Buffers within BODY_LIMIT_BYTES (the route's bodyLimit; 413 as Fastify's own
 * reader answers) and within `budget`, then hands the assembled Buffer to `decode`.
 */
export function budgetedParser(budget: BodyBudget, decode: BodyDecoder) {
  return function parseWithinBudget(request: FastifyRequest, payload: Readable & { receivedEncodedLength?: number }, done: Done): void {
    const limit = request.routeOptions.bodyLimit;
    const header = request.headers['content-length'];
    const declared = header === undefined ? NaN : Number(header);
    if (declared > limit) return done(new FST_ERR_CTP_BODY_TOO_LARGE());
    let held = 0;
    if (declared > 0) {
      if (!budget.tryTake(declared)) return done(budget.refusal(declared, 'declared'));
      held = declared;
    }
    let chunks: Buffer[] = [];
    let received = 0;
    let settled = false;

    const finish = (err: Error | null, body?: unknown) => {
      if (settled) return;
      settled = true;
      payload.off('data', onData);
      payload.off('end', onEnd);
      payload.off('error', onError);
      payload.off('close', onClose);
      chunks = [];
      budget.give(held);
      held = 0;
      done(err, body);
    };

    function onData(data: Buffer | string) {
      // A custom preParsing stream may emit strings.
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      const next = received + chunk.length;
      if (next > limit || (payload.receivedEncodedLength ?? 0) > limit) return finish(new FST_ERR_CTP_BODY_TOO_LARGE());
      if (next > held) {
        // Chunked (or more than declared, which only a preParsing stream could produce): count it as it comes.
        if (!budget.tryTake(next - held)) return finish(budget.refusal(next, 'chunked'));
        held = next;
      }
      chunks.push(chunk);
      received = next;
    }
    function onEnd() {
      if (!Number.isNaN(declared) && (payload.receivedEncodedLength || received) !== declared) return finish(new FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      // Copied, so that the body is never a view into a shared socket read buffer.
      const body = Buffer.concat(chunks, received);
      chunks = [];
      let value: unknown;
      try {
        value = decode(request, body);
      } catch (err) {
        return finish(err as Error);
      }
      finish(null, value);
    }
    function onError(err: Error & { statusCode?: number }) {
      if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
      finish(err);
    }
    // The client went away (or Node answered 408 and destroyed the socket) before the end.
    function onClose() {
      finish(Object.assign(new Error('the client closed the connection before sending the whole body'), { statusCode: 400 }));
    }

    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
    payload.on('close', onClose);
    payload.resume();
  };
}
