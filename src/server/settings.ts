// The service's settings, from the environment. Names and defaults of the FastAPI service it
// descends from are kept; a bad value stops start-up with one line naming the variable, the
// value and what is expected. SETTINGS_DOCS is the one description of them, for README and
// GET /v1/models.
import { DEVICES_GRAMMAR, DevicesSpecError, parseDevicesSpec } from '../engine/detect.js';
import { HUB_SETTINGS_DOCS, LOG_LEVELS, SETTINGS_DOCS, TRACING_SETTINGS_DOCS, type LogLevel, type SettingDoc } from './settings-docs.js';

export { HUB_SETTINGS_DOCS, LOG_LEVELS, SETTINGS_DOCS, TRACING_SETTINGS_DOCS, type LogLevel, type SettingDoc };

export const PRECISIONS = ['auto', 'fp32', 'fp16', 'int8'] as const;
export type PrecisionSetting = (typeof PRECISIONS)[number];
export const DISTRIBUTION_STRATEGIES = ['balanced', 'contiguous'] as const;
export type DistributionStrategy = (typeof DISTRIBUTION_STRATEGIES)[number];

export interface Settings {
  /** A local checkpoint directory or a hub repository id, or a comma list of them (an ensemble: parseModelNames), as given; undefined: the default model (see model/hub/resolve.ts). */
  modelName?: string;
  host: string;
  port: number;
  /** The gRPC port (server/grpc/), on HOST; undefined: no gRPC server. 0 picks a free one. */
  grpcPort?: number;
  logLevel: LogLevel;
  /** '*' for any origin, else the allowed origins (empty: no cross-origin access). */
  corsOrigins: '*' | string[];
  /** Sequences per request. */
  maxBatchSize: number;
  /** Residues per sequence (cls and eos not counted). */
  maxSequenceLength: number;
  batchQueueEnabled: boolean;
  batchQueueMaxWaitMs: number;
  batchQueueWaitWhenIdle: boolean;
  /** Sequences per engine batch. */
  batchQueueMaxSize: number;
  /** A DEVICES spec (validated; resolved to replicas by engine/detect.ts). */
  devices: string;
  precision: PrecisionSetting;
  /** Padded tokens (cls and eos included) per engine batch. */
  maxBatchTokens: number;
  distributionStrategy: DistributionStrategy;
  maxQueuedTokens: number;
  requestTimeoutMs: number;
  bodyLimitBytes: number;
  /** Admission by cost (tasks/cost.ts): tokens of inference one request may need. */
  maxRequestTokens: number;
  /** Bytes of results the server may hold for one request. */
  maxRequestResultBytes: number;
  /** Bytes of results the server holds for all requests in flight at once. */
  maxResultBytesInFlight: number;
  /** Largest JSON response (about 20 bytes a number); past it, safetensors. */
  maxJsonResponseBytes: number;
  /** A batch's estimated replica memory bound (contact maps grow with length²). */
  maxBatchMemoryBytes: number;
  /** Longest a batch should run once the replicas' rate is measured (fewer tokens per batch on slow replicas). */
  maxBatchMs: number;
  /** Request body bytes held at once, all requests together; a body that does not fit what is left gets 503 server_busy. At least bodyLimitBytes. */
  maxBodyBytesInFlight: number;
  /** When set, every route but health, readiness, metrics and the web page's files needs `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** A replica batch running longer than this is killed and retried elsewhere. */
  replicaRunTimeoutMs: number;
  /** A replica whose heartbeat goes unanswered this long (stopped, frozen) is killed and restarted. */
  replicaHangTimeoutMs: number;
  /** A client must have sent its whole request (headers and body) within this (408 and closed otherwise). */
  clientTimeoutMs: number;
  /** Open client connections in all; a socket past it is closed at once. */
  maxConnections: number;
  /** Open client connections per client address; a socket past it is closed at once. 0: no cap. */
  maxConnectionsPerAddress: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** A response whose body makes no write progress (its unsent data stays unsent) for this long has its connection destroyed. */
  responseWriteTimeoutMs: number;
  /** Requests per minute per API key (or per client address without one); 0: no limit. */
  rateLimitPerMinute: number;
  /** A YAML or JSON file of API keys with names, tiers and rate limits (server/api-keys.ts); reread on SIGHUP. */
  apiKeysFile?: string;
  /** Failed authentications per client address a minute before it gets 429 without its key being checked; 0: no throttle. */
  authFailuresPerMinute: number;
  /** Longest a lower tier's work waits behind a higher tier's before it goes first (the scheduler's priorityMaxWaitMs). */
  tierMaxWaitMs: number;
  /** Longest a SIGTERM drain may take before what still waits is answered 503 and the process exits (code 1). */
  shutdownTimeoutMs: number;
  /** false: start-up fails rather than serve the built-in random-weight demo checkpoint. */
  allowDemoModel: boolean;
  /** false: start-up fails when a GPU replica would fall back to CPU. */
  allowCpuFallback: boolean;
}

export class SettingsError extends Error {
  constructor(
    readonly variable: string,
    value: string,
    expected: string,
  ) {
    super(`${variable}=${JSON.stringify(value)} is invalid: expected ${expected}`);
    this.name = 'SettingsError';
  }
}

/** The default of a variable as SETTINGS_DOCS states it (undefined for "unset"). */
function defaultOf(variable: string): string | undefined {
  const value = SETTINGS_DOCS.find((d) => d.variable === variable)?.default;
  return value === 'unset' ? undefined : value;
}

/** Reads and checks every setting; throws a SettingsError for the first bad one. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const read = (variable: string): string => env[variable] ?? defaultOf(variable) ?? '';
  const int = (variable: string, min: number, max = Number.MAX_SAFE_INTEGER) => readInteger(variable, read(variable), min, max);
  const maxSequenceLength = int('MAX_SEQUENCE_LENGTH', 1);
  const maxBatchTokens = int('MAX_BATCH_TOKENS', 1);
  // A batch must hold at least one sequence of the longest allowed length, plus cls and eos.
  if (maxBatchTokens < maxSequenceLength + 2) {
    throw new SettingsError(
      'MAX_BATCH_TOKENS',
      String(maxBatchTokens),
      `at least MAX_SEQUENCE_LENGTH + 2 = ${maxSequenceLength + 2} (MAX_SEQUENCE_LENGTH is ${maxSequenceLength}), so that the longest sequence fits one batch`,
    );
  }
  const bodyLimitBytes = int('BODY_LIMIT_BYTES', 1024);
  const maxBodyBytesInFlight = int('MAX_BODY_BYTES_IN_FLIGHT', 1024);
  // A body of the largest allowed size must be able to fit the budget, else it could never be read.
  if (maxBodyBytesInFlight < bodyLimitBytes) {
    throw new SettingsError(
      'MAX_BODY_BYTES_IN_FLIGHT',
      String(maxBodyBytesInFlight),
      `at least BODY_LIMIT_BYTES = ${bodyLimitBytes}, so that a body of the largest allowed size fits the budget`,
    );
  }
  if (env.MODEL_NAME !== undefined && env.MODEL_NAME.trim() !== '') parseModelNames(env.MODEL_NAME);
  const host = read('HOST').trim();
  if (!host) throw new SettingsError('HOST', read('HOST'), 'an address to listen on, e.g. 0.0.0.0');
  return {
    ...optional(env.MODEL_NAME, 'modelName'),
    host,
    port: int('PORT', 0, 65535),
    ...(env.GRPC_PORT === undefined || env.GRPC_PORT.trim() === '' ? {} : { grpcPort: readInteger('GRPC_PORT', env.GRPC_PORT, 0, 65535) }),
    logLevel: readChoice('LOG_LEVEL', read('LOG_LEVEL'), LOG_LEVELS),
    corsOrigins: readOrigins(read('CORS_ORIGINS')),
    maxBatchSize: int('MAX_BATCH_SIZE', 1),
    maxSequenceLength,
    batchQueueEnabled: readBoolean('BATCH_QUEUE_ENABLED', read('BATCH_QUEUE_ENABLED')),
    batchQueueMaxWaitMs: int('BATCH_QUEUE_MAX_WAIT_MS', 0),
    batchQueueWaitWhenIdle: readBoolean('BATCH_QUEUE_WAIT_WHEN_IDLE', read('BATCH_QUEUE_WAIT_WHEN_IDLE')),
    batchQueueMaxSize: int('BATCH_QUEUE_MAX_SIZE', 1),
    devices: readDevices(read('DEVICES')),
    precision: readChoice('PRECISION', read('PRECISION'), PRECISIONS),
    maxBatchTokens,
    distributionStrategy: readChoice('DISTRIBUTION_STRATEGY', read('DISTRIBUTION_STRATEGY'), DISTRIBUTION_STRATEGIES),
    maxQueuedTokens: int('MAX_QUEUED_TOKENS', 1),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 1),
    maxRequestTokens: int('MAX_REQUEST_TOKENS', 1),
    maxRequestResultBytes: int('MAX_REQUEST_RESULT_BYTES', 1),
    maxResultBytesInFlight: int('MAX_RESULT_BYTES_IN_FLIGHT', 1),
    maxJsonResponseBytes: int('MAX_JSON_RESPONSE_BYTES', 1),
    maxBatchMemoryBytes: int('MAX_BATCH_MEMORY_BYTES', 1),
    maxBatchMs: int('MAX_BATCH_MS', 1),
    bodyLimitBytes,
    maxBodyBytesInFlight,
    ...optional(env.API_KEY, 'apiKey'),
    replicaRunTimeoutMs: int('REPLICA_RUN_TIMEOUT_MS', 1),
    replicaHangTimeoutMs: int('REPLICA_HANG_TIMEOUT_MS', 100),
    clientTimeoutMs: int('CLIENT_TIMEOUT_MS', 100),
    rateLimitPerMinute: int('RATE_LIMIT_PER_MINUTE', 0),
    ...optional(env.API_KEYS_FILE, 'apiKeysFile'),
    authFailuresPerMinute: int('AUTH_FAILURES_PER_MINUTE', 0),
    tierMaxWaitMs: int('TIER_MAX_WAIT_MS', 0),
    maxConnections: int('MAX_CONNECTIONS', 1),
    maxConnectionsPerAddress: int('MAX_CONNECTIONS_PER_ADDRESS', 0),
    keepAliveTimeoutMs: int('KEEP_ALIVE_TIMEOUT_MS', 1),
    responseWriteTimeoutMs: int('RESPONSE_WRITE_TIMEOUT_MS', 1),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 1),
    allowDemoModel: readBoolean('ALLOW_DEMO_MODEL', read('ALLOW_DEMO_MODEL')),
    allowCpuFallback: readBoolean('ALLOW_CPU_FALLBACK', read('ALLOW_CPU_FALLBACK')),
  };
}

/**
 * The checkpoints MODEL_NAME names: one name as given, or a comma list (an ensemble), each item
 * trimmed. An empty item or one named twice is a SettingsError naming MODEL_NAME.
 */
export function parseModelNames(raw: string): string[] {
  if (!raw.includes(',')) return [raw];
  const names = raw.split(',').map((n) => n.trim());
  if (names.some((n) => n === '')) throw new SettingsError('MODEL_NAME', raw, 'a checkpoint, or a comma list of checkpoints (an ensemble) without empty items');
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new SettingsError('MODEL_NAME', raw, `a comma list of distinct checkpoints (an ensemble): "${twice}" is named twice`);
  return names;
}

/** An optional string setting: unset and empty both mean "not given" (compose files set empties). */
function optional<K extends 'modelName' | 'apiKey' | 'apiKeysFile'>(value: string | undefined, key: K): Partial<Record<K, string>> {
  return value === undefined || value.trim() === '' ? {} : ({ [key]: value } as Partial<Record<K, string>>);
}

/** Plain decimal integers only: "12abc", "1e3", "0x10", "1.5" and "" are mistakes, not numbers. */
function readInteger(variable: string, raw: string, min: number, max: number): number {
  const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
  const text = raw.trim();
  const value = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SettingsError(variable, raw, `a whole number ${range}`);
  }
  return value;
}

function readChoice<T extends string>(variable: string, raw: string, choices: readonly T[]): T {
  const value = raw.trim().toLowerCase();
  if (!(choices as readonly string[]).includes(value)) throw new SettingsError(variable, raw, `one of ${choices.join(', ')}`);
  return value as T;
}

function readBoolean(variable: string, raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(value)) return true;
  if (['false', '0', 'no'].includes(value)) return false;
  throw new SettingsError(variable, raw, 'true or false (also 1/0, yes/no)');
}

function readOrigins(raw: string): '*' | string[] {
  const origins = raw.split(',').map((o) => o.trim()).filter((o) => o !== '');
  if (origins.includes('*')) {
    if (origins.length > 1) throw new SettingsError('CORS_ORIGINS', raw, '`*` alone or a comma list of origins');
    return '*';
  }
  return origins;
}

function readDevices(raw: string): string {
  try {
    parseDevicesSpec(raw);
  } catch (err) {
    if (err instanceof DevicesSpecError) throw new SettingsError('DEVICES', raw, `${DEVICES_GRAMMAR} (${err.why})`);
    throw err;
  }
  return raw.trim();
}

/** The settings as variables and values, for GET /v1/models; the API key is never shown. */
export function settingsInForce(settings: Settings): Record<string, string | number | boolean | string[] | null> {
  return {
    MODEL_NAME: settings.modelName ?? null,
    HOST: settings.host,
    PORT: settings.port,
    GRPC_PORT: settings.grpcPort ?? null,
    LOG_LEVEL: settings.logLevel,
    CORS_ORIGINS: settings.corsOrigins,
    MAX_BATCH_SIZE: settings.maxBatchSize,
    MAX_SEQUENCE_LENGTH: settings.maxSequenceLength,
    BATCH_QUEUE_ENABLED: settings.batchQueueEnabled,
    BATCH_QUEUE_MAX_WAIT_MS: settings.batchQueueMaxWaitMs,
    BATCH_QUEUE_WAIT_WHEN_IDLE: settings.batchQueueWaitWhenIdle,
    BATCH_QUEUE_MAX_SIZE: settings.batchQueueMaxSize,
    DEVICES: settings.devices,
    PRECISION: settings.precision,
    MAX_BATCH_TOKENS: settings.maxBatchTokens,
    DISTRIBUTION_STRATEGY: settings.distributionStrategy,
    MAX_QUEUED_TOKENS: settings.maxQueuedTokens,
    REQUEST_TIMEOUT_MS: settings.requestTimeoutMs,
    BODY_LIMIT_BYTES: settings.bodyLimitBytes,
    MAX_REQUEST_TOKENS: settings.maxRequestTokens,
    MAX_REQUEST_RESULT_BYTES: settings.maxRequestResultBytes,
    MAX_RESULT_BYTES_IN_FLIGHT: settings.maxResultBytesInFlight,
    MAX_JSON_RESPONSE_BYTES: settings.maxJsonResponseBytes,
    MAX_BATCH_MEMORY_BYTES: settings.maxBatchMemoryBytes,
    MAX_BATCH_MS: settings.maxBatchMs,
    MAX_BODY_BYTES_IN_FLIGHT: settings.maxBodyBytesInFlight,
    API_KEY: settings.apiKey === undefined ? 'unset' : 'set',
    RATE_LIMIT_PER_MINUTE: settings.rateLimitPerMinute,
    API_KEYS_FILE: settings.apiKeysFile ?? null,
    AUTH_FAILURES_PER_MINUTE: settings.authFailuresPerMinute,
    TIER_MAX_WAIT_MS: settings.tierMaxWaitMs,
    REPLICA_RUN_TIMEOUT_MS: settings.replicaRunTimeoutMs,
    REPLICA_HANG_TIMEOUT_MS: settings.replicaHangTimeoutMs,
    CLIENT_TIMEOUT_MS: settings.clientTimeoutMs,
    MAX_CONNECTIONS: settings.maxConnections,
    MAX_CONNECTIONS_PER_ADDRESS: settings.maxConnectionsPerAddress,
    KEEP_ALIVE_TIMEOUT_MS: settings.keepAliveTimeoutMs,
    RESPONSE_WRITE_TIMEOUT_MS: settings.responseWriteTimeoutMs,
    ALLOW_DEMO_MODEL: settings.allowDemoModel,
    ALLOW_CPU_FALLBACK: settings.allowCpuFallback,
    SHUTDOWN_TIMEOUT_MS: settings.shutdownTimeoutMs,
  };
}

/** SETTINGS_DOCS, HUB_SETTINGS_DOCS and TRACING_SETTINGS_DOCS as the Markdown table of README.md's "Settings" section (a test keeps them equal). */
export function settingsMarkdownTable(): string {
  const rows = [...SETTINGS_DOCS, ...HUB_SETTINGS_DOCS, ...TRACING_SETTINGS_DOCS].map((d) => `| \`${d.variable}\` | ${d.default === 'unset' ? 'unset' : `\`${d.default}\``} | ${d.description} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
