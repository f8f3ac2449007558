// Settings from the environment: defaults, one-line errors naming the variable for every bad value,
// the MAX_BATCH_TOKENS / MAX_SEQUENCE_LENGTH rule, API key redaction, README kept in step.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSettings, SETTINGS_DOCS, SettingsError, settingsInForce, settingsMarkdownTable } from '../src/server/settings.js';
import { repoRoot } from './helpers/paths.js';

test('defaults are those of the FastAPI service, plus the new settings', () => {
  assert.deepEqual(loadSettings({}), {
    host: '0.0.0.0',
    port: 8000,
    logLevel: 'info',
    corsOrigins: '*',
    maxBatchSize: 64,
    maxSequenceLength: 1022,
    batchQueueEnabled: true,
    batchQueueMaxWaitMs: 50,
    batchQueueWaitWhenIdle: false,
    batchQueueMaxSize: 64,
    devices: 'auto',
    precision: 'auto',
    maxBatchTokens: 4096,
    distributionStrategy: 'balanced',
    maxQueuedTokens: 262144,
    requestTimeoutMs: 120000,
    bodyLimitBytes: 10485760,
    maxRequestTokens: 8388608,
    maxRequestResultBytes: 536870912,
    maxResultBytesInFlight: 1073741824,
    maxJsonResponseBytes: 268435456,
    maxBatchMemoryBytes: 2147483648,
    maxBatchMs: 1000,
    maxBodyBytesInFlight: 268435456,
    replicaRunTimeoutMs: 600000,
    replicaHangTimeoutMs: 10000,
    clientTimeoutMs: 30000,
    rateLimitPerMinute: 0,
    authFailuresPerMinute: 20,
    tierMaxWaitMs: 2000,
    maxConnections: 4096,
    maxConnectionsPerAddress: 256,
    keepAliveTimeoutMs: 5000,
    responseWriteTimeoutMs: 30000,
    shutdownTimeoutMs: 130000,
    allowDemoModel: true,
    allowCpuFallback: true,
  });
  // GRPC_PORT unset (the default): no gRPC server, no grpcPort.
  assert.equal(loadSettings({}).grpcPort, undefined);
});

test('values are read, case-insensitively where they are words', () => {
  const settings = loadSettings({
    MODEL_NAME: './models/esm2_t6',
    HOST: '127.0.0.1',
    PORT: '0',
    GRPC_PORT: '50051',
    LOG_LEVEL: 'DEBUG',
    CORS_ORIGINS: 'https://a.example, https://b.example',
    MAX_BATCH_SIZE: '8',
    MAX_SEQUENCE_LENGTH: '100',
    BATCH_QUEUE_ENABLED: 'No',
    BATCH_QUEUE_MAX_WAIT_MS: '0',
    BATCH_QUEUE_MAX_SIZE: '16',
    DEVICES: 'cpu:2',
    PRECISION: 'FP16',
    MAX_BATCH_TOKENS: '102',
    DISTRIBUTION_STRATEGY: 'Contiguous',
    MAX_QUEUED_TOKENS: '1000',
    REQUEST_TIMEOUT_MS: '5000',
    BODY_LIMIT_BYTES: '1024',
    API_KEY: 'secret',
    RATE_LIMIT_PER_MINUTE: '600',
    REPLICA_RUN_TIMEOUT_MS: '2000',
    CLIENT_TIMEOUT_MS: '5000',
    MAX_CONNECTIONS: '100',
    MAX_CONNECTIONS_PER_ADDRESS: '0',
    KEEP_ALIVE_TIMEOUT_MS: '65000',
    RESPONSE_WRITE_TIMEOUT_MS: '1500',
    SHUTDOWN_TIMEOUT_MS: '10000',
  });
  assert.equal(settings.modelName, './models/esm2_t6');
  assert.equal(settings.port, 0);
  assert.equal(settings.grpcPort, 50051);
  assert.equal(loadSettings({ GRPC_PORT: '0' }).grpcPort, 0);
  assert.equal(loadSettings({ GRPC_PORT: ' ' }).grpcPort, undefined);
  assert.equal(settings.logLevel, 'debug');
  assert.deepEqual(settings.corsOrigins, ['https://a.example', 'https://b.example']);
  assert.equal(settings.batchQueueEnabled, false);
  assert.equal(settings.devices, 'cpu:2');
  assert.equal(settings.precision, 'fp16');
  assert.equal(settings.maxBatchTokens, 102);
  assert.equal(settings.distributionStrategy, 'contiguous');
  assert.equal(settings.apiKey, 'secret');
  assert.equal(settings.rateLimitPerMinute, 600);
  assert.equal(settings.replicaRunTimeoutMs, 2000);
  assert.equal(settings.clientTimeoutMs, 5000);
  assert.equal(settings.shutdownTimeoutMs, 10000);
  assert.equal(settings.maxConnections, 100);
  assert.equal(settings.maxConnectionsPerAddress, 0);
  assert.equal(settings.keepAliveTimeoutMs, 65000);
  assert.equal(settings.responseWriteTimeoutMs, 1500);
  assert.equal(loadSettings({}).responseWriteTimeoutMs, 30000);
  for (const [value, expected] of [['1', true], ['YES', true], ['True', true], ['0', false], ['FALSE', false]] as const) {
    assert.equal(loadSettings({ BATCH_QUEUE_ENABLED: value }).batchQueueEnabled, expected, value);
  }
  assert.deepEqual(loadSettings({ CORS_ORIGINS: '' }).corsOrigins, []);
});

test('empty MODEL_NAME and API_KEY mean unset', () => {
  const settings = loadSettings({ MODEL_NAME: '', API_KEY: '' });
  assert.equal(settings.modelName, undefined);
  assert.equal(settings.apiKey, undefined);
});

const BAD_VALUES: Record<string, string[]> = {
  HOST: [''],
  PORT: ['65536', '-1', '80.5', 'http', ''],
  GRPC_PORT: ['65536', '-1', 'grpc'],
  LOG_LEVEL: ['verbose', ''],
  CORS_ORIGINS: ['*,https://a.example'],
  MAX_BATCH_SIZE: ['0', '12abc', '1e3', '0x10', ''],
  MAX_SEQUENCE_LENGTH: ['0', 'long'],
  BATCH_QUEUE_ENABLED: ['maybe', ''],
  BATCH_QUEUE_MAX_WAIT_MS: ['-1', '5ms'],
  BATCH_QUEUE_MAX_SIZE: ['0', ' '],
  DEVICES: ['gpu', 'cpu:0', 'cuda:0,,1', ''],
  PRECISION: ['bf16', 'int4'],
  MAX_BATCH_TOKENS: ['0', 'lots', '99999999999999999999'],
  DISTRIBUTION_STRATEGY: ['random'],
  MAX_QUEUED_TOKENS: ['0', '1.0'],
  REQUEST_TIMEOUT_MS: ['0', '2m'],
  BODY_LIMIT_BYTES: ['1023', '10MB'],
  RATE_LIMIT_PER_MINUTE: ['-1', '10/s', ''],
  REPLICA_RUN_TIMEOUT_MS: ['0', '1m'],
  REPLICA_HANG_TIMEOUT_MS: ['99', '10s'],
  CLIENT_TIMEOUT_MS: ['99', '30s'],
  SHUTDOWN_TIMEOUT_MS: ['0', 'never'],
  MAX_CONNECTIONS: ['0', '-1', '4k', ''],
  MAX_CONNECTIONS_PER_ADDRESS: ['-1', 'many'],
  KEEP_ALIVE_TIMEOUT_MS: ['0', '5s'],
  RESPONSE_WRITE_TIMEOUT_MS: ['0', '-1', '30s', ''],
  ALLOW_DEMO_MODEL: ['maybe', ''],
  ALLOW_CPU_FALLBACK: ['2', 'off'],
};

test('every bad value stops loading with one line naming the variable and the value', () => {
  for (const [variable, values] of Object.entries(BAD_VALUES)) {
    for (const value of values) {
      assert.throws(
        () => loadSettings({ [variable]: value }),
        (err: unknown) => {
          assert.ok(err instanceof SettingsError, `${variable}=${value}: ${String(err)}`);
          assert.equal(err.variable, variable);
          assert.ok(err.message.startsWith(`${variable}=${JSON.stringify(value)} is invalid: expected `), err.message);
          assert.ok(!err.message.includes('\n'), err.message);
          return true;
        },
        `${variable}=${JSON.stringify(value)}`,
      );
    }
  }
});

test('MAX_BODY_BYTES_IN_FLIGHT must hold a body of BODY_LIMIT_BYTES', () => {
  assert.equal(loadSettings({ BODY_LIMIT_BYTES: '4096', MAX_BODY_BYTES_IN_FLIGHT: '4096' }).maxBodyBytesInFlight, 4096);
  assert.throws(
    () => loadSettings({ BODY_LIMIT_BYTES: '4096', MAX_BODY_BYTES_IN_FLIGHT: '4095' }),
    (err: unknown) => err instanceof SettingsError && err.variable === 'MAX_BODY_BYTES_IN_FLIGHT' && /at least BODY_LIMIT_BYTES = 4096/.test(err.message),
  );
  assert.throws(() => loadSettings({ MAX_BODY_BYTES_IN_FLIGHT: '1e9' }), /MAX_BODY_BYTES_IN_FLIGHT="1e9" is invalid/);
});

test('MAX_BATCH_TOKENS must hold the longest sequence plus cls and eos', () => {
  assert.equal(loadSettings({ MAX_SEQUENCE_LENGTH: '2000', MAX_BATCH_TOKENS: '2002' }).maxBatchTokens, 2002);
  assert.throws(
    () => loadSettings({ MAX_SEQUENCE_LENGTH: '2000', MAX_BATCH_TOKENS: '2001' }),
    (err: unknown) =>
      err instanceof SettingsError &&
      err.variable === 'MAX_BATCH_TOKENS' &&
      /MAX_BATCH_TOKENS="2001"/.test(err.message) &&
      /MAX_SEQUENCE_LENGTH \+ 2 = 2002/.test(err.message),
  );
  // The default budget is too small for MAX_SEQUENCE_LENGTH=5000 alone.
  assert.throws(() => loadSettings({ MAX_SEQUENCE_LENGTH: '5000' }), /MAX_BATCH_TOKENS="4096".*MAX_SEQUENCE_LENGTH/);
});

test('settingsInForce never shows the API key', () => {
  const withKey = settingsInForce(loadSettings({ API_KEY: 'hunter2' }));
  assert.equal(withKey.API_KEY, 'set');
  assert.ok(!JSON.stringify(withKey).includes('hunter2'));
  const without = settingsInForce(loadSettings({}));
  assert.equal(without.API_KEY, 'unset');
  assert.equal(without.MODEL_NAME, null);
  assert.deepEqual(Object.keys(without), SETTINGS_DOCS.map((d) => d.variable), 'one entry per documented variable, in order');
});

test('SETTINGS_DOCS defaults are what loadSettings uses', () => {
  const env = Object.fromEntries(SETTINGS_DOCS.filter((d) => d.default !== 'unset').map((d) => [d.variable, d.default]));
  assert.deepEqual(loadSettings(env), loadSettings({}));
});

test('README carries the settings table generated from SETTINGS_DOCS', async () => {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  assert.ok(readme.includes('\n## Settings\n'), 'README has a "Settings" heading');
  assert.ok(readme.includes(settingsMarkdownTable()), 'README table differs from settingsMarkdownTable(); regenerate it');
});
