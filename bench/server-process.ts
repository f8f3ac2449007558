// esm2-serve as a child process (`node bin/esm2.js serve`) on a free loopback port, for benchmarks
// that measure the service end to end: the load generator and the server do not share a process or
// an event loop. Start-up waits for /ready (bounded); stop sends SIGTERM (the service drains) and
// SIGKILLs after a grace period. Children still running when this process exits are killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** bin/esm2.js of this checkout (dist/bench/server-process.js is two levels below the root). */
export const ESM2_BIN = fileURLToPath(new URL('../../bin/esm2.js', import.meta.url));

export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** The last lines the server wrote (stdout and stderr), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of live) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts `esm2 serve` with `env` (setting variables) over a quiet, loopback-only base, and resolves
 * once /ready answers 200. Rejects, with the server's last output, when it exits or is not ready
 * within `startTimeoutMs`.
 */
export async function startServerProcess(env: Record<string, string>, opts: StartOptions = {}): Promise<ServerProcess> {
  // The free port can be taken between the probe and the server's listen: try another then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(env, opts);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !err.message.includes('EADDRINUSE')) throw err;
    }
  }
}

export interface StartOptions {
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
}

async function startOnce(env: Record<string, string>, opts: StartOptions): Promise<ServerProcess> {
  installExitHook();
  const port = await freePort();
  const child = spawn(process.execPath, [ESM2_BIN, 'serve'], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      live.delete(child);
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const output = () => lines.join('\n');
  const stopTimeoutMs = opts.stopTimeoutMs ?? 60_000;
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
    await exit;
    clearTimeout(timer);
  };

  const deadline = performance.now() + (opts.startTimeoutMs ?? 600_000);
  while (performance.now() < deadline) {
    if (exited) throw new Error(`esm2 serve exited (code ${exited.code}, signal ${exited.signal}) before it was ready:\n${output()}`);
    try {
      const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (res.status === 200) return { url, port, child, output, stop };
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  await stop();
  throw new Error(`esm2 serve was not ready within ${(opts.startTimeoutMs ?? 600_000) / 1000} s:\n${output()}`);
}
