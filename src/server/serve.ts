// `npm start` / `esm2 serve`: listen first (probes answer "initializing"), then load the model;
// SIGTERM/SIGINT drain: readiness turns 503, accepted work finishes, the process exits 0 (1 when
// SHUTDOWN_TIMEOUT_MS passes first; 130/143 on a second signal, see signals.ts).
import { readFileSync } from 'node:fs';
import { buildApp } from './app.js';
import { loadSettings } from './settings.js';
import { shuttingDown } from './errors.js';
import { onStopSignals } from './signals.js';

/** After SHUTDOWN_TIMEOUT_MS, how long the 503 answers get to leave before the exit. */
const FORCED_EXIT_GRACE_MS = 1000;

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const settings = loadSettings(env);
  const { app, runtime } = await buildApp(settings, { version: pkg.version });
  await app.listen({ host: settings.host, port: settings.port });

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
    app.log.fatal({ err }, `cannot serve: ${err instanceof Error ? err.message : String(err)}`);
    await app.close();
    process.exit(1);
  }
}
