// The HuggingFace hub client: pull a repository into the huggingface_hub cache, resolve MODEL_NAME.
export { DEFAULT_ENDPOINT, DEFAULT_MODEL_REPO, defaultHubCacheDir, formatRepoRef, hubEnv, looksLikeRepoId, parseRepoRef, type HubEnv, type RepoRef } from './env.js';
export { HubError, type HubErrorKind } from './errors.js';
export { RepoCache } from './cache.js';
export { pullModel, findCachedSnapshot, type PulledModel, type PullOptions } from './pull.js';
export type { ProgressCallback } from './download.js';
export { resolveModel, progressLogger, DEFAULT_MODEL_TIMEOUT_MS, type ModelLog, type ResolvedModel, type ResolveOptions } from './resolve.js';
