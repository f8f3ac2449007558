// One blob into the cache: under its lock, into blobs/{etag}.incomplete (resumed with Range from
// whatever an earlier try left there), verified, then renamed into blobs/{etag}. Only the rename
// makes the blob visible, so no reader ever sees a half-written or unverified file.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, rename, stat, truncate, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { RepoCache } from './cache.js';
import { diskFullMessage, errnoCode, HubError, isDiskFull, isNetworkError } from './errors.js';
import { header, hubRequest } from './http.js';
import { withFileLock, type LockOptions } from './lock.js';
import { endpointHost, statusError, type FileMetadata, type HubTarget } from './metadata.js';

export type ProgressCallback = (file: string, bytes: number, total: number | undefined) => void;

export interface BlobJob {
  target: HubTarget;
  cache: RepoCache;
  meta: FileMetadata;
  onProgress?: ProgressCallback;
  lock?: LockOptions;
  /** Connection failures retried per file, resuming each time (huggingface_hub: 5). */
  retries?: number;
  retryDelayMs?: number;
}

const SHA256_RE = /^[0-9a-f]{64}$/;
const SHA1_RE = /^[0-9a-f]{40}$/;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

/** Makes blobs/{etag} exist; returns the bytes downloaded (0 when it already existed). */
export async function ensureBlob(job: BlobJob): Promise<number> {
  const { cache, meta, onProgress } = job;
  const blob = cache.blobPath(meta.etag);
  if (existsSync(blob)) return 0;
  const incomplete = cache.incompletePath(meta.etag);
  try {
    return await withFileLock(
      cache.lockPath(meta.etag),
      async () => (existsSync(blob) ? 0 : download(job)), // another process may have finished it meanwhile
      {
        ...job.lock,
        // While another process downloads, report its progress from the growing .incomplete file.
        onWait: async (waited) => {
          await job.lock?.onWait?.(waited);
          const size = (await stat(incomplete).catch(() => undefined))?.size;
          if (size !== undefined) onProgress?.(meta.file, size, meta.size);
        },
      },
    );
  } catch (err) {
    if (isDiskFull(err)) {
      throw new HubError('disk-full', job.target.label, diskFullMessage(job.target.label, meta.file, cache.cacheDir, errnoCode(err) ?? 'ENOSPC'));
    }
    throw err;
  }
}

/** A download in progress: what is on disk, its running sha256, and what this call fetched. */
interface Transfer {
  size: number;
  hash: Hash;
  fetched: number;
}

async function download(job: BlobJob): Promise<number> {
  const { cache, meta, target } = job;
  const incomplete = cache.incompletePath(meta.etag);
  await mkdir(path.dirname(incomplete), { recursive: true });
  const lfsSha256 = meta.lfs && SHA256_RE.test(meta.etag);
  const t: Transfer = { size: (await stat(incomplete).catch(() => undefined))?.size ?? 0, hash: createHash('sha256'), fetched: 0 };
  if (meta.size !== undefined && t.size > meta.size) {
    await truncate(incomplete, 0);
    t.size = 0;
  }
  if (t.size > 0 && lfsSha256) await hashFile(incomplete, t.hash); // the resumed bytes count too
  const retries = job.retries ?? 5;
  for (let attempt = 0; ; attempt++) {
    if (attempt === 0 && t.size > 0 && t.size === meta.size) break; // an earlier try got every byte
    try {
      await fetchInto(job, incomplete, t);
      if (meta.size !== undefined && t.size < meta.size) {
        throw Object.assign(new Error(`connection closed at byte ${t.size} of ${meta.size}`), { code: 'ECONNRESET' });
      }
      break;
    } catch (err) {
      if (!isNetworkError(err)) throw err;
      if (attempt >= retries) {
        const cause = [errnoCode(err), (err as Error).message].filter(Boolean).join(': ');
        throw new HubError(
          'network',
          target.label,
          `download of ${meta.file} from ${target.label} failed ${attempt + 1} times (${cause}); ${t.size} bytes are kept in ${incomplete} and the next try resumes from there`,
        );
      }
      // Like huggingface_hub's http_get: wait, then resume from what reached the disk (t.size:
      // the hash is updated only after each write, so it always covers exactly those bytes).
      await sleep((job.retryDelayMs ?? 1000) * (attempt + 1));
    }
  }
  await verify(job, incomplete, t.size, lfsSha256 ? t.hash.digest('hex') : undefined);
  await rename(incomplete, cache.blobPath(meta.etag));
  return t.fetched;
}

/** One GET from `t.size` on, appended to `incomplete` (or replacing it when the server ignores Range). */
async function fetchInto(job: BlobJob, incomplete: string, t: Transfer): Promise<void> {
  const { meta, target, onProgress } = job;
  const { env } = target;
  const from = t.size;
  const res = await hubRequest(meta.downloadUrl, {
    method: 'GET',
    headers: from > 0 ? { range: `bytes=${from}-` } : {},
    token: env.token,
    tokenHost: endpointHost(env),
    timeoutMs: env.downloadTimeoutMs,
    redirects: 'all',
  });
  const startOver = () => {
    t.size = 0;
    t.hash = createHash('sha256');
  };
  if (res.status === 200 && from > 0) {
    startOver(); // the server ignored Range: its body is the whole file
  } else if (res.status === 206) {
    const start = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '')?.[1];
    if (Number(start) !== from) {
      res.body.resume();
      await truncate(incomplete, 0);
      startOver();
      throw Object.assign(new Error(`server resumed at byte ${start ?? '?'} instead of ${from}`), { code: 'ECONNRESET' });
    }
  } else if (res.status !== 200) {
    res.body.resume();
    throw statusError(target, res, meta.file);
  }
  const handle = await open(incomplete, t.size === 0 ? 'w' : 'a');
  try {
    onProgress?.(meta.file, t.size, meta.size);
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      for (let off = 0; off < buf.length; ) off += (await handle.write(buf, off, buf.length - off)).bytesWritten;
      // Hashed and counted only once written, so they always describe exactly the bytes on disk.
      t.hash.update(buf);
      t.size += buf.length;
      t.fetched += buf.length;
      onProgress?.(meta.file, t.size, meta.size);
    }
  } catch (err) {
    res.body.destroy();
    throw err;
  } finally {
    await handle.close();
  }
}

/** Size, then sha256 (LFS) or git's blob sha1 (small files, etag = git object id). */
async function verify(job: BlobJob, incomplete: string, size: number, sha256: string | undefined): Promise<void> {
  const { meta, target } = job;
  let problem: string | undefined;
  if (meta.size !== undefined && size !== meta.size) {
    problem = `${size} bytes arrived but the hub announced ${meta.size}`;
  } else if (sha256 !== undefined && sha256 !== meta.etag) {
    problem = `its sha256 is ${sha256} but the hub's X-Linked-Etag says ${meta.etag}`;
  } else if (!meta.lfs && SHA1_RE.test(meta.etag)) {
    const git = createHash('sha1').update(`blob ${size}\0`);
    await hashFile(incomplete, git);
    const sha1 = git.digest('hex');
    if (sha1 !== meta.etag) problem = `its git blob sha1 is ${sha1} but the hub's ETag says ${meta.etag}`;
  }
  if (problem === undefined) return;
  await unlink(incomplete).catch(() => undefined);
  throw new HubError(
    'integrity',
    target.label,
    `download of ${meta.file} from ${target.label} is corrupt: ${problem}. The partial file was deleted; try again, and if it repeats the hub, a mirror or a proxy is serving bad bytes`,
  );
}
