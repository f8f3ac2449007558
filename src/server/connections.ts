// Caps on open connections, so that idle sockets cannot take every file descriptor (docs/reliability.md,
// promise 3): MAX_CONNECTIONS in all — at the cap a new connection closes the one idle longest (no
// request in progress), and is itself refused only when every open connection is busy — and
// MAX_CONNECTIONS_PER_ADDRESS per client address (a socket past it is destroyed on 'connection',
// before its request is read). Refused sockets get no
// HTTP answer: the request has not been read yet, so an answer could only be written blind and then
// reset by the unread data; the client sees the connection closed, which is what it is.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Metrics } from './metrics.js';

export interface ConnectionLimits {
  maxConnections: number;
  /** 0: no per-address cap. */
  maxConnectionsPerAddress: number;
}

export function installConnectionLimits(server: Server, limits: ConnectionLimits, metrics: Metrics): void {
  const perAddress = new Map<string, number>();
  /** Sockets with no request in progress (never sent one, or between keep-alive requests), the longest idle first. */
  const idle = new Set<Socket>();
  const activeRequests = new Map<Socket, number>();
  let open = 0;
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    idle.delete(socket);
    activeRequests.set(socket, (activeRequests.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (activeRequests.get(socket) ?? 1) - 1;
      if (left > 0) return void activeRequests.set(socket, left);
      activeRequests.delete(socket);
      if (!socket.destroyed) idle.add(socket); // to the end: now the most recently idle
    });
  });
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const count = perAddress.get(address) ?? 0;
    if (limits.maxConnectionsPerAddress > 0 && count >= limits.maxConnectionsPerAddress) {
      metrics.connectionsRefused.inc({ reason: 'per_address' });
      socket.destroy();
      return;
    }
    if (open >= limits.maxConnections) {
      // At the cap, the connection idle longest makes room (a new client is served while thousands
      // of idle sockets are held); with every connection busy, the new one is refused.
      const oldest = idle.values().next().value;
      if (oldest === undefined) {
        metrics.connectionsRefused.inc({ reason: 'total' });
        socket.destroy();
        return;
      }
      idle.delete(oldest);
      metrics.connectionsEvicted.inc();
      oldest.destroy();
    }
    perAddress.set(address, count + 1);
    open += 1;
    idle.add(socket);
    metrics.connectionsOpen.set(open);
    socket.once('close', () => {
      idle.delete(socket);
      activeRequests.delete(socket);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
      open -= 1;
      metrics.connectionsOpen.set(open);
    });
  });
}
