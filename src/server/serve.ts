// `npm start` / `esm2 serve`: listen first (probes answer "initializing"), then load the model;
// SIGTERM/SIGINT drain: readiness turns 503, accepted work finishes, the process exits 0 (1 when
// SHUTDOWN_TIMEOUT_MS passes first; 130/143 on a second signal).
import { readFileSync } from 'node:fs';
import { buildApp } from './app.js';
import { loadSettings } from './settings.js';
import { shuttingDown } from './errors.js';

/** After SHUTDOWN_TIMEOUT_MS, how long the 503 answers get to leave before the exit. */
const FORCED_EXIT_GRACE_MS = 1000;

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const settings = loadSettings(env);
  const { app, runtime } = await buildApp(settings, { version: pkg.version });
  await app.listen({ host: settings.host, port: settings.port });

  // The first SIGTERM/SIGINT drains; the drain may take SHUTDOWN_TIMEOUT_MS. Past it, every request
  // still waiting is answered 503 (shutting_down), the replies get up to a second to go out, and the
  // process exits with code 1. A second signal exits at once: 130 (SIGINT) or 143 (SIGTERM), i.e.
  // 128 + its number, as a shell reports death by that signal. Forced exits kill the replicas first.
  let stopping = false;
  let closing: Promise<void> = Promise.resolve();
  let timedOut = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal: exiting without waiting for accepted work');
      runtime.killReplicas();
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
    stopping = true;
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
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  try {
    await runtime.start();
  } catch (err) {
    app.log.fatal({ err }, `cannot serve: ${err instanceof Error ? err.message : String(err)}`);
    await app.close();
    process.exit(1);
  }
}
