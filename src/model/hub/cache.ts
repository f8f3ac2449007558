// The huggingface_hub cache layout, byte for byte what Python writes, so either can reuse the other's
// downloads:
//   {cache}/models--{org}--{name}/blobs/{etag}              file content, named by its hub etag
//   {cache}/models--{org}--{name}/snapshots/{commit}/{file} relative symlink ../../blobs/{etag}
//   {cache}/models--{org}--{name}/refs/{revision}           the commit hash, no newline
//   {cache}/models--{org}--{name}/.no_exist/{commit}/{file} empty: the hub said "no such file"
//   {cache}/.locks/models--{org}--{name}/{etag}.lock        one download of a blob at a time
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { COMMIT_RE } from './env.js';

export const CONFIG_FILE = 'config.json';
export const VOCAB_FILE = 'vocab.txt';
/** ESM C repositories' vocabulary (they have no vocab.txt). */
export const TOKENIZER_FILE = 'tokenizer.json';
export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';
export const PYTORCH_FILE = 'pytorch_model.bin';

/** A name next to `target` that no other process or call picks: for write-then-rename. */
function tempNextTo(target: string): string {
  return `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

export class RepoCache {
  readonly repoDir: string;
  readonly lockDir: string;

  constructor(
    readonly cacheDir: string,
    readonly repoId: string,
  ) {
    const folder = `models--${repoId.split('/').join('--')}`;
    this.repoDir = path.join(cacheDir, folder);
    this.lockDir = path.join(cacheDir, '.locks', folder);
  }

  blobPath(etag: string): string {
    return path.join(this.repoDir, 'blobs', etag);
  }

  incompletePath(etag: string): string {
    return `${this.blobPath(etag)}.incomplete`;
  }

  lockPath(etag: string): string {
    return path.join(this.lockDir, `${etag}.lock`);
  }

  snapshotDir(commit: string): string {
    return path.join(this.repoDir, 'snapshots', commit);
  }

  snapshotFile(commit: string, file: string): string {
    return path.join(this.snapshotDir(commit), ...file.split('/'));
  }

  /** True when the snapshot entry exists and (through its symlink) its blob does too. */
  hasFile(commit: string, file: string): boolean {
    return existsSync(this.snapshotFile(commit, file));
  }

  /** The commit `revision` pointed to when last fetched (a commit is its own answer). */
  async readRef(revision: string): Promise<string | undefined> {
    if (COMMIT_RE.test(revision)) return revision;
    try {
      const commit = (await readFile(path.join(this.repoDir, 'refs', ...revision.split('/')), 'utf8')).trim();
      return COMMIT_RE.test(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  /** Python writes no ref for a revision that is itself a commit; neither do we. */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (COMMIT_RE.test(revision)) return;
    const refPath = path.join(this.repoDir, 'refs', ...revision.split('/'));
    if ((await this.readRef(revision)) === commit) return;
    await mkdir(path.dirname(refPath), { recursive: true });
    const tmp = tempNextTo(refPath);
    await writeFile(tmp, commit); // no newline, as huggingface_hub writes it
    await rename(tmp, refPath);
  }

  /**
   * Points snapshots/{commit}/{file} at blobs/{etag} with a RELATIVE symlink (the cache volume may
   * be mounted elsewhere in another container). Made under a temporary name and renamed into place,
   * so a reader never sees a dangling or half-made entry and racing processes both succeed.
   */
  async linkSnapshot(commit: string, file: string, etag: string): Promise<void> {
    const entry = this.snapshotFile(commit, file);
    const target = path.relative(path.dirname(entry), this.blobPath(etag));
    try {
      if ((await readlink(entry)) === target) return;
    } catch {
      // absent (or not a link): make it
    }
    await mkdir(path.dirname(entry), { recursive: true });
    const tmp = tempNextTo(entry);
    await symlink(target, tmp);
    try {
      await rename(tmp, entry);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** What Python's hf_hub_download leaves when the hub answers EntryNotFound for a known commit. */
  async markMissing(commit: string, file: string): Promise<void> {
    const marker = path.join(this.repoDir, '.no_exist', commit, ...file.split('/'));
    await mkdir(path.dirname(marker), { recursive: true });
    await writeFile(marker, '');
  }

  /**
   * The weight files a snapshot needs beyond config and vocab: model.safetensors, or the index and
   * every shard it names. Undefined when the snapshot has neither weights file yet.
   */
  async weightFiles(commit: string): Promise<string[] | undefined> {
    if (this.hasFile(commit, SAFETENSORS_FILE)) return [SAFETENSORS_FILE];
    if (!this.hasFile(commit, SAFETENSORS_INDEX_FILE)) return undefined;
    const shards = await readShardNames(this.snapshotFile(commit, SAFETENSORS_INDEX_FILE));
    return [SAFETENSORS_INDEX_FILE, ...shards];
  }

  /** A snapshot a checkpoint can be loaded from: config, vocab and every weight file present. */
  /** vocab.txt (ESM-2, ESM-1b/1v), else tokenizer.json (ESM C), whichever the snapshot has. */
  vocabularyFile(commit: string): string | undefined {
    return [VOCAB_FILE, TOKENIZER_FILE].find((f) => this.hasFile(commit, f));
  }

  async isComplete(commit: string): Promise<boolean> {
    if (!this.hasFile(commit, CONFIG_FILE) || this.vocabularyFile(commit) === undefined) return false;
    try {
      const weights = await this.weightFiles(commit);
      return weights !== undefined && weights.every((f) => this.hasFile(commit, f));
    } catch {
      return false; // an unreadable index: not something to serve from
    }
  }
}

/** The distinct shard files of a `model.safetensors.index.json`, in first-use order. */
export async function readShardNames(indexPath: string): Promise<string[]> {
  const raw = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: Record<string, unknown> };
  const map = raw.weight_map;
  if (typeof map !== 'object' || map === null) throw new Error(`${indexPath}: no "weight_map" object`);
  const names = new Set<string>();
  for (const shard of Object.values(map)) {
    // Shard names come from the network: no absolute paths or climbing out of the snapshot.
    if (typeof shard !== 'string' || path.isAbsolute(shard) || shard.split('/').some((p) => p === '..' || p === '' || p === '.')) {
      throw new Error(`${indexPath}: weight_map names ${JSON.stringify(shard)}, which is not a file in the repository`);
    }
    names.add(shard);
  }
  return [...names];
}
