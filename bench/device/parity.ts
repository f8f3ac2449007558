// node dist/bench/device/parity.js --device webgpu --fixture DIR [--precisions fp32,fp16] [--out FILE]:
// our compiled graphs of a golden fixture on a device against the CPU execution provider's fp32 of
// the same checkpoint, all the fixture's cases in one padded batch: the relative error ‖a − b‖/‖b‖
// of logits, the last hidden state and the mean embedding per case, worst case reported per
// precision. The device's failure to start or run is a result too (written, not thrown).
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Command } from 'commander';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { compileCheckpoint, type Precision } from '../../src/compile/index.js';
import { Replica } from '../../src/engine/replica.js';
import { relativeError } from '../../src/tasks/precision-compare.js';
import type { SequenceResult } from '../../src/contract/index.js';

const opts = new Command('device-parity')
  .requiredOption('--device <spec>', 'webgpu, cuda:0, … (cpu compares the cpu with itself)')
  .requiredOption('--fixture <dir>', 'a golden fixture checkpoint (test/fixtures/golden/esm2_tiny/model; cases.json beside it)')
  .option('--precisions <list>', 'graphs to run on the device', 'fp32,fp16')
  .option('--cache <dir>', 'compiled graphs (default: a fresh temp dir)')
  .option('--out <file>', 'write the rows as JSON here')
  .parse()
  .opts<{ device: string; fixture: string; precisions: string; cache?: string; out?: string }>();

const cases = (JSON.parse(readFileSync(join(dirname(opts.fixture), 'cases.json'), 'utf8')) as { cases: { id: string; sequence: string }[] }).cases;
const checkpoint = await loadCheckpoint(opts.fixture);
const cacheDir = opts.cache ?? (await mkdtemp(join(tmpdir(), 'esm2-parity-')));
const tokens = cases.map((c) => checkpoint.tokenizer.encode(c.sequence));
const L = checkpoint.config.numLayers;
const want = { logits: true, hidden: [L], mean: [L] };

async function runOn(device: string, precision: Precision): Promise<{ results: SequenceResult[]; actual: string }> {
  const compiled = await compileCheckpoint(checkpoint, { variant: 'default', precision, cacheDir });
  const replica = await Replica.start({ device, models: { default: compiled.onnxPath }, allowCpuFallback: false, padTokenId: checkpoint.tokenizer.padId });
  try {
    return { results: await replica.run({ tokens, want }), actual: replica.info().actual };
  } finally {
    await replica.close();
  }
}

const reference = (await runOn('cpu', 'fp32')).results;
const rows: Record<string, unknown>[] = [];
for (const precision of opts.precisions.split(',') as Precision[]) {
  try {
    const { results, actual } = await runOn(opts.device, precision);
    const worst = { logits: 0, last_hidden: 0, mean: 0 };
    results.forEach((r, i) => {
      const ref = reference[i];
      worst.logits = Math.max(worst.logits, relativeError(r.logits!, ref.logits!));
      worst.last_hidden = Math.max(worst.last_hidden, relativeError(r.hidden![L], ref.hidden![L]));
      worst.mean = Math.max(worst.mean, relativeError(r.mean![L], ref.mean![L]));
    });
    rows.push({ device: opts.device, actual, precision, cases: cases.length, worst_relative_error: worst });
  } catch (err) {
    rows.push({ device: opts.device, precision, error: (err as Error).message });
  }
  console.log(JSON.stringify(rows.at(-1)));
}
await checkpoint.close();
if (opts.out) writeFileSync(opts.out, `${JSON.stringify({ fixture: opts.fixture, reference: 'cpu fp32', rows }, null, 2)}\n`);
