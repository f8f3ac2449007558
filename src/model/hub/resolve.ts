// MODEL_NAME → a checkpoint directory, for the server: an existing local directory wins; a
// repository id is pulled from the hub; unset means the default model, and when that cannot be
// had (no network, nothing cached) the built-in demo checkpoint, loudly — or, with allowDemo false
// (ALLOW_DEMO_MODEL=false), an error saying why the default could not be had. A MODEL_NAME that was
// set and cannot be loaded is an error: a service must never silently serve other weights than asked.
import { existsSync } from 'node:fs';
import { DEMO_MODEL_NAME, ensureDemoCheckpoint } from '../demo.js';
import { DEFAULT_ENDPOINT, DEFAULT_MODEL_REPO, hubEnv, looksLikeRepoId } from './env.js';
import type { ProgressCallback } from './download.js';
import { pullModel, type PullOptions } from './pull.js';

export interface ModelLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface ResolvedModel {
  dir: string;
  /** What responses report as the model. */
  name: string;
  /** For /v1/models: "huggingface hub (repo@commit)", "local directory" or "built-in demo". */
  source: string;
  demo: boolean;
  /** For the demo: why (MODEL_NAME unset and the default model out of reach, with the reason). */
  demoReason?: string;
}

export interface ResolveOptions {
  log: ModelLog;
  /** Where HF_* variables are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  demoCacheDir?: string;
  /** false: the default model out of reach is an error, never the demo (ALLOW_DEMO_MODEL=false). Default true. */
  allowDemo?: boolean;
  /**
   * Bound on reaching the default endpoint for the default model: a fresh machine without network
   * must come up on the demo in seconds, not wait out DNS or a firewall that drops packets.
   */
  defaultModelTimeoutMs?: number;
  pull?: Pick<PullOptions, 'lock' | 'retries' | 'retryDelayMs'>;
  /** Every progress report of a download (besides the log lines), e.g. for the readiness detail. */
  onProgress?: ProgressCallback;
}

export const DEFAULT_MODEL_TIMEOUT_MS = 3000;

/**
 * Log lines for a download: one per 10 % of a file, or after 5 s without one. Files under 1 MiB
 * (config, vocab, index) finish before a line would tell anyone anything, so they get none.
 */
export function progressLogger(log: ModelLog, label: string, clock: () => number = Date.now): ProgressCallback {
  const state = new Map<string, { step: number; at: number }>();
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  return (file, bytes, total) => {
    if (total !== undefined && total < 2 ** 20) return;
    const now = clock();
    const step = total ? Math.min(10, Math.floor((bytes / total) * 10)) : -1;
    const last = state.get(file);
    if (last && (last.step === 10 || (step <= last.step && now - last.at < 5000))) return;
    state.set(file, { step, at: now });
    const amount = total ? `${mib(bytes)} of ${mib(total)} MiB (${Math.floor((bytes / total) * 100)} %)` : `${mib(bytes)} MiB`;
    log.info(`downloading ${label}: ${file} ${amount}`);
  };
}

async function pullForServer(spec: string, name: string, options: ResolveOptions, env = hubEnv(options.env)): Promise<ResolvedModel> {
  const { log } = options;
  const logProgress = progressLogger(log, spec);
  const pulled = await pullModel(spec, {
    ...options.pull,
    env,
    onProgress: (file, bytes, total) => {
      logProgress(file, bytes, total);
      options.onProgress?.(file, bytes, total);
    },
    onNotice: (message) => log.warn(message),
  });
  const how = pulled.via === 'online' && pulled.bytesDownloaded > 0 ? `downloaded ${(pulled.bytesDownloaded / 2 ** 20).toFixed(1)} MiB` : 'from the cache';
  log.info(`model ${spec} (commit ${pulled.commit}, ${how}) in ${pulled.dir}`);
  return { dir: pulled.dir, name, source: `huggingface hub (${pulled.repoId}@${pulled.commit})`, demo: false };
}

export async function resolveModel(modelName: string | undefined, options: ResolveOptions): Promise<ResolvedModel> {
  if (modelName !== undefined) {
    if (existsSync(modelName)) return { dir: modelName, name: modelName, source: 'local directory', demo: false };
    if (looksLikeRepoId(modelName)) return pullForServer(modelName, modelName, options);
    throw new Error(`MODEL_NAME=${modelName}: no such directory, and not a HuggingFace hub repository id (org/name or org/name@revision, e.g. ${DEFAULT_MODEL_REPO})`);
  }

  let reason: string;
  try {
    const env = hubEnv(options.env);
    if (env.endpoint === DEFAULT_ENDPOINT) {
      const bound = options.defaultModelTimeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS;
      env.etagTimeoutMs = Math.min(env.etagTimeoutMs, bound);
    }
    options.log.info(`MODEL_NAME is not set: using the default model ${DEFAULT_MODEL_REPO}`);
    return await pullForServer(DEFAULT_MODEL_REPO, DEFAULT_MODEL_REPO, options, env);
  } catch (err) {
    // Whatever kept the default model away (offline, unreachable, disk, permissions), the service
    // still comes up, on weights that say in every response that they are not a model — unless
    // the demo is refused (ALLOW_DEMO_MODEL=false: containers, clusters), where that is the error.
    const why = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
    reason = `MODEL_NAME is not set and the default model ${DEFAULT_MODEL_REPO} could not be had: ${why}`;
  }
  if (options.allowDemo === false) {
    throw new Error(
      `${reason}; ALLOW_DEMO_MODEL=false refuses the built-in demo checkpoint (random weights). Set MODEL_NAME to a hub repository id or a checkpoint directory`,
    );
  }
  const dir = await ensureDemoCheckpoint(options.demoCacheDir);
  options.log.warn(
    `!!! SERVING THE BUILT-IN DEMO CHECKPOINT "${DEMO_MODEL_NAME}" — RANDOM WEIGHTS, MEANINGLESS OUTPUTS !!! ` +
      `${reason}. ` +
      `Set MODEL_NAME to a hub repository id (e.g. ${DEFAULT_MODEL_REPO}) or a checkpoint directory. Demo checkpoint: ${dir}`,
  );
  return { dir, name: DEMO_MODEL_NAME, source: 'built-in demo', demo: true, demoReason: reason };
}
