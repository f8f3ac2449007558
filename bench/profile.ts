// npm run bench:profile — where an fp32 forward pass spends its time: ORT's profiler on the
// bench:engine workload (random checkpoints of published shapes), op type → share of kernel time,
// plus what the engine adds around ORT (padding, output copy, IPC) measured in the same run as
// session.run alone vs Replica.run on the same batches.
import { existsSync } from 'node:fs';
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
import { paddingShare } from './padding.js';

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
    .parse();
  const opts = program.opts<{ presets: string; sequences: string; toksPerBatch: string; attention: string; threads: string; cache: string; engine: boolean }>();
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
      if (opts.engine) {
        // Same batches, same threads: ORT alone, then through the replica process.
        const plain = await ort.InferenceSession.create(compiled.onnxPath, { intraOpNumThreads: threads });
        await plain.run(feedsOf(batches[0]), outputsToFetch(want));
        let started = performance.now();
        for (const batch of batches) await plain.run(feedsOf(batch), outputsToFetch(want));
        const sessionS = (performance.now() - started) / 1000;
        await plain.release();
        const replica = await Replica.start({ device: 'cpu', models: { default: compiled.onnxPath }, intraOpNumThreads: threads });
        await replica.run({ tokens: batches[0].map((i) => tokens[i]), want });
        started = performance.now();
        for (const batch of batches) await replica.run({ tokens: batch.map((i) => tokens[i]), want });
        const replicaS = (performance.now() - started) / 1000;
        await replica.close();
        console.log(`session.run alone ${sessionS.toFixed(2)} s, through Replica ${replicaS.toFixed(2)} s: the engine around ORT adds ${pct(replicaS - sessionS, replicaS)} %`);
      }
      const prefix = join(profDir, `${preset}-${attention}`);
      const session = await ort.InferenceSession.create(compiled.onnxPath, { intraOpNumThreads: threads, enableProfiling: true, profileFilePrefix: prefix });
      for (const batch of batches) await session.run(feedsOf(batch), outputsToFetch(want));
      session.endProfiling();
      await session.release();
      const file = (await import('node:fs')).readdirSync(profDir).filter((f) => f.startsWith(`${preset}-${attention}_`)).sort().at(-1);
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
