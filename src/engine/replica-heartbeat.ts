// The child's heartbeat, on a worker thread: session.run is a synchronous native call that blocks
// the child's JS event loop for the whole batch (measured: no setInterval tick during a 5 s run of
// onnxruntime-node 1.30), so the main thread cannot answer. This worker echoes every byte the parent
// writes on HEARTBEAT_FD back to it. A long batch keeps it answering; a stopped (SIGSTOP), frozen
// or swapped-out process does not, and the parent kills it after its hang timeout.
import { Socket } from 'node:net';
import { HEARTBEAT_FD } from './protocol.js';

const socket = new Socket({ fd: HEARTBEAT_FD, readable: true, writable: true });
socket.on('data', (chunk: Buffer) => socket.write(chunk));
// The parent is gone (or killed us): nothing to answer; the main thread's 'disconnect' ends the process.
socket.on('error', () => undefined);
