// The `esm2` command line: only registration here; each command lives in its own file.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerInitRandom } from './init-random.js';
import { registerEmbed } from './embed.js';
import { registerScore } from './score.js';
import { registerPll } from './pll.js';
import { registerPull } from './pull.js';
import { registerCompare } from './compare.js';
import { serve, wantsStack } from '../server/serve.js';

// Compiled to dist/src/cli/main.js, three levels below the package root.
const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('esm2').description('ESM-2 protein language model inference').version(pkg.version);

registerInitRandom(program);
registerEmbed(program);
registerScore(program);
registerPll(program);
registerPull(program);
registerCompare(program);

program
  .command('serve')
  .description('start the HTTP inference server (settings from the environment; see README)')
  .action(() => serve());

program.parseAsync(process.argv).catch((err: unknown) => {
  // Checkpoint, sequence, settings and start-up errors are one-line messages meant for the user;
  // the stack trace (and its cause's) only at LOG_LEVEL=debug or trace.
  console.error(`esm2: ${err instanceof Error ? err.message : String(err)}`);
  if (wantsStack() && err instanceof Error) {
    console.error(err.stack);
    if (err.cause instanceof Error) console.error(`caused by: ${err.cause.stack}`);
  }
  process.exitCode = 1;
});
