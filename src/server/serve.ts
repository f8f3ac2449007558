// `npm start` / `esm2 serve`: listen first (probes answer "initializing"), then load the model;
// SIGTERM/SIGINT drain: readiness turns 503, accepted work finishes, the process exits 0.
import { readFileSync } from 'node:fs';
import { buildApp } from './app.js';
import { loadSettings } from './settings.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const settings = loadSettings(env);
  const { app, runtime } = await buildApp(settings, { version: pkg.version });
  await app.listen({ host: settings.host, port: settings.port });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'draining before exit');
    const closing = app.close(); // stops accepting connections; in-flight requests complete
    await runtime.drain();
    await closing;
    app.log.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));

  try {
    await runtime.start();
  } catch (err) {
    app.log.fatal({ err }, `cannot serve: ${err instanceof Error ? err.message : String(err)}`);
    await app.close();
    process.exit(1);
  }
}
