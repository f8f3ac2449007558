// `npm start` / `esm2 serve`: listen first (probes answer "initializing"), then load the model;
// SIGTERM/SIGINT drain: readiness turns 503, accepted work finishes, the process exits 0 (1 when
// SHUTDOWN_TIMEOUT_MS passes first; 130/143 on a second signal, see signals.ts). A start that fails
// says why in one line (the stack only at LOG_LEVEL=debug or trace) and exits 1.
import { readFileSync } from 'node:fs';
import { buildApp } from './app.js';
import { loadSettings, type Settings } from './settings.js';
import { shuttingDown } from './errors.js';
import { onStopSignals } from './signals.js';

/** After SHUTDOWN_TIMEOUT_MS, how long the 503 answers get to leave before the exit. */
const FORCED_EXIT_GRACE_MS = 1000;

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Whether a failed start should show its stack trace too (LOG_LEVEL debug or trace, however it is spelled). */
export function wantsStack(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^\s*(debug|trace)\s*$/i.test(env.LOG_LEVEL ?? '');
}

/** Why HOST:PORT could not be listened on, and which setting to change; `cause` is Node's error. */
export function listenError(settings: Pick<Settings, 'host' | 'port'>, cause: unknown): Error {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const where = `cannot listen on ${settings.host}:${settings.port}`;
  const why =
    code === 'EADDRINUSE'
      ? 'the address is in use; set PORT (or HOST) to pick another'
      : code === 'EACCES'
        ? 'permission denied (ports below 1024 need privileges); set PORT to pick another'
        : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND'
          ? 'no such address on this machine; set HOST to one of its addresses (0.0.0.0: all of them)'
          : cause instanceof Error
            ? cause.message
            : String(cause);
  return new Error(`${where}: ${why}`, { cause });
}

export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const settings = loadSettings(env);
  const { app, runtime, access, grpc } = await buildApp(settings, { version: pkg.version });
  // SIGHUP rereads API_KEYS_FILE; a bad file keeps the keys in force (one line says why).
  process.on('SIGHUP', () => {
    if (settings.apiKeysFile === undefined) return app.log.info('SIGHUP: no API_KEYS_FILE to reread');
    try {
      app.log.info({ keys: access.reload().keys }, `SIGHUP: API keys reread from ${settings.apiKeysFile}`);
    } catch (err) {
      app.log.error(`SIGHUP: keeping the API keys in force: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  try {
    await app.listen({ host: settings.host, port: settings.port });
  } catch (err) {
    await app.close();
    throw listenError(settings, err); // printed as one line by the command line (cli/main.ts)
  }
  try {
    await grpc?.listen(); // drained by app.close() (app.ts)
  } catch (err) {
    await app.close();
    throw new Error(`cannot listen for gRPC on ${settings.host}:${settings.grpcPort}: ${err instanceof Error ? err.message : String(err)}; set GRPC_PORT to pick another`, { cause: err });
  }

  // The first SIGTERM/SIGINT drains; the drain may take SHUTDOWN_TIMEOUT_MS. Past it, every request
  // still waiting is answered 503 (shutting_down), the replies get up to a second to go out, and the
  // process exits with code 1. A second signal exits at once: 130 (SIGINT) or 143 (SIGTERM). Forced
  // exits kill the replicas first. A repeat of the first signal within SAME_SIGNAL_WINDOW_MS (npm's
  // forwarded copy of a signal to the process group) is the same signal.
  let closing: Promise<void> = Promise.resolve();
  let timedOut = false;
  const drain = async (signal: NodeJS.Signals) => {
    app.log.info({ signal, timeoutMs: settings.shutdownTimeoutMs }, 'draining before exit');
    setTimeout(() => {
      timedOut = true;
      const stats = runtime.model?.scheduler.stats();
      const ended = runtime.abortAll(shuttingDown(settings.shutdownTimeoutMs));
      app.log.error(
        { queued: stats?.queuedSequences, running: stats?.runningBatches, answered503: ended },
        `drain not finished after SHUTDOWN_TIMEOUT_MS=${settings.shutdownTimeoutMs}: exiting anyway`,
      );
      void Promise.race([closing, new Promise((resolve) => setTimeout(resolve, FORCED_EXIT_GRACE_MS))]).finally(() => {
        runtime.killReplicas();
        process.exit(1);
      });
    }, settings.shutdownTimeoutMs).unref();
    closing = app.close(); // stops accepting connections; in-flight requests complete
    await runtime.drain();
    await closing;
    app.log.info('stopped');
    process.exit(timedOut ? 1 : 0);
  };
  onStopSignals({
    drain: (signal) => void drain(signal),
    repeated: (signal, afterMs) => app.log.info({ signal, afterMs: Math.round(afterMs) }, 'the same signal again (forwarded by a parent such as npm): still draining'),
    exitNow: (signal, code) => {
      app.log.warn({ signal }, 'second signal: exiting without waiting for accepted work');
      runtime.killReplicas();
      process.exit(code);
    },
  });

  try {
    await runtime.start();
  } catch (err) {
    // One line at the default level; the stack only when asked for.
    app.log.fatal(wantsStack(env) ? { err } : {}, `cannot serve: ${err instanceof Error ? err.message : String(err)}`);
    await app.close();
    process.exit(1);
  }
}
