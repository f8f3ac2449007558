// node dist/bench/device/report.js --results DIR --out DIR: the device check's results (the JSON
// files check.sh left in DIR) as one results.json and one markdown results.md: parity against the
// cpu, our engine on the device per shape and precision next to HF transformers on the same GPU
// (the ratio per precision: ours fp16 ÷ theirs fp16, ours fp16 ÷ theirs bf16), our graph through
// Python onnxruntime's CUDA provider, and the server end to end. What was skipped says why.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';

const opts = new Command('device-report').requiredOption('--results <dir>').requiredOption('--out <dir>').option('--title <text>', 'first line', 'Device check').parse().opts<{ results: string; out: string; title: string }>();

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const read = (name: string): Json | undefined => (existsSync(join(opts.results, name)) ? (JSON.parse(readFileSync(join(opts.results, name), 'utf8')) as Json) : undefined);
const files = readdirSync(opts.results).filter((f) => f.endsWith('.json')).sort();
const all: Json = Object.fromEntries(files.map((f) => [f.replace(/\.json$/, ''), read(f)]));
const lines: string[] = [`# ${opts.title}`, ''];
const context = read('context.json');
if (context) lines.push(...Object.entries(context).map(([k, v]) => `- ${k}: ${String(v)}`), '');

const rate = (n: unknown) => (typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const parity = read('parity.json');
if (parity) {
  lines.push(`## Parity against ${parity.reference} (golden fixture, every case in one padded batch; worst relative error)`, '', '| device | precision | logits | last hidden | mean | note |', '|---|---|---:|---:|---:|---|');
  for (const r of parity.rows as Json[]) {
    const w = r.worst_relative_error as Json | undefined;
    lines.push(`| ${r.actual ?? r.device} | ${r.precision} | ${w ? w.logits.toExponential(2) : '—'} | ${w ? w.last_hidden.toExponential(2) : '—'} | ${w ? w.mean.toExponential(2) : '—'} | ${r.error ?? ''} |`);
  }
  lines.push('');
}

// Throughput: ours per (model, precision) from the engine files, peers per model.
const engine: Json[] = files.filter((f) => f.startsWith('engine-')).flatMap((f) => ((read(f)?.rows ?? []) as Json[]).map((r): Json => ({ ...r, device: r.device ?? read(f)?.device })));
const hf = (model: string) => read(`hf-${model}.json`);
const ort = (model: string) => read(`ort-${model}.json`);
const models = [...new Set(engine.map((r) => r.model as string))];
if (models.length) {
  lines.push('## Throughput on the bench:engine workload (residues/s, median of the passes)', '', '| model | engine | precision | residues/s | ours fp16 ÷ this | note |', '|---|---|---|---:|---:|---|');
  for (const model of models) {
    const ours = engine.filter((r) => r.model === model);
    const oursFp16 = ours.find((r) => r.precision === 'fp16' && !r.error)?.['residues/s'] as number | undefined;
    for (const r of ours) lines.push(`| ${model} | ours, ${r.device ?? 'cpu'} | ${r.precision} | ${rate(r['residues/s'])} | | ${r.error ?? `${r.batches} batches, ${r['padding %']} % padding`} |`);
    const peer = hf(model);
    if (peer?.skipped) lines.push(`| ${model} | HF transformers | — | — | | skipped: ${peer.skipped} |`);
    for (const r of (peer?.rows ?? []) as Json[]) {
      const ratio = oursFp16 && r.residues_per_s ? `${(oursFp16 / r.residues_per_s).toFixed(2)}` : '';
      lines.push(`| ${model} | HF transformers ${peer!.transformers ?? ''} (${peer!.attention ?? ''}), ${peer!.device} | ${r.dtype} | ${rate(r.residues_per_s)} | ${ratio} | ${r.error ?? ''} |`);
    }
    const cuda = ort(model);
    if (cuda?.skipped) lines.push(`| ${model} | our graph, Python onnxruntime CUDA EP | fp16 | — | | skipped: ${cuda.skipped} |`);
    for (const r of (cuda?.rows ?? []) as Json[]) lines.push(`| ${model} | our graph, onnxruntime ${cuda!.onnxruntime} CUDA EP | fp16 | ${rate(r.residues_per_s)} | | ${r.error ?? ''} |`);
  }
  lines.push('');
}

const servers = files.filter((f) => f.startsWith('server-'));
if (servers.length) {
  lines.push('## The server end to end (`npm run benchmark`, /predict, one sequence a request)', '', '| run | concurrency | requests | errors | residues/s | p50 ms | p95 ms |', '|---|---:|---:|---|---:|---:|---:|');
  for (const f of servers) {
    const report = read(f)!;
    if (report.skipped || report.error) lines.push(`| ${f} | | | ${report.skipped ?? report.error} | | | |`);
    for (const r of (report.results ?? []) as Json[]) {
      lines.push(`| ${f.replace(/\.json$/, '')} | ${r.concurrency} | ${r.requests} | ${Object.keys(r.errors).length ? JSON.stringify(r.errors) : '0'} | ${rate(r.residues_per_s)} | ${r.latency_ms?.p50?.toFixed(1) ?? '—'} | ${r.latency_ms?.p95?.toFixed(1) ?? '—'} |`);
    }
  }
  lines.push('');
}
writeFileSync(join(opts.out, 'results.json'), `${JSON.stringify(all, null, 2)}\n`);
writeFileSync(join(opts.out, 'results.md'), `${lines.join('\n')}\n`);
console.log(lines.join('\n'));
