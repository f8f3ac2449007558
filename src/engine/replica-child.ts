// One forked replica process: the init handshake, its output, and its end. The Replica above
// supervises a sequence of these (one per restart).
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ReplicaError } from './errors.js';
import {
  HEARTBEAT_FD,
  REPLICA_FORK_OPTIONS,
  type ChildMessage,
  type InitMessage,
  type ReadyMessage,
  type ReplyMessage,
  type RunMessage,
} from './protocol.js';

const CHILD_SCRIPT = fileURLToPath(new URL('./replica-process.js', import.meta.url));
const OUTPUT_TAIL_CHARS = 2000;
const CLOSE_GRACE_MS = 5000;

interface ReplicaChildEvents {
  /** The answer to a run. */
  reply: [ReplyMessage];
  /** The process ended or its channel broke (once, after the handshake): how, in words. */
  gone: [string];
  /** A line the process wrote to stdout or stderr. */
  log: [string];
}

export class ReplicaChild extends EventEmitter<ReplicaChildEvents> {
  private readonly process: ChildProcess;
  private outputTail = '';
  private ended = false;
  private heartbeat?: NodeJS.Timeout;

  constructor() {
    super();
    this.process = fork(CHILD_SCRIPT, [], { ...REPLICA_FORK_OPTIONS, stdio: ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'] });
    this.process.stdout?.on('data', (chunk: Buffer) => this.onOutput(chunk));
    this.process.stderr?.on('data', (chunk: Buffer) => this.onOutput(chunk));
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /**
   * Sends the init message; resolves when the session is ready, rejects (and kills) otherwise.
   * When the child reports its device unavailable, `onUnavailable` gives the second init (cpu) or
   * throws to refuse the fallback; the time it takes (e.g. compiling the cpu's graphs) is not
   * counted against `timeoutMs`.
   */
  handshake(init: InitMessage, timeoutMs: number, name: string, onUnavailable: (reason: string) => Promise<InitMessage>): Promise<ReadyMessage> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const fail = (why: string | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.kill();
        reject(why instanceof Error ? why : new ReplicaError('init-failed', `replica ${name} could not start: ${why}${this.lastOutput()}`));
      };
      const sendInit = (message: InitMessage) => {
        timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
        this.process.send(message);
      };
      // 'close' rather than 'exit': by then all output is read, so a crash's last words are kept.
      const end = (how: string) => (settled ? this.end(how) : fail(how));
      this.process.on('close', (code, signal) => end(signal ? `was killed by ${signal}` : `exited with code ${code}`));
      this.process.on('error', (err) => end(err.message));
      this.process.on('message', (message: ChildMessage) => {
        if (message.type === 'init-error') return fail(message.message);
        if (message.type === 'device-unavailable') {
          clearTimeout(timer);
          onUnavailable(message.reason).then(
            (next) => void (!settled && sendInit(next)),
            (err: unknown) => fail(err instanceof Error ? err : String(err)),
          );
          return;
        }
        if (message.type !== 'ready') return this.emit('reply', message);
        settled = true;
        clearTimeout(timer);
        resolve(message);
      });
      sendInit(init);
    });
  }

  send(message: RunMessage): void {
    this.process.send(message);
  }

  /**
   * Pings the child's heartbeat worker (replica-heartbeat.ts) a few times per `timeoutMs`; calls
   * `onHung` once, and stops, when no answer came for longer than that. A stall of this (parent)
   * process is not counted against the child: after a late tick the child gets a fresh window.
   */
  watchHeartbeat(timeoutMs: number, onHung: (silentMs: number) => void): void {
    const pipe = this.process.stdio[HEARTBEAT_FD] as Duplex | null | undefined;
    if (!pipe || this.ended) return;
    const intervalMs = Math.max(10, Math.min(1000, Math.floor(timeoutMs / 5)));
    let lastAnswer = performance.now();
    let lastTick = lastAnswer;
    pipe.on('data', () => (lastAnswer = performance.now()));
    pipe.on('error', () => undefined); // EPIPE once the child is gone; 'close' reports its end
    this.heartbeat = setInterval(() => {
      const now = performance.now();
      if (now - lastTick > 2 * intervalMs) lastAnswer = now; // we were stalled, not (necessarily) the child
      lastTick = now;
      const silentMs = Math.round(now - lastAnswer);
      if (silentMs > timeoutMs) {
        this.stopHeartbeat();
        onHung(silentMs);
        return;
      }
      pipe.write('.');
    }, intervalMs);
    this.heartbeat.unref();
  }

  kill(): void {
    this.stopHeartbeat();
    this.process.kill('SIGKILL');
  }

  /** Asks the process to release its sessions and exit; kills it if it has not within the grace period. */
  stop(): Promise<void> {
    this.stopHeartbeat();
    return new Promise((resolve) => {
      if (this.process.exitCode !== null || this.process.signalCode !== null) return resolve();
      const kill = setTimeout(() => this.kill(), CLOSE_GRACE_MS);
      this.process.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      if (this.process.connected) this.process.send({ type: 'close' });
      else this.kill();
    });
  }

  /** The end of what the process printed, for error messages (a native crash prints its stack). */
  lastOutput(): string {
    const tail = this.outputTail.trim();
    return tail ? `; last output: ${tail}` : '';
  }

  private end(how: string): void {
    if (this.ended) return;
    this.ended = true;
    this.kill(); // after a channel error the process may still be alive (stops the heartbeat too)
    this.emit('gone', how);
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private onOutput(chunk: Buffer): void {
    const text = chunk.toString();
    this.outputTail = (this.outputTail + text).slice(-OUTPUT_TAIL_CHARS);
    for (const line of text.split('\n')) if (line.trim()) this.emit('log', line);
  }
}
