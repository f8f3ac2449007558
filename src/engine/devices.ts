// Device specs ("cpu", "cuda:0", "tensorrt:1", "webgpu") and the ORT execution providers for each.
import type { InferenceSession } from 'onnxruntime-node';

export type DeviceKind = 'cpu' | 'cuda' | 'tensorrt' | 'webgpu';

export interface DeviceSpec {
  /** The spec as written, e.g. "cuda:1". */
  spec: string;
  kind: DeviceKind;
  /** GPU ordinal for cuda/tensorrt; 0 for cpu and webgpu. */
  deviceId: number;
}

export class DeviceSpecError extends Error {
  constructor(readonly spec: string, why: string) {
    super(`invalid device "${spec}": ${why} (expected cpu, cuda:N, tensorrt:N or webgpu)`);
    this.name = 'DeviceSpecError';
  }
}

const SPEC = /^(cpu|cuda|tensorrt|webgpu)(?::(\d+))?$/;

export function parseDevice(spec: string): DeviceSpec {
  const match = SPEC.exec(spec.trim().toLowerCase());
  if (!match) throw new DeviceSpecError(spec, 'unknown device');
  const kind = match[1] as DeviceKind;
  const ordinal = match[2];
  if ((kind === 'cpu' || kind === 'webgpu') && ordinal !== undefined) {
    throw new DeviceSpecError(spec, `${kind} takes no device number`);
  }
  // "cuda" alone means the first GPU, as in PyTorch.
  const deviceId = ordinal === undefined ? 0 : Number(ordinal);
  if (!Number.isSafeInteger(deviceId)) throw new DeviceSpecError(spec, 'device number too large');
  return { spec, kind, deviceId };
}

export function executionProvidersFor(device: DeviceSpec): InferenceSession.ExecutionProviderConfig[] {
  switch (device.kind) {
    case 'cpu':
      return ['cpu'];
    case 'cuda':
      return [{ name: 'cuda', deviceId: device.deviceId }];
    case 'tensorrt':
      // TensorRT leaves unsupported nodes to the next provider; CUDA keeps them on the GPU.
      return [
        { name: 'tensorrt', deviceId: device.deviceId },
        { name: 'cuda', deviceId: device.deviceId },
      ];
    case 'webgpu':
      return ['webgpu'];
  }
}

/** The string a replica reports as the device it actually runs on. */
export function formatDevice(device: DeviceSpec): string {
  return device.kind === 'cpu' || device.kind === 'webgpu' ? device.kind : `${device.kind}:${device.deviceId}`;
}
