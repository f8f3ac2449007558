// Caps on open connections, so that idle sockets cannot take every file descriptor (docs/reliability.md,
// promise 3): MAX_CONNECTIONS in all and MAX_CONNECTIONS_PER_ADDRESS per client address. At a cap a
// new connection closes the one idle longest (no request in progress; of its own address for the
// per-address cap), and is itself refused — destroyed on 'connection', before its request is read —
// only when every connection it could replace is busy. Refused sockets get no
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
  /** Open sockets per client address. */
  const byAddress = new Map<string, Set<Socket>>();
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
  /** Closes the socket idle longest of `among` (every open one when absent); false when none is idle. */
  const evictIdle = (among?: Set<Socket>): boolean => {
    for (const socket of idle) {
      if (among && !among.has(socket)) continue;
      idle.delete(socket);
      metrics.connectionsEvicted.inc();
      socket.destroy();
      return true;
    }
    return false;
  };
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const mine = byAddress.get(address) ?? new Set<Socket>();
    // At a cap, the connection idle longest (of that address, for its cap) makes room, so that held
    // idle sockets cannot lock new clients out; with every one busy, the newcomer is refused.
    if (limits.maxConnectionsPerAddress > 0 && mine.size >= limits.maxConnectionsPerAddress && !evictIdle(mine)) {
      metrics.connectionsRefused.inc({ reason: 'per_address' });
      socket.destroy();
      return;
    }
    if (open >= limits.maxConnections && !evictIdle()) {
      metrics.connectionsRefused.inc({ reason: 'total' });
      socket.destroy();
      return;
    }
    mine.add(socket);
    byAddress.set(address, mine);
    open += 1;
    idle.add(socket);
    metrics.connectionsOpen.set(open);
    socket.once('close', () => {
      idle.delete(socket);
      activeRequests.delete(socket);
      mine.delete(socket);
      if (mine.size === 0) byAddress.delete(address);
      open -= 1;
      metrics.connectionsOpen.set(open);
    });
  });
}
