// huggingface_hub's get_hf_file_metadata: a HEAD on /{repo}/resolve/{revision}/{file} that does
// not follow the redirect to the CDN, because that 302 is what carries the LFS file's sha256
// (X-Linked-Etag) and size (X-Linked-Size). Also the mapping of hub answers to HubErrors.
import type { HubEnv, RepoRef } from './env.js';
import { authMessage, HubError, networkMessage, notFoundMessage } from './errors.js';
import { discard, header, hubRequest, type HubResponse } from './http.js';

export interface FileMetadata {
  file: string;
  /** The commit the revision resolved to (X-Repo-Commit). */
  commit: string;
  /** X-Linked-Etag when present, else ETag; quotes and W/ removed. Names the blob. */
  etag: string;
  size?: number;
  /** Where to GET the bytes: the CDN Location for LFS files, else the resolve URL. */
  downloadUrl: string;
  /** True when the hub said the file is in LFS (X-Linked-Etag present). */
  lfs: boolean;
}

/** What a request needs to know about the repository it is for. */
export interface HubTarget {
  ref: RepoRef;
  env: HubEnv;
  /** `org/name[@rev]`, as the user wrote it: what messages name. */
  label: string;
}

export function resolveUrl(env: HubEnv, repoId: string, revision: string, file: string): string {
  // As hf_hub_url: the revision is quoted whole (refs/pr/1 → refs%2Fpr%2F1), the path per segment.
  const filePath = file.split('/').map(encodeURIComponent).join('/');
  return `${env.endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${filePath}`;
}

export function normalizeEtag(value: string | undefined): string | undefined {
  return value?.trim().replace(/^W\//, '').replace(/^"|"$/g, '') || undefined;
}

export function endpointHost(env: HubEnv): string {
  return new URL(env.endpoint).host;
}

/** A HubError for a hub answer that is not a success; `file` is what was asked for. */
export function statusError(target: HubTarget, res: HubResponse, file: string, probe = false): HubError {
  const { label, env, ref } = target;
  const code = header(res, 'x-error-code');
  const status = res.status;
  const hasToken = env.token !== undefined;
  if (code === 'GatedRepo' || ((status === 401 || status === 403) && code !== 'RepoNotFound')) {
    return new HubError('auth', label, authMessage(label, ref.repoId, env.endpoint, status, hasToken));
  }
  if (code === 'RepoNotFound' || (status === 404 && code === undefined && probe)) {
    return new HubError('not-found', label, notFoundMessage(label, env.endpoint, status, hasToken));
  }
  if (code === 'RevisionNotFound') {
    return new HubError('revision-not-found', label, `revision "${ref.revision}" of ${ref.repoId} does not exist on ${env.endpoint}: check the branch, tag or commit after "@"`);
  }
  if (status === 404) {
    return new HubError('entry-not-found', label, `${label} has no file ${file} (HTTP 404): an ESM-2 checkpoint needs config.json, vocab.txt and safetensors weights`);
  }
  if (status >= 500) {
    return new HubError('server', label, `${env.endpoint} answered HTTP ${status} for ${file} of ${label}: try again later (a cached copy is used if there is one; HF_HUB_OFFLINE=1 skips the hub)`);
  }
  return new HubError('server', label, `${env.endpoint} answered HTTP ${status} for ${file} of ${label} (unexpected)`);
}

/** Turns a failed connection into the network HubError (naming the endpoint and what to do). */
export function connectionError(target: HubTarget, err: unknown): HubError {
  if (err instanceof HubError) return err;
  const e = err as NodeJS.ErrnoException;
  const cause = [e.code, e.message].filter(Boolean).join(': ');
  const error = new HubError('network', target.label, networkMessage(target.label, target.env.endpoint, cause, target.env.cacheDir));
  error.cause = err;
  return error;
}

/**
 * HEAD of one file at `revision`. A first probe passes `probe` so that a bare 404 (no X-Error-Code,
 * as a plain mirror might send) reads as "repository not found" rather than "file not found".
 */
export async function headFile(target: HubTarget, revision: string, file: string, probe = false): Promise<FileMetadata> {
  const { env } = target;
  let res: HubResponse;
  try {
    res = await hubRequest(resolveUrl(env, target.ref.repoId, revision, file), {
      method: 'HEAD',
      token: env.token,
      tokenHost: endpointHost(env),
      timeoutMs: env.etagTimeoutMs,
      redirects: 'relative',
    });
  } catch (err) {
    throw connectionError(target, err);
  }
  discard(res);
  if (res.status >= 400) {
    const err = statusError(target, res, file, probe);
    if (err.kind === 'entry-not-found') err.commit = header(res, 'x-repo-commit');
    throw err;
  }
  const commit = header(res, 'x-repo-commit');
  const etag = normalizeEtag(header(res, 'x-linked-etag') ?? header(res, 'etag'));
  if (!commit || !etag) {
    throw new HubError(
      'not-a-hub',
      target.label,
      `${env.endpoint} answered ${file} of ${target.label} without ${commit ? 'an ETag' : 'X-Repo-Commit'}: it does not look like a HuggingFace hub (check HF_ENDPOINT and any proxy in between)`,
    );
  }
  const sizeText = header(res, 'x-linked-size') ?? header(res, 'content-length');
  const size = sizeText !== undefined && /^\d+$/.test(sizeText) ? Number(sizeText) : undefined;
  const location = header(res, 'location');
  return {
    file,
    commit,
    etag,
    ...(size !== undefined ? { size } : {}),
    downloadUrl: location ? new URL(location, res.url).toString() : res.url,
    lfs: header(res, 'x-linked-etag') !== undefined,
  };
}
