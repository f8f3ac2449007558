import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeviceSpecError, executionProvidersFor, formatDevice, parseDevice } from '../src/engine/devices.js';

test('parseDevice reads every supported spec', () => {
  assert.deepEqual(parseDevice('cpu'), { spec: 'cpu', kind: 'cpu', deviceId: 0 });
  assert.deepEqual(parseDevice('cuda:1'), { spec: 'cuda:1', kind: 'cuda', deviceId: 1 });
  assert.deepEqual(parseDevice('cuda'), { spec: 'cuda', kind: 'cuda', deviceId: 0 });
  assert.deepEqual(parseDevice('tensorrt:3'), { spec: 'tensorrt:3', kind: 'tensorrt', deviceId: 3 });
  assert.deepEqual(parseDevice('webgpu'), { spec: 'webgpu', kind: 'webgpu', deviceId: 0 });
});

test('parseDevice rejects bad specs with an error naming the spec', () => {
  for (const spec of ['', 'gpu', 'cuda:', 'cuda:-1', 'cuda:x', 'cpu:0', 'webgpu:1', 'cuda:0:1']) {
    assert.throws(
      () => parseDevice(spec),
      (err: unknown) => err instanceof DeviceSpecError && err.spec === spec && err.message.includes(`"${spec}"`),
      spec,
    );
  }
});

test('executionProvidersFor maps each kind to its ORT providers', () => {
  assert.deepEqual(executionProvidersFor(parseDevice('cpu')), ['cpu']);
  assert.deepEqual(executionProvidersFor(parseDevice('cuda:2')), [{ name: 'cuda', deviceId: 2 }]);
  assert.deepEqual(executionProvidersFor(parseDevice('tensorrt:1')), [
    { name: 'tensorrt', deviceId: 1 },
    { name: 'cuda', deviceId: 1 },
  ]);
  assert.deepEqual(executionProvidersFor(parseDevice('webgpu')), ['webgpu']);
});

test('formatDevice writes the canonical spec', () => {
  assert.equal(formatDevice(parseDevice('cuda')), 'cuda:0');
  assert.equal(formatDevice(parseDevice('CPU')), 'cpu');
});
