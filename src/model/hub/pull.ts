// A checkpoint from the hub into the shared cache, file by file as transformers' from_pretrained
// fetches it (config.json, vocab.txt — or ESM C's tokenizer.json —, model.safetensors or the index
// and its shards), each file
// through huggingface_hub's hf_hub_download logic: so a cache Python filled is reused as is, and
// one we fill serves Python.
import { COMMIT_RE, formatRepoRef, hubEnv, parseRepoRef, type HubEnv, type RepoRef } from './env.js';
import {
  CONFIG_FILE,
  PYTORCH_FILE,
  readShardNames,
  RepoCache,
  SAFETENSORS_FILE,
  SAFETENSORS_INDEX_FILE,
  TOKENIZER_FILE,
  VOCAB_FILE,
} from './cache.js';
import { ensureBlob, type ProgressCallback } from './download.js';
import { HubError, isNetworkError, noSafetensorsMessage, offlineMessage } from './errors.js';
import type { LockOptions } from './lock.js';
import { headFile, type FileMetadata, type HubTarget } from './metadata.js';

export interface PullOptions {
  /** Defaults to hubEnv(process.env). */
  env?: HubEnv;
  /** Per file: bytes on disk so far and the total (when the hub said it). */
  onProgress?: ProgressCallback;
  /** Things worth a warning line that do not stop the pull (the hub unreachable, cache used). */
  onNotice?: (message: string) => void;
  lock?: LockOptions;
  retries?: number;
  retryDelayMs?: number;
}

export interface PulledModel {
  repoId: string;
  revision: string;
  commit: string;
  /** snapshots/{commit}: a checkpoint directory for loadCheckpoint. */
  dir: string;
  /** Files of the checkpoint, relative to `dir`. */
  files: string[];
  /** Bytes fetched by this call (0 when everything was cached). */
  bytesDownloaded: number;
  /** 'online': the hub was asked; 'offline': HF_HUB_OFFLINE or a cached commit; 'unreachable': cache after a failed connection. */
  via: 'online' | 'offline' | 'unreachable';
}

/** The cached, complete snapshot `ref` points to, or a reason why there is none. */
export async function findCachedSnapshot(cache: RepoCache, ref: RepoRef): Promise<{ commit: string } | { missing: string }> {
  const commit = await cache.readRef(ref.revision);
  if (commit === undefined) return { missing: `no refs/${ref.revision} in ${cache.repoDir}` };
  if (!(await cache.isComplete(commit))) return { missing: `snapshot ${commit} lacks config.json, vocab.txt (or tokenizer.json) or safetensors weights` };
  return { commit };
}

async function cachedResult(cache: RepoCache, ref: RepoRef, commit: string, via: PulledModel['via']): Promise<PulledModel> {
  const weights = (await cache.weightFiles(commit)) ?? [];
  const vocabulary = cache.vocabularyFile(commit) ?? VOCAB_FILE;
  return { repoId: ref.repoId, revision: ref.revision, commit, dir: cache.snapshotDir(commit), files: [CONFIG_FILE, vocabulary, ...weights], bytesDownloaded: 0, via };
}

/** Downloads what the cache lacks of `spec` (`org/name[@revision]`) and returns its snapshot. */
export async function pullModel(spec: string | RepoRef, options: PullOptions = {}): Promise<PulledModel> {
  const ref = typeof spec === 'string' ? parseRepoRef(spec) : spec;
  const env = options.env ?? hubEnv();
  const label = formatRepoRef(ref);
  const cache = new RepoCache(env.cacheDir, ref.repoId);

  if (env.offline) {
    const found = await findCachedSnapshot(cache, ref);
    if ('missing' in found) throw new HubError('offline', label, offlineMessage(label, env.cacheDir, found.missing));
    return cachedResult(cache, ref, found.commit, 'offline');
  }
  // As hf_hub_download with a commit hash: a complete cached commit needs no network at all.
  if (COMMIT_RE.test(ref.revision) && (await cache.isComplete(ref.revision))) return cachedResult(cache, ref, ref.revision, 'offline');

  try {
    return await pullOnline({ ref, env, label }, cache, options);
  } catch (err) {
    // huggingface_hub falls back to the cache when the hub cannot be reached; so do we, saying so.
    if (!isNetworkError(err) && !(err instanceof HubError && err.kind === 'server')) throw err;
    const found = await findCachedSnapshot(cache, ref);
    if ('missing' in found) throw err;
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    options.onNotice?.(
      `${env.endpoint} could not be used for ${label} (${cause}); using the cached snapshot ${found.commit}. Set HF_HUB_OFFLINE=1 to skip the hub when it is known to be unreachable`,
    );
    return cachedResult(cache, ref, found.commit, 'unreachable');
  }
}

async function pullOnline(target: HubTarget, cache: RepoCache, options: PullOptions): Promise<PulledModel> {
  const { ref } = target;
  // The first HEAD resolves the revision; every later file is asked for at that commit, so one
  // snapshot is consistent even if the branch moves during the pull.
  const first = await headFile(target, ref.revision, CONFIG_FILE, true);
  const commit = first.commit;
  const files: string[] = [];
  let bytesDownloaded = 0;

  const fetchFile = async (file: string, known?: FileMetadata): Promise<void> => {
    files.push(file);
    if (cache.hasFile(commit, file)) return; // already in the snapshot: no request at all
    const meta = known ?? (await headFile(target, commit, file));
    bytesDownloaded += await ensureBlob({ target, cache, meta, onProgress: options.onProgress, lock: options.lock, retries: options.retries, retryDelayMs: options.retryDelayMs });
    await cache.linkSnapshot(commit, file, meta.etag);
  };
  /** fetchFile, or false when the hub says the file does not exist (marked in .no_exist, as Python does). */
  const fetchIfExists = async (file: string): Promise<boolean> => {
    try {
      await fetchFile(file);
      return true;
    } catch (err) {
      if (!(err instanceof HubError && err.kind === 'entry-not-found')) throw err;
      files.pop();
      await cache.markMissing(err.commit ?? commit, file);
      return false;
    }
  };

  await fetchFile(CONFIG_FILE, first);
  // ESM-2 and ESM-1b/1v repositories have vocab.txt; ESM C's have tokenizer.json instead.
  if (!(await fetchIfExists(VOCAB_FILE)) && !(await fetchIfExists(TOKENIZER_FILE))) {
    throw new HubError('entry-not-found', target.label, `${target.label} has neither ${VOCAB_FILE} nor ${TOKENIZER_FILE}: not an ESM checkpoint`);
  }
  const cachedWeights = await cache.weightFiles(commit);
  if (cachedWeights) {
    for (const file of cachedWeights) await fetchFile(file);
  } else if (!(await fetchIfExists(SAFETENSORS_FILE))) {
    if (!(await fetchIfExists(SAFETENSORS_INDEX_FILE))) throw await noWeightsError(target, commit);
    for (const shard of await readShardNames(cache.snapshotFile(commit, SAFETENSORS_INDEX_FILE))) await fetchFile(shard);
  }
  await cache.writeRef(ref.revision, commit);
  return { repoId: ref.repoId, revision: ref.revision, commit, dir: cache.snapshotDir(commit), files, bytesDownloaded, via: 'online' };
}

/** Neither safetensors form exists: say whether a pytorch_model.bin does (the common case). */
async function noWeightsError(target: HubTarget, commit: string): Promise<HubError> {
  try {
    await headFile(target, commit, PYTORCH_FILE);
    return new HubError('no-safetensors', target.label, noSafetensorsMessage(target.label));
  } catch (err) {
    if (!(err instanceof HubError && err.kind === 'entry-not-found')) throw err;
    return new HubError(
      'entry-not-found',
      target.label,
      `${target.label} has no ${SAFETENSORS_FILE}, ${SAFETENSORS_INDEX_FILE} or ${PYTORCH_FILE}: not a transformers ESM-2 checkpoint`,
    );
  }
}
