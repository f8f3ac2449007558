// Hub failures, each a one-line message naming the repository and what to do about it: they end
// up as the server's fatal start-up line or the CLI's `esm2:` line.

export type HubErrorKind =
  | 'bad-repo-id'
  | 'config'
  | 'not-found'
  | 'revision-not-found'
  | 'entry-not-found'
  | 'auth'
  | 'offline'
  | 'network'
  | 'server'
  | 'not-a-hub'
  | 'disk-full'
  | 'integrity'
  | 'no-safetensors';

export class HubError extends Error {
  /** entry-not-found: the commit the hub named in its 404 (for the .no_exist marker). */
  commit?: string;

  constructor(
    readonly kind: HubErrorKind,
    /** The repository (org/name[@revision]) concerned, '' when none. */
    readonly repo: string,
    message: string,
  ) {
    super(message.replace(/\s*\n\s*/g, ' '));
    this.name = 'HubError';
  }
}

/** Errno codes of a connection that could not be made or broke: worth a retry or the cache. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'ENETDOWN', 'EHOSTDOWN', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET', 'EPROTO',
  'CERT_HAS_EXPIRED', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
]);

export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isNetworkError(err: unknown): boolean {
  if (err instanceof HubError) return err.kind === 'network';
  return NETWORK_CODES.has(errnoCode(err) ?? '');
}

export function isDiskFull(err: unknown): boolean {
  return ['ENOSPC', 'EDQUOT'].includes(errnoCode(err) ?? '');
}

export const TOKEN_URL = 'https://huggingface.co/settings/tokens';

export function notFoundMessage(repo: string, endpoint: string, status: number, hasToken: boolean): string {
  const privateHint = hasToken
    ? 'HF_TOKEN is set, so either the id is wrong or that token cannot read this repository'
    : `a private repository also needs HF_TOKEN set to a token that can read it (${TOKEN_URL})`;
  return `repository ${repo} was not found on ${endpoint} (HTTP ${status}): check the id (org/name, e.g. facebook/esm2_t6_8M_UR50D); ${privateHint}`;
}

export function authMessage(repo: string, repoId: string, endpoint: string, status: number, hasToken: boolean): string {
  const what = hasToken ? 'the token in HF_TOKEN has no access to it' : 'no HF_TOKEN is set';
  return (
    `repository ${repo} is gated or private and ${what} (HTTP ${status}): ` +
    `set HF_TOKEN to a read token from ${TOKEN_URL} and accept the model's license on ${endpoint}/${repoId}`
  );
}

export function networkMessage(repo: string, endpoint: string, cause: string, cacheDir: string): string {
  return (
    `cannot reach ${endpoint} to fetch ${repo} (${cause}) and it is not in the cache ${cacheDir}: ` +
    `check the network, proxy or HF_ENDPOINT; or run \`esm2 pull ${repo}\` where there is network and share that cache ` +
    `(HF_HUB_CACHE), then start with HF_HUB_OFFLINE=1`
  );
}

export function offlineMessage(repo: string, cacheDir: string, detail: string): string {
  return (
    `HF_HUB_OFFLINE is set and ${repo} is not in the cache ${cacheDir} (${detail}): ` +
    `run \`esm2 pull ${repo}\` while online (with the same HF_HUB_CACHE or HF_HOME), or unset HF_HUB_OFFLINE`
  );
}

export function diskFullMessage(repo: string, file: string, cacheDir: string, code: string): string {
  return (
    `disk full (${code}) while downloading ${file} of ${repo} into ${cacheDir}: free space there or set HF_HUB_CACHE ` +
    `to a larger volume; the partial download is kept and resumes on the next try`
  );
}

export function noSafetensorsMessage(repo: string): string {
  return (
    `repository ${repo} has weights only as pytorch_model.bin; this server reads safetensors only ` +
    `(pickled .bin files can run code when loaded). Convert in Python: ` +
    `AutoModelForMaskedLM.from_pretrained("<repo>").save_pretrained("<dir>", safe_serialization=True), ` +
    `then set MODEL_NAME=<dir> (or use the hub's safetensors conversion bot to open a PR with model.safetensors)`
  );
}
