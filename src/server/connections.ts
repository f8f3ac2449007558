// Caps on open connections, so that idle sockets cannot take every file descriptor (docs/reliability.md,
// promise 3): MAX_CONNECTIONS in all (Node's server.maxConnections: a socket past it is closed as soon
// as it is accepted, before any byte is read) and MAX_CONNECTIONS_PER_ADDRESS per client address (a
// socket past it is destroyed on 'connection', before its request is read). Refused sockets get no
// HTTP answer: the request has not been read yet, so an answer could only be written blind and then
// reset by the unread data; the client sees the connection closed, which is what it is.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Metrics } from './metrics.js';

export interface ConnectionLimits {
  maxConnections: number;
  /** 0: no per-address cap. */
  maxConnectionsPerAddress: number;
}

export function installConnectionLimits(server: Server, limits: ConnectionLimits, metrics: Metrics): void {
  server.maxConnections = limits.maxConnections;
  // Emitted (since Node 18.6) for each socket Node closed because maxConnections were open.
  server.on('drop', () => metrics.connectionsRefused.inc({ reason: 'total' }));
  const perAddress = new Map<string, number>();
  let open = 0;
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const count = perAddress.get(address) ?? 0;
    if (limits.maxConnectionsPerAddress > 0 && count >= limits.maxConnectionsPerAddress) {
      metrics.connectionsRefused.inc({ reason: 'per_address' });
      socket.destroy();
      return;
    }
    perAddress.set(address, count + 1);
    open += 1;
    metrics.connectionsOpen.set(open);
    socket.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
      open -= 1;
      metrics.connectionsOpen.set(open);
    });
  });
}
