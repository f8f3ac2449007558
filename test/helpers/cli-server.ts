// The real command line (`node bin/esm2.js serve`) in its own process on a free loopback port, for
// tests that need the server's own event loop and memory (load, soak) or its signals and exit code.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TestContext } from 'node:test';
import { fixtureModelDir, repoRoot } from './paths.js';
import { tempDir } from './temp-dir.js';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** The status of a GET, or 'refused' when no connection or reply could be had (a refusal is immediate; the 30 s only keeps a slow answer from passing for one). */
export async function probe(url: string): Promise<number | 'refused'> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 'refused';
  }
}

export interface CliServer {
  url: string;
  child: ChildProcessWithoutNullStreams;
  /** Everything it printed so far. */
  output(): string;
  /** Resolves with [code, signal] when it exits. */
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** The pids of its child processes (the replicas), from /proc. */
  children(): Promise<number[]>;
}

/**
 * Starts `esm2 serve` on the golden checkpoint with `env` over test defaults; waits until /ready
 * says 200. SIGKILLed after the test if still running. `nodeOptions`: flags for node itself (e.g.
 * those of GC_ON_SIGNAL).
 */
export async function startCliServer(t: TestContext, env: Record<string, string> = {}, readyWithinMs = 30_000, nodeOptions: string[] = []): Promise<CliServer> {
  return launch(t, process.execPath, [...nodeOptions, join(repoRoot, 'bin', 'esm2.js'), 'serve'], env, readyWithinMs, false);
}

/**
 * `npm start` (package.json's start script) in the repository, as a terminal or systemd runs it: in
 * its own process group, whose id is `child.pid` (signal all of it with `process.kill(-pid, sig)`).
 * The whole group is SIGKILLed after the test if still running.
 */
export async function startNpmStart(t: TestContext, env: Record<string, string> = {}, readyWithinMs = 60_000): Promise<CliServer> {
  return launch(t, 'npm', ['start', '--silent'], env, readyWithinMs, true);
}

async function launch(t: TestContext, command: string, args: string[], env: Record<string, string>, readyWithinMs: number, group: boolean): Promise<CliServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: {
      ...process.env,
      MODEL_NAME: fixtureModelDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DEVICES: 'cpu',
      ESM2_COMPILE_CACHE: await tempDir(t, 'esm2-cli-'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: group,
  }) as unknown as ChildProcessWithoutNullStreams;
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => {
    if (group) {
      try {
        process.kill(-child.pid!, 'SIGKILL'); // what is left of the group, the leader's exit notwithstanding
      } catch {
        // no process left in it
      }
    } else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  for (const deadline = Date.now() + readyWithinMs; ; ) {
    if (child.exitCode !== null) assert.fail(`the server exited with ${child.exitCode} before it was ready:\n${output}`);
    if ((await probe(`${url}/ready`)) === 200) break;
    if (Date.now() > deadline) assert.fail(`not ready within ${readyWithinMs} ms:\n${output}`);
    await sleep(50);
  }
  return {
    url,
    child,
    output: () => output,
    exited,
    children: () => childPids(child.pid!),
  };
}

/**
 * Runs `esm2 serve` with `env` over the same test defaults as startCliServer, for a start-up that
 * must fail: resolves with its exit code and everything it printed once it exits (fails after `withinMs`).
 */
export async function serveUntilExit(t: TestContext, env: Record<string, string>, withinMs = 30_000): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'esm2.js'), 'serve'], {
    cwd: repoRoot,
    env: { ...process.env, MODEL_NAME: fixtureModelDir, PORT: String(await freePort()), HOST: '127.0.0.1', LOG_LEVEL: 'warn', DEVICES: 'cpu', ESM2_COMPILE_CACHE: await tempDir(t, 'esm2-cli-'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const watchdog = setTimeout(() => child.kill('SIGKILL'), withinMs);
  t.after(() => clearTimeout(watchdog));
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(watchdog);
  return { code, output };
}

/** Direct children of a process (Linux /proc). */
export async function childPids(pid: number): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const pids: number[] = [];
  let tasks: string[];
  try {
    tasks = await readdir(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const task of tasks) {
    const text = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    pids.push(...text.split(/\s+/).filter(Boolean).map(Number));
  }
  return pids;
}

/** True while a process of that pid exists (and is not a zombie). */
export async function alive(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return status !== '' && !/^State:\s+Z/m.test(status);
}

/** Resident set size of a process in bytes (Linux /proc), NaN when it is gone. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Waits for the process to exit, failing after `ms`. */
export async function exitWithin(server: CliServer, ms: number): Promise<[number | null, NodeJS.Signals | null]> {
  let watchdog: NodeJS.Timeout | undefined;
  return Promise.race([
    server.exited,
    new Promise<never>((_, reject) => {
      watchdog = setTimeout(() => reject(new Error(`still running after ${ms} ms:\n${server.output()}`)), ms);
    }),
  ]).finally(() => clearTimeout(watchdog));
}


/**
 * Node flags that let a test force a full garbage collection in the server and read its memory,
 * with no hook in the server itself: `--expose-gc` and a preloaded module (gc-on-signal.ts) that,
 * on SIGUSR2, collects and prints `gc-memory {rss, heapUsed, …}`. See memoryAfterGc.
 */
export const GC_ON_SIGNAL = ['--expose-gc', '--import', pathToFileURL(join(repoRoot, 'dist', 'test', 'helpers', 'gc-on-signal.js')).href];

/** Full GC in a server started with GC_ON_SIGNAL, then its memory as process.memoryUsage() gives it. */
export async function memoryAfterGc(server: CliServer): Promise<NodeJS.MemoryUsage & { gc: boolean }> {
  const seen = server.output().length;
  server.child.kill('SIGUSR2');
  for (const deadline = Date.now() + 30_000; ; await sleep(10)) {
    const m = /gc-memory (\{.*\})\n/.exec(server.output().slice(seen));
    if (m) return JSON.parse(m[1]) as NodeJS.MemoryUsage & { gc: boolean };
    if (Date.now() > deadline) assert.fail(`no gc-memory line after SIGUSR2:\n${server.output().slice(seen)}`);
  }
}
