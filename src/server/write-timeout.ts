// Response write timeout (RESPONSE_WRITE_TIMEOUT_MS): a client that stops reading must not hold
// the memory of its answer forever. Once a reply is being sent (Fastify's onSend: inference is
// over), its connection is checked every RESPONSE_WRITE_TIMEOUT_MS; when data was waiting to go
// out at the previous check and at this one, and none of it reached the kernel in between, the
// connection is destroyed: the socket's buffers, the body stream (Fastify destroys it when the
// response closes) and what the stream references are let go.
//
// What counts as progress: a write the socket completed (bytesWritten − writableLength grows) or
// libuv's queue of the write in flight shrinking (handle.writeQueueSize: a large write drains in
// parts, as Node's own socket timeout sees it). So a slow client that keeps reading is never cut,
// and neither is a quiet stream (server-sent events between keep-alives) with nothing unsent: only
// unread data counts, never silence. A cut comes between one and two timeouts after the client
// stopped reading.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Metrics } from './metrics.js';

export interface WriteTimeoutSettings {
  responseWriteTimeoutMs: number;
}

/** Watches every reply's writing from onSend on; a stalled one's connection is destroyed and counted in esm2_response_write_timeouts_total{route}. */
export function installWriteTimeout(app: FastifyInstance, settings: WriteTimeoutSettings, metrics: Metrics): void {
  const timeoutMs = settings.responseWriteTimeoutMs;
  app.addHook('onSend', async (request, reply) => {
    watchResponseWrites(reply.raw, timeoutMs, () => {
      const route = request.routeOptions.url ?? 'unmatched';
      metrics.responseWriteTimeouts.inc({ route });
      request.log.warn({ route, timeoutMs }, 'response write timed out: the client stopped reading; connection destroyed');
    });
  });
}

interface WriteState {
  /** Data not yet handed to the kernel, in the response or its socket. */
  pending: boolean;
  /** Bytes of completed socket writes. */
  sent: number;
  /** Unwritten bytes of libuv's write in flight. */
  queue: number;
}

function writeState(res: ServerResponse, socket: Socket): WriteState {
  const queue = (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle?.writeQueueSize ?? 0;
  const socketLength = socket.writableLength;
  return {
    pending: res.writableLength > 0 || socketLength > 0 || queue > 0,
    sent: (socket.bytesWritten ?? 0) - socketLength,
    queue,
  };
}

/**
 * Destroys `res`'s socket (after calling onTimeout) when, at two checks timeoutMs apart, data was
 * waiting to be sent and none was sent in between. Stops when the response finishes or closes.
 */
export function watchResponseWrites(res: ServerResponse, timeoutMs: number, onTimeout: () => void): void {
  const socket = res.socket;
  if (!socket || socket.destroyed || res.writableFinished) return;
  let last = writeState(res, socket);
  const timer = setTimeout(() => {
    if (socket.destroyed || res.writableFinished) return;
    const now = writeState(res, socket);
    if (last.pending && now.pending && now.sent <= last.sent && now.queue >= last.queue) {
      onTimeout();
      socket.destroy();
      return;
    }
    last = now;
    timer.refresh();
  }, timeoutMs);
  // A watch never keeps the process alive (shutdown waits on connections, not on this).
  timer.unref();
  const stop = (): void => clearTimeout(timer);
  res.once('finish', stop);
  res.once('close', stop);
}
