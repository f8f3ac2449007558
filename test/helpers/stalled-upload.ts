// Hostile uploads over raw sockets: a client declares a large Content-Length, sends most of the body
// and stalls (docs/reliability.md, promise 3). Used by test/server-body-budget.test.ts and bench/body-flood.ts.
import { connect, type Socket } from 'node:net';

export class StalledUpload {
  readonly socket: Socket;
  response = '';
  answered = false;
  closed = false;
  readonly done: Promise<void>;
  private readonly answer: Promise<void>;

  constructor(port: number, readonly head: string) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('error', () => undefined); // EPIPE / ECONNRESET once the server has closed: expected
    this.answer = new Promise((resolve) =>
      this.socket.on('data', (chunk: Buffer) => {
        this.response += chunk.toString('latin1');
        this.answered = true;
        resolve();
      }),
    );
    this.done = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closed = true;
        resolve();
      }),
    );
    this.socket.write(head);
  }

  /** Writes `body` (a shared Buffer: nothing is copied) and resolves once the kernel has taken it, or the server answered or closed. */
  send(body: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed || this.answered) return resolve();
      this.socket.write(body, () => resolve());
      void this.answer.then(() => resolve());
      void this.done.then(() => resolve());
    });
  }

  /** Resolves when the server has answered something (or closed). */
  answeredOrClosed(): Promise<void> {
    return Promise.race([this.answer, this.done]);
  }

  status(): number {
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(this.response)?.[1] ?? NaN);
  }
}

export const postHead = (path: string, headers: string) => `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${headers}\r\n`;
