// `esm2 init-random`: write a random-weight checkpoint with a published ESM-2 shape.
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { ESM2_PRESETS } from '../model/presets.js';
import { writeRandomCheckpoint } from '../model/random-checkpoint.js';

interface InitRandomOptions {
  preset: string;
  out: string;
  seed: number;
  dtype: 'f32' | 'f16';
}

function parseSeed(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function registerInitRandom(program: Command): void {
  program
    .command('init-random')
    .description('write a checkpoint with random weights and the exact HF layout of a published ESM-2, ESM-1b/1v or ESM C model')
    .addOption(new Option('--preset <name>', 'model shape').choices(Object.keys(ESM2_PRESETS)).makeOptionMandatory())
    .requiredOption('--out <dir>', 'output directory (created; earlier weights there are replaced)')
    .option('--seed <n>', 'random seed', parseSeed, 0)
    .addOption(new Option('--dtype <dtype>', 'weight dtype').choices(['f32', 'f16']).default('f32'))
    .action(async (opts: InitRandomOptions) => {
      const started = Date.now();
      // A progress bar only on a terminal; logs and pipes get the final summary alone.
      const bar = process.stderr.isTTY
        ? new cliProgress.SingleBar({ format: 'writing {bar} {percentage}% | {value}/{total} MiB', stream: process.stderr }, cliProgress.Presets.shades_classic)
        : undefined;
      const mib = (b: number) => Math.round(b / 2 ** 20);
      let barStarted = false;
      const result = await writeRandomCheckpoint({
        preset: opts.preset,
        outDir: opts.out,
        seed: opts.seed,
        dtype: opts.dtype === 'f16' ? 'F16' : 'F32',
        onProgress: bar
          ? (done, total) => {
              if (!barStarted) bar.start(mib(total), 0);
              barStarted = true;
              bar.update(mib(done));
            }
          : undefined,
      });
      bar?.stop();
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.log(
        `wrote ${opts.preset} (${result.config.numLayers} layers, hidden ${result.config.hiddenSize}, ${result.tensorCount} tensors, ` +
          `${opts.dtype}, seed ${opts.seed}${result.sharded ? `, ${result.files.filter((f) => f.path.endsWith(".safetensors")).length} shards` : ''}) to ${result.dir} in ${seconds} s`,
      );
      for (const f of result.files) console.log(`  ${f.path}  ${formatBytes(f.bytes)}`);
    });
}
