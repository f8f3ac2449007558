// npm run bench:profile — where an fp32 forward pass spends its time: ORT's profiler on the
// bench:engine workload (random checkpoints of published shapes), op type → share of kernel time,
// plus what the engine adds around ORT (padding, output copy, IPC) measured in the same run as
// session.run alone vs Replica.run on the same batches.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import ort from 'onnxruntime-node';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { writeRandomCheckpoint } from '../src/model/random-checkpoint.js';
import { compileCheckpoint } from '../src/compile/index.js';
import { Replica } from '../src/engine/replica.js';
import { outputsToFetch, padTokens } from '../src/engine/batch.js';
import { tokenBudgetBatches } from '../src/scheduler/token-budget.js';
import { lognormalLengths, randomProteins } from './workload.js';
import { paddingShare, tightBatches } from './padding.js';
import { median } from './matmul.js';

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

/** Kernel time per op type (µs) and per coarse class, from one ORT profile file. */
export function summarizeProfile(events: readonly ProfileEvent[]): { byOp: Map<string, number>; byClass: Map<string, number>; kernel: number; runs: number } {
  const byOp = new Map<string, number>();
  const byClass = new Map<string, number>();
  let kernel = 0;
  let runs = 0;
  for (const e of events) {
    if (e.cat === 'Session' && e.name === 'model_run') runs += e.dur;
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    const cls = classify(op, e.name);
    byClass.set(cls, (byClass.get(cls) ?? 0) + e.dur);
    kernel += e.dur;
  }
  return { byOp, byClass, kernel, runs };
}

function classify(op: string, name: string): string {
  if (/attn\/(scores|context)/.test(name) && /MatMul/.test(op)) return 'attention (QKᵀ, ·V MatMuls)';
  if (['MatMul', 'FusedMatMul', 'Gemm'].includes(op)) return 'linear MatMul (+bias)';
  if (['MultiHeadAttention', 'Attention', 'RotaryEmbedding', 'Softmax', 'Transpose', 'Split', 'Slice', 'Concat', 'Gather', 'Reshape'].includes(op)) return 'attention (other)';
  if (/LayerNorm/.test(op)) return 'LayerNorm';
  if (['BiasGelu', 'Gelu', 'FastGelu', 'Erf', 'Div', 'Mul'].includes(op)) return 'GELU / elementwise';
  if (op === 'Add') return 'Add (bias, residual)';
  if (op === 'Cast') return 'Cast';
  return 'other';
}

const pct = (part: number, whole: number) => ((100 * part) / whole).toFixed(1);

if (import.meta.url === `file://${process.argv[1]}`) {
  const program = new Command('bench:profile')
    .option('--presets <names>', 'comma-separated presets', 'esm2_t6_8M_UR50D,esm2_t12_35M_UR50D,esm2_t30_150M_UR50D')
    .option('--sequences <n>', 'sequences', '64')
    .option('--toks-per-batch <n>', 'padded-token budget of a batch', '4096')
    .option('--attention <kinds>', 'fused,plain', 'fused')
    .option('--threads <n>', 'ORT intra-op threads', String(availableParallelism()))
    .option('--cache <dir>', 'random checkpoints and compiled graphs', join(process.cwd(), 'bench', '.cache'))
    .option('--no-engine', 'skip the session vs Replica comparison')
    .option('--batching-ab <rounds>', 'instead: greedy vs tight batches on one session, alternated, this many rounds')
    .parse();
  const opts = program.opts<{ presets: string; sequences: string; toksPerBatch: string; attention: string; threads: string; cache: string; engine: boolean; batchingAb?: string }>();
  const threads = Number(opts.threads);
  const lengths = lognormalLengths(Number(opts.sequences), 1);
  const proteins = randomProteins(lengths, 1);
  const profDir = join(opts.cache, 'profiles');
  await mkdir(profDir, { recursive: true });

  for (const preset of opts.presets.split(',')) {
    const dir = join(opts.cache, 'checkpoints', preset);
    if (!existsSync(join(dir, 'config.json'))) await writeRandomCheckpoint({ preset, outDir: dir, seed: 1 });
    const checkpoint = await loadCheckpoint(dir);
    const tokens = proteins.map((p) => checkpoint.tokenizer.encode(p));
    const batches = tokenBudgetBatches(tokens.map((t) => t.length), Number(opts.toksPerBatch));
    const share = paddingShare(tokens.map((t) => t.length), batches);
    const last = checkpoint.config.numLayers;
    const want = { mean: [last] };
    for (const attention of opts.attention.split(',')) {
      const compiled = await compileCheckpoint(checkpoint, { variant: 'default', precision: 'fp32', fusedAttention: attention === 'fused', cacheDir: join(opts.cache, 'compiled') });
      const feedsOf = (batch: number[]) => {
        const padded = padTokens(batch.map((i) => tokens[i]), checkpoint.tokenizer.padId);
        return { input_ids: new ort.Tensor('int64', padded.ids, [padded.batchSize, padded.seqLen]) };
      };
      console.log(`\n## ${preset}, ${attention} attention: ${batches.length} batches, padding ${(100 * share).toFixed(1)} % of computed tokens`);
      if (opts.batchingAb) {
        // Greedy (tokenBudgetBatches) vs tight batches, alternated on one session: the ratio per
        // round is what a shared machine's drift cannot fake.
        const tight = tightBatches(tokens.map((t) => t.length), Number(opts.toksPerBatch));
        console.log(`tight: ${tight.length} batches, padding ${(100 * paddingShare(tokens.map((t) => t.length), tight)).toFixed(1)} %`);
        const session = await ort.InferenceSession.create(compiled.onnxPath, { intraOpNumThreads: threads });
        await session.run(feedsOf(batches[0]), outputsToFetch(want));
        const pass = async (set: number[][]) => {
          const started = performance.now();
          for (const batch of set) await session.run(feedsOf(batch), outputsToFetch(want));
          return (performance.now() - started) / 1000;
        };
        const ratios: number[] = [];
        for (let round = 0; round < Number(opts.batchingAb); round++) {
          const greedyS = await pass(batches);
          const tightS = await pass(tight);
          ratios.push(greedyS / tightS);
          console.log(`round ${round + 1}: greedy ${greedyS.toFixed(2)} s, tight ${tightS.toFixed(2)} s, speed-up ×${(greedyS / tightS).toFixed(3)}`);
        }
        await session.release();
        console.log(`median speed-up of tight batches ×${median(ratios).toFixed(3)}`);
        continue;
      }
      if (opts.engine) {
        // Same batches, same threads: ORT alone, then through the replica process, alternated
        // twice (a shared machine drifts), best of each.
        const plain = await ort.InferenceSession.create(compiled.onnxPath, { intraOpNumThreads: threads });
        const replica = await Replica.start({ device: 'cpu', models: { default: compiled.onnxPath }, intraOpNumThreads: threads });
        await plain.run(feedsOf(batches[0]), outputsToFetch(want));
        await replica.run({ tokens: batches[0].map((i) => tokens[i]), want });
        const sessionTimes: number[] = [];
        const replicaTimes: number[] = [];
        for (let round = 0; round < 2; round++) {
          let started = performance.now();
          for (const batch of batches) await plain.run(feedsOf(batch), outputsToFetch(want));
          sessionTimes.push((performance.now() - started) / 1000);
          started = performance.now();
          for (const batch of batches) await replica.run({ tokens: batch.map((i) => tokens[i]), want });
          replicaTimes.push((performance.now() - started) / 1000);
        }
        await plain.release();
        await replica.close();
        const sessionS = Math.min(...sessionTimes);
        const replicaS = Math.min(...replicaTimes);
        console.log(`session.run alone ${sessionS.toFixed(2)} s, through Replica ${replicaS.toFixed(2)} s (best of 2, alternated): the engine around ORT adds ${pct(replicaS - sessionS, replicaS)} %`);
      }
      const prefix = join(profDir, `${preset}-${attention}`);
      const session = await ort.InferenceSession.create(compiled.onnxPath, { intraOpNumThreads: threads, enableProfiling: true, profileFilePrefix: prefix });
      for (const batch of batches) await session.run(feedsOf(batch), outputsToFetch(want));
      session.endProfiling();
      await session.release();
      const file = readdirSync(profDir).filter((f) => f.startsWith(`${preset}-${attention}_`)).sort().at(-1);
      if (!file) throw new Error(`no profile written under ${profDir}`);
      const events = JSON.parse(await readFile(join(profDir, file), 'utf8')) as ProfileEvent[];
      await rm(join(profDir, file));
      const { byOp, byClass, kernel, runs } = summarizeProfile(events);
      console.log(`kernels ${(kernel / 1e6).toFixed(2)} s of ${(runs / 1e6).toFixed(2)} s in model_run (profiled; the rest, ${pct(runs - kernel, runs)} %, is the executor between kernels)`);
      console.log('\n| class | % of kernel time |\n|---|---:|');
      for (const [cls, us] of [...byClass].sort((a, b) => b[1] - a[1])) console.log(`| ${cls} | ${pct(us, kernel)} |`);
      console.log('\n| op type | % of kernel time |\n|---|---:|');
      for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) if (us / kernel >= 0.001) console.log(`| ${op} | ${pct(us, kernel)} |`);
    }
    await checkpoint.close();
  }
}
