// npm run bench:large-model — compile time, load time, first embedding and peak memory of one big
// random checkpoint (default: the t33_650M shape, 2.6 GB in fp32, above protobuf's 2 GB limit).
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { writeRandomCheckpoint } from '../src/model/random-checkpoint.js';
import { compileCheckpoint } from '../src/compile/index.js';
import { Replica } from '../src/engine/replica.js';

const opts = new Command('bench:large-model')
  .option('--preset <name>', 'published shape', 'esm2_t33_650M_UR50D')
  .option('--cache <dir>', 'where the checkpoint and compiled graph go', join(process.cwd(), 'bench', '.cache'))
  .parse()
  .opts<{ preset: string; cache: string }>();

/** Peak resident set (VmHWM) of a process, in MiB (Linux). */
async function peakRssMiB(pid: number | 'self'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(2);
const dir = join(opts.cache, 'checkpoints', opts.preset);
const compiledDir = join(opts.cache, 'compiled-large');
let t = performance.now();
if (!existsSync(join(dir, 'config.json'))) {
  await writeRandomCheckpoint({ preset: opts.preset, outDir: dir, seed: 1 });
  console.log(`random checkpoint written in ${seconds(t)} s`);
}
await rm(compiledDir, { recursive: true, force: true }); // measure a cold compile
t = performance.now();
const checkpoint = await loadCheckpoint(dir);
console.log(`checkpoint opened and validated in ${seconds(t)} s`);
t = performance.now();
const compiled = await compileCheckpoint(checkpoint, { variant: 'default', precision: 'fp32', cacheDir: compiledDir });
console.log(`compiled in ${seconds(t)} s (${compiled.onnxPath})`);
console.log(`main process peak RSS after compile: ${(await peakRssMiB('self')).toFixed(0)} MiB`);
t = performance.now();
const replica = await Replica.start({ device: 'cpu', models: { default: compiled.onnxPath }, padTokenId: checkpoint.tokenizer.padId });
console.log(`replica ready (ORT session created) in ${seconds(t)} s`);
t = performance.now();
const tokens = checkpoint.tokenizer.encode('MKTVRQERLKSIVRILERSKEPVSGAQLAEELSVSRQVIVQDIAYLRSLGYNIVATPRGYVLAGG');
const [result] = await replica.run({ tokens: [tokens], want: { mean: [checkpoint.config.numLayers] } });
console.log(`embedded one ${tokens.length - 2}-residue sequence in ${seconds(t)} s (mean of ${result.mean![checkpoint.config.numLayers].length} dims)`);
console.log(`replica process peak RSS: ${(await peakRssMiB(replica.info().pid!)).toFixed(0)} MiB`);
await replica.close();
await checkpoint.close();
