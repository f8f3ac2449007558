// DEVICES → replicas: GPU detection with a fake nvidia-smi and CUDA provider, CUDA_VISIBLE_DEVICES,
// CPU core splitting, spec errors; and the real `auto` on this (GPU-less) machine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDevices, parseDevicesSpec, visibleGpus, parseNvidiaSmi, type ResolveOptions } from '../src/engine/detect.js';
import { DeviceSpecError } from '../src/engine/devices.js';

const TWO_GPUS = [
  '0, NVIDIA H100 80GB HBM3, 81559 MiB, GPU-aaaa1111-0000-0000-0000-000000000000',
  '1, NVIDIA H100 80GB HBM3, 81559 MiB, GPU-bbbb2222-0000-0000-0000-000000000000',
  '',
].join('\n');

function fake(overrides: Partial<ResolveOptions> = {}): ResolveOptions {
  return { cores: 8, env: {}, nvidiaSmi: async () => TWO_GPUS, cudaProviderInstalled: () => true, ...overrides };
}

const devicesOf = (r: { replicas: { device: string }[] }) => r.replicas.map((x) => x.device);

test('auto: two GPUs with the CUDA provider → one replica per GPU', async () => {
  const resolved = await resolveDevices('auto', fake());
  assert.deepEqual(resolved.replicas, [{ device: 'cuda:0' }, { device: 'cuda:1' }]);
  assert.match(resolved.description, /2 NVIDIA GPUs/);
  assert.match(resolved.description, /cuda:1 = GPU 1 \(NVIDIA H100 80GB HBM3, 81559 MiB\)/);
});

test('auto: GPUs but no CUDA execution provider → one CPU replica, says why, and counts as a fallback', async () => {
  const resolved = await resolveDevices('auto', fake({ cudaProviderInstalled: () => false }));
  assert.deepEqual(resolved.replicas, [{ device: 'cpu', intraOpNumThreads: 8 }]);
  assert.match(resolved.description, /no CUDA execution provider/);
  assert.match(resolved.gpuFallback ?? '', /^2 NVIDIA GPUs, but onnxruntime-node has no CUDA execution provider/);
});

test('auto: no nvidia-smi, or one listing nothing → CPU with the reason', async () => {
  const missing = await resolveDevices('auto', fake({ nvidiaSmi: async () => null }));
  assert.deepEqual(devicesOf(missing), ['cpu']);
  assert.match(missing.description, /nvidia-smi missing or failing/);
  const empty = await resolveDevices('auto', fake({ nvidiaSmi: async () => '' }));
  assert.deepEqual(devicesOf(empty), ['cpu']);
  assert.match(empty.description, /nvidia-smi lists none/);
  assert.equal(missing.gpuFallback ?? empty.gpuFallback, undefined, 'no GPU here: cpu is what auto means, not a fallback');
});

test('auto: CUDA_VISIBLE_DEVICES=1 → one replica, renumbered cuda:0, on physical GPU 1', async () => {
  const resolved = await resolveDevices('auto', fake({ env: { CUDA_VISIBLE_DEVICES: '1' } }));
  assert.deepEqual(resolved.replicas, [{ device: 'cuda:0' }]);
  assert.match(resolved.description, /cuda:0 = GPU 1 /);
});

test('auto: CUDA_VISIBLE_DEVICES empty, -1 or NoDevFiles hides every GPU', async () => {
  for (const value of ['', '-1', 'NoDevFiles']) {
    const resolved = await resolveDevices('auto', fake({ env: { CUDA_VISIBLE_DEVICES: value } }));
    assert.deepEqual(devicesOf(resolved), ['cpu'], value);
    assert.match(resolved.description, /shows 0/, value);
  }
});

test('CUDA_VISIBLE_DEVICES follows CUDA: order kept, UUID prefixes, stops at the first invalid entry', () => {
  const gpus = parseNvidiaSmi(TWO_GPUS);
  assert.deepEqual(visibleGpus(gpus, '1,0').map((g) => g.index), [1, 0]);
  assert.deepEqual(visibleGpus(gpus, 'GPU-bbbb').map((g) => g.index), [1]);
  assert.deepEqual(visibleGpus(gpus, '0,7,1').map((g) => g.index), [0]);
  assert.deepEqual(visibleGpus(gpus, '1,1').map((g) => g.index), [1]);
  assert.deepEqual(visibleGpus(gpus, undefined).map((g) => g.index), [0, 1]);
});

test('nvidia-smi output without the uuid column still parses', () => {
  assert.deepEqual(parseNvidiaSmi('0, Tesla T4, 15360 MiB\n'), [{ index: 0, name: 'Tesla T4', memory: '15360 MiB' }]);
});

test('cpu and cpu:N split the cores, at least one thread each', async () => {
  assert.deepEqual((await resolveDevices('cpu', fake({ cores: 2 }))).replicas, [{ device: 'cpu', intraOpNumThreads: 2 }]);
  assert.deepEqual((await resolveDevices('cpu:2', fake({ cores: 2 }))).replicas, [
    { device: 'cpu', intraOpNumThreads: 1 },
    { device: 'cpu', intraOpNumThreads: 1 },
  ]);
  const four = await resolveDevices('cpu:4', fake({ cores: 2 }));
  assert.deepEqual(four.replicas, Array.from({ length: 4 }, () => ({ device: 'cpu', intraOpNumThreads: 1 })));
  assert.match(four.description, /more replicas than the 2 cores/);
  assert.deepEqual((await resolveDevices('cpu:3', fake({ cores: 8 }))).replicas[0], { device: 'cpu', intraOpNumThreads: 2 });
});

test('explicit lists: cuda:0,1 · cuda:0,cuda:1 · tensorrt:0,1 · webgpu (no detection run)', async () => {
  const noDetection = fake({
    nvidiaSmi: () => assert.fail('nvidia-smi must not run for an explicit list'),
  });
  assert.deepEqual(devicesOf(await resolveDevices('cuda:0,1', noDetection)), ['cuda:0', 'cuda:1']);
  assert.deepEqual(devicesOf(await resolveDevices(' CUDA:0 , cuda:1 ', noDetection)), ['cuda:0', 'cuda:1']);
  assert.deepEqual(devicesOf(await resolveDevices('tensorrt:0,1', noDetection)), ['tensorrt:0', 'tensorrt:1']);
  assert.deepEqual(devicesOf(await resolveDevices('webgpu', noDetection)), ['webgpu']);
  assert.deepEqual(devicesOf(await resolveDevices('cuda', noDetection)), ['cuda:0']);
});

test('bad specs throw a DeviceSpecError naming the spec', async () => {
  for (const spec of ['', 'gpu', 'cpu:0', 'cpu:x', 'cuda:0,,1', 'cuda:0,cuda:0', '1,2', 'auto,cpu', 'cuda:0,cpu:2', 'webgpu:1', 'cuda:-1']) {
    assert.throws(
      () => parseDevicesSpec(spec),
      (err: unknown) => err instanceof DeviceSpecError && err.spec === spec && err.message.includes(`"${spec}"`),
      JSON.stringify(spec),
    );
    await assert.rejects(resolveDevices(spec, fake()), DeviceSpecError);
  }
});

test('the real auto on this machine: a CPU replica using every core', async () => {
  const resolved = await resolveDevices('auto', { cores: 2 });
  // The project's machines have no NVIDIA GPU and onnxruntime-node is installed without CUDA.
  assert.deepEqual(resolved.replicas, [{ device: 'cpu', intraOpNumThreads: 2 }], resolved.description);
  assert.match(resolved.description, /^DEVICES=auto: /);
});
