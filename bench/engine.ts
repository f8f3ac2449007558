// npm run bench:engine — engine throughput on random checkpoints of published shapes, next to the
// machine's fp32 MatMul rate measured in the same run (cpu). Prints a table (and JSON with --json or
// --output). `--device webgpu|cuda:0` runs the replicas there (no MatMul reference: it is the cpu's).
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { writeRandomCheckpoint } from '../src/model/random-checkpoint.js';
import { esm2ForwardFlops } from '../src/model/flops.js';
import { compileCheckpoint, type Precision } from '../src/compile/index.js';
import { Replica } from '../src/engine/replica.js';
import { tokenBudgetBatches } from '../src/scheduler/token-budget.js';
import { lognormalLengths, randomProteins } from './workload.js';
import { matmulGflops, median } from './matmul.js';
import { paddingShare, tightBatches } from './padding.js';
import { peerConfig, peerMissing, peerPreset, runPeer } from './peer.js';

const program = new Command('bench:engine')
  .option('--presets <names>', 'comma-separated presets', 'esm2_t6_8M_UR50D,esm2_t12_35M_UR50D,esm2_t30_150M_UR50D')
  .option('--sequences <n>', 'sequences per run', '64')
  .option('--toks-per-batch <n>', 'padded-token budget of a batch', '4096')
  .option('--repeats <n>', 'timed passes over the workload (median reported)', '3')
  .option('--attention <kinds>', 'fused,plain', 'fused,plain')
  .option('--precisions <list>', 'fp32,int8 (int8 rows also give their speed-up over fp32)', 'fp32')
  .option('--threads <n>', 'ORT intra-op threads', String(availableParallelism()))
  .option('--cache <dir>', 'where random checkpoints and compiled graphs go', join(process.cwd(), 'bench', '.cache'))
  .option('--batching <kinds>', 'budget (tokenBudgetBatches, greedy), tight (least padding under the same budget)', 'budget')
  .option('--peer', 'then run the original implementation on the same shape (bench/peer.ts) and print the ratio')
  .option('--json', 'also print the rows as JSON')
  .option('--output <file>', 'write the rows (with each graph\'s path and the device used) as JSON here')
  .option('--device <spec>', 'where the replicas run: cpu, webgpu, cuda:N, tensorrt:N (no fallback to cpu: a failure is reported)', 'cpu')
  .parse();
const opts = program.opts<{
  presets: string; sequences: string; toksPerBatch: string; repeats: string; attention: string; batching: string; precisions: string; threads: string; cache: string;
  peer?: boolean; json?: boolean; output?: string; device: string;
}>();
const onCpu = opts.device === 'cpu';

const threads = Number(opts.threads);
for (const kind of opts.batching.split(',')) if (kind !== 'budget' && kind !== 'tight') throw new Error(`--batching takes budget and/or tight, got "${kind}"`);
const lengths = lognormalLengths(Number(opts.sequences), 1);
const proteins = randomProteins(lengths, 1);
const residues = lengths.reduce((a, b) => a + b, 0);

console.log(`workload: ${proteins.length} sequences, ${residues} residues (lognormal, median 250, 30–1022), batches ≤ ${opts.toksPerBatch} padded tokens, ${threads} threads`);
// The GEMM rate depends on the shape; the best of the t30 FFN's two shapes and a larger one is the
// reference, so "% of MatMul" is conservative.
const matmulShapes: [number, number, number][] = onCpu ? [[4096, 640, 2560], [4096, 2560, 640], [4096, 1280, 5120]] : [];
const matmulRates: number[] = [];
for (const [m, k, n] of matmulShapes) {
  matmulRates.push(await matmulGflops(m, k, n, threads));
  console.log(`fp32 MatMul through ORT (${m}×${k} · ${k}×${n}): ${matmulRates.at(-1)!.toFixed(1)} GFLOP/s`);
}
const matmul = onCpu ? Math.max(...matmulRates) : NaN;
console.log(onCpu ? `reference MatMul rate: ${matmul.toFixed(1)} GFLOP/s` : `device ${opts.device}: no MatMul reference (it is the cpu's)`);
const graphs: Record<string, string> = {};

const peer = opts.peer ? peerConfig() : undefined;
const peerSkip = peer && (await peerMissing(peer));
if (peerSkip) console.log(`peer skipped: ${peerSkip}`);
const rows: Record<string, string | number>[] = [];
const peerRows: Record<string, string | number>[] = [];
for (const preset of opts.presets.split(',')) {
  const dir = join(opts.cache, 'checkpoints', preset);
  if (!existsSync(join(dir, 'config.json'))) await writeRandomCheckpoint({ preset, outDir: dir, seed: 1 });
  const checkpoint = await loadCheckpoint(dir);
  const tokens = proteins.map((p) => checkpoint.tokenizer.encode(p));
  const counts = tokens.map((t) => t.length);
  const flops = tokens.reduce((sum, t) => sum + esm2ForwardFlops(checkpoint.config, t.length), 0);
  const ours: [string, number][] = [];
  for (const batching of opts.batching.split(','))
  for (const attention of opts.attention.split(',')) for (const precision of opts.precisions.split(',') as Precision[]) {
    const batches = batching === 'tight' ? tightBatches(counts, Number(opts.toksPerBatch)) : tokenBudgetBatches(counts, Number(opts.toksPerBatch));
    const compiled = await compileCheckpoint(checkpoint, { variant: 'default', precision, fusedAttention: attention === 'fused', cacheDir: join(opts.cache, 'compiled') });
    let replica: Replica;
    try {
      replica = await Replica.start({ device: opts.device, models: { default: compiled.onnxPath }, intraOpNumThreads: threads, allowCpuFallback: false });
    } catch (err) {
      // A device that cannot run this graph is a result too (webgpu and some precisions).
      rows.push({ model: preset, attention, batching, precision, device: opts.device, error: (err as Error).message });
      console.log(rows.at(-1));
      continue;
    }
    graphs[`${preset} ${precision} ${attention}`] = compiled.onnxPath;
    const last = checkpoint.config.numLayers;
    const runAll = async () => {
      for (const batch of batches) await replica.run({ tokens: batch.map((i) => tokens[i]), want: { mean: [last] } });
    };
    const times: number[] = [];
    try {
      await replica.run({ tokens: batches[0].map((i) => tokens[i]), want: { mean: [last] } }); // warm-up
      for (let r = 0; r < Number(opts.repeats); r++) {
        const started = performance.now();
        await runAll();
        times.push((performance.now() - started) / 1000);
      }
    } catch (err) {
      rows.push({ model: preset, attention, batching, precision, device: opts.device, error: (err as Error).message });
      console.log(rows.at(-1));
      continue;
    } finally {
      await replica.close();
    }
    const seconds = median(times);
    const gflops = flops / seconds / 1e9;
    const fp32 = rows.find((r) => r.model === preset && r.attention === attention && r.batching === batching && r.precision === 'fp32');
    rows.push({
      model: preset,
      attention,
      batching,
      precision,
      ...(onCpu ? {} : { device: opts.device }),
      batches: batches.length,
      'padding %': (100 * paddingShare(counts, batches)).toFixed(1),
      'seconds (median)': seconds.toFixed(2),
      'residues/s': Math.round(residues / seconds),
      'model GFLOP/s': gflops.toFixed(1),
      '% of MatMul': onCpu ? ((100 * gflops) / matmul).toFixed(0) : '',
      ...(opts.precisions.includes(',') ? { 'vs fp32': fp32 && precision !== 'fp32' ? `${(Number(fp32['seconds (median)']) / seconds).toFixed(2)}×` : '' } : {}),
    });
    console.log(rows.at(-1));
    ours.push([`${attention}, ${batching}, ${precision}`, residues / seconds]);
  }
  await checkpoint.close();
  if (peer && !peerSkip && !peerPreset(preset)) console.log(`peer skipped for ${preset}: peer_bench.py has no such shape`);
  else if (peer && !peerSkip) {
    const theirs = await runPeer(peer, { preset, threads, sequences: Number(opts.sequences), toksPerBatch: Number(opts.toksPerBatch) });
    const row: Record<string, string | number> = { model: preset, 'peer residues/s': Math.round(theirs.residuesPerS), peer: `fair-esm, torch ${theirs.torch}, ${theirs.threads} threads` };
    for (const [label, rate] of ours) row[`ours (${label}) / peer`] = `${Math.round(rate)} / ${Math.round(theirs.residuesPerS)} = ${(rate / theirs.residuesPerS).toFixed(2)}`;
    peerRows.push(row);
    console.log(peerRows.at(-1));
  }
}
console.log();
console.table(rows);
if (peerRows.length) console.table(peerRows);
const report = { device: opts.device, matmulGflops: Object.fromEntries(matmulShapes.map((shape, i) => [shape.join('x'), matmulRates[i]])), reference: onCpu ? matmul : null, threads, rows, peer: peerRows, graphs };
if (opts.json) console.log(JSON.stringify(report, null, 2));
if (opts.output) writeFileSync(opts.output, `${JSON.stringify(report, null, 2)}\n`);
