// The peer for `bench:engine --peer`: the original implementation (fair-esm, PyTorch eager, fp32)
// timed by ../shared/peer/peer_bench.py on the same shape, thread count and workload size, right
// after our own runs. Where it is not installed the bench says why in one line and goes on.
//
// Locations (environment, with defaults relative to the repository root):
//   ESM2_PEER_PYTHON  the interpreter with Debian's python3-torch   (/usr/bin/python3)
//   ESM2_PEER_SCRIPT  peer_bench.py                                 (../shared/peer/peer_bench.py)
//   ESM2_PEER_SRC     a directory holding fair-esm's `esm` package   (bench/.cache/peer-src)
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface PeerConfig {
  python: string;
  script: string;
  src: string;
}

export interface PeerResult {
  residues: number;
  seconds: number;
  residuesPerS: number;
  torch: string;
  threads: number;
}

export function peerConfig(env: NodeJS.ProcessEnv = process.env, root = process.cwd()): PeerConfig {
  return {
    python: env.ESM2_PEER_PYTHON || '/usr/bin/python3',
    script: resolve(root, env.ESM2_PEER_SCRIPT || join('..', 'shared', 'peer', 'peer_bench.py')),
    src: resolve(root, env.ESM2_PEER_SRC || join('bench', '.cache', 'peer-src')),
  };
}

/** peer_bench.py's preset for one of ours (`esm2_t12_35M_UR50D` → `t12`), or undefined. */
export function peerPreset(preset: string): string | undefined {
  const layers = /^esm2_(t\d+)_/.exec(preset)?.[1];
  return layers && ['t6', 't12', 't30', 't33'].includes(layers) ? layers : undefined;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      done({ code, stdout, stderr: stderr || (err && code === -1 ? err.message : '') });
    });
  });
}

const pythonEnv = (config: PeerConfig): NodeJS.ProcessEnv => ({ ...process.env, PYTHONPATH: config.src });

/** Why the peer cannot run here (one line), or undefined when it can. */
export async function peerMissing(config: PeerConfig): Promise<string | undefined> {
  if (!existsSync(config.python)) return `no ${config.python} (ESM2_PEER_PYTHON); Debian: apt-get install python3-torch libopenblas0-pthread python3-numpy`;
  if (!existsSync(config.script)) return `no peer script at ${config.script} (ESM2_PEER_SCRIPT)`;
  if (!existsSync(join(config.src, 'esm', '__init__.py'))) return `no fair-esm source at ${config.src}/esm (ESM2_PEER_SRC; see ../shared/peer/README.md)`;
  const probe = await run(config.python, ['-c', 'import torch, numpy, esm'], pythonEnv(config), 60_000);
  if (probe.code !== 0) {
    const last = probe.stderr.trim().split('\n').at(-1) ?? `exit ${probe.code}`;
    return `${config.python} cannot import torch, numpy and fair-esm: ${last}`;
  }
  return undefined;
}

/** Runs peer_bench.py once; its last stdout line is the JSON result. */
export async function runPeer(
  config: PeerConfig,
  opts: { preset: string; threads: number; sequences: number; toksPerBatch: number; timeoutMs?: number },
): Promise<PeerResult> {
  const preset = peerPreset(opts.preset);
  if (!preset) throw new Error(`the peer has no preset for ${opts.preset}`);
  const args = [config.script, '--preset', preset, '--threads', String(opts.threads), '--seqs', String(opts.sequences), '--toks', String(opts.toksPerBatch)];
  const out = await run(config.python, args, pythonEnv(config), opts.timeoutMs ?? 30 * 60_000);
  if (out.code !== 0) throw new Error(`peer_bench.py exited ${out.code}: ${out.stderr.trim().split('\n').at(-1) ?? ''}`);
  const line = out.stdout.trim().split('\n').at(-1) ?? '';
  const json = JSON.parse(line) as { residues: number; seconds: number; residues_per_s: number; torch: string; threads: number };
  return { residues: json.residues, seconds: json.seconds, residuesPerS: json.residues_per_s, torch: json.torch, threads: json.threads };
}
