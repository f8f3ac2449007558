// Repository ids and the HF_* environment, read the way Python's huggingface_hub reads them
// (constants.py), so one cache and one configuration serve both.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { HubError } from './errors.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
/** What the server serves when MODEL_NAME is unset (31 MB). */
export const DEFAULT_MODEL_REPO = 'facebook/esm2_t6_8M_UR50D';
export const DEFAULT_REVISION = 'main';
export const COMMIT_RE = /^[0-9a-f]{40}$/;

export interface RepoRef {
  /** `org/name` */
  repoId: string;
  /** Branch, tag or 40-hex commit; `main` by default. */
  revision: string;
}

// huggingface_hub's validate_repo_id, narrowed to `org/name` (bare legacy names are redirects now).
const REPO_ID_RE = /^[\w.-]+\/[\w.-]{1,96}$/;

/** True when `spec` has the shape `org/name[@revision]` (whether or not such a repo exists). */
export function looksLikeRepoId(spec: string): boolean {
  const at = spec.indexOf('@');
  const id = at < 0 ? spec : spec.slice(0, at);
  return REPO_ID_RE.test(id) && !id.includes('--') && !id.includes('..') && !id.endsWith('.git') && (at < 0 || at < spec.length - 1);
}

/** `org/name@rev` → { repoId, revision }; throws HubError for anything else. */
export function parseRepoRef(spec: string): RepoRef {
  const text = spec.trim();
  if (!looksLikeRepoId(text)) {
    throw new HubError('bad-repo-id', text, `"${text}" is not a HuggingFace hub repository id: expected org/name or org/name@revision (e.g. ${DEFAULT_MODEL_REPO})`);
  }
  const at = text.indexOf('@');
  return at < 0 ? { repoId: text, revision: DEFAULT_REVISION } : { repoId: text.slice(0, at), revision: text.slice(at + 1) };
}

export function formatRepoRef(ref: RepoRef): string {
  return ref.revision === DEFAULT_REVISION ? ref.repoId : `${ref.repoId}@${ref.revision}`;
}

export interface HubEnv {
  /** Without a trailing slash. */
  endpoint: string;
  token?: string;
  /** The hub cache (the folder holding `models--org--name`). */
  cacheDir: string;
  offline: boolean;
  /** Until the answer to a metadata HEAD has arrived (HF_HUB_ETAG_TIMEOUT, seconds, default 10). */
  etagTimeoutMs: number;
  /** Connecting, and between two chunks of a download (HF_HUB_DOWNLOAD_TIMEOUT, default 10). */
  downloadTimeoutMs: number;
}

/** huggingface_hub's `_is_true`. */
export function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(value.trim().toUpperCase());
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(homedir(), p.slice(1)) : p;
}

function seconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback * 1000;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new HubError('config', '', `${name}=${JSON.stringify(raw)} is invalid: expected a number of seconds > 0`);
  return value * 1000;
}

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  return expandHome(env.HF_HOME || path.join(env.XDG_CACHE_HOME || '~/.cache', 'huggingface'));
}

/** $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE (legacy), else $HF_HOME/hub. */
export function defaultHubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return expandHome(env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || path.join(hfHome(env), 'hub'));
}

/**
 * HF_TOKEN (or the legacy HUGGING_FACE_HUB_TOKEN), else the file `huggingface-cli login` writes
 * ($HF_TOKEN_PATH, default $HF_HOME/token), so a machine logged in for Python works here too.
 */
function readToken(env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = (env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN)?.trim();
  if (fromEnv) return fromEnv;
  const file = expandHome(env.HF_TOKEN_PATH || path.join(hfHome(env), 'token'));
  if (!existsSync(file)) return undefined;
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function hubEnv(env: NodeJS.ProcessEnv = process.env): HubEnv {
  const token = readToken(env);
  return {
    endpoint: (env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    ...(token ? { token } : {}),
    cacheDir: defaultHubCacheDir(env),
    offline: isTrue(env.HF_HUB_OFFLINE || env.TRANSFORMERS_OFFLINE),
    etagTimeoutMs: seconds(env, 'HF_HUB_ETAG_TIMEOUT', 10),
    downloadTimeoutMs: seconds(env, 'HF_HUB_DOWNLOAD_TIMEOUT', 10),
  };
}
