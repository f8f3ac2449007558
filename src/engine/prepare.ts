// From a checkpoint directory and a device to the compiled graphs a replica loads: the one place
// that decides precision and attention kind per device.
import { loadCheckpoint, type Esm2Checkpoint } from '../model/checkpoint.js';
import { compileCheckpoint, type CompiledModel, type Precision } from '../compile/index.js';
import { parseDevice, type DeviceSpec } from './devices.js';
import type { ModelPaths } from './protocol.js';

export interface PrepareOptions {
  modelDir: string;
  /** Device spec of the replicas that will load the graphs (cpu, cuda:N, tensorrt:N, webgpu). */
  device: string;
  precision?: Precision | 'auto';
  /** Also compile the contact-head variant. */
  contacts?: boolean;
  cacheDir?: string;
  log?: (message: string) => void;
}

export interface PreparedModel {
  checkpoint: Esm2Checkpoint;
  models: ModelPaths;
  compiled: CompiledModel[];
  precision: Precision;
  fusedAttention: boolean;
}

/** GPUs want half precision; CPUs have no fast fp16 GEMM. */
export function defaultPrecision(device: DeviceSpec): Precision {
  return device.kind === 'cpu' ? 'fp32' : 'fp16';
}

export async function prepareModel(opts: PrepareOptions): Promise<PreparedModel> {
  const device = parseDevice(opts.device);
  const precision = !opts.precision || opts.precision === 'auto' ? defaultPrecision(device) : opts.precision;
  // Fused contrib-op attention measured faster than standard ops on the CPU EP too (docs/performance.md).
  const fusedAttention = true;
  const checkpoint = await loadCheckpoint(opts.modelDir);
  try {
    const compiled: CompiledModel[] = [];
    for (const variant of opts.contacts ? (['default', 'contacts'] as const) : (['default'] as const)) {
      const model = await compileCheckpoint(checkpoint, { variant, precision, fusedAttention, cacheDir: opts.cacheDir });
      opts.log?.(
        model.compiled
          ? `compiled ${variant} graph (${precision}) in ${(model.compileMs / 1000).toFixed(1)} s → ${model.onnxPath}`
          : `using cached ${variant} graph (${precision}) ${model.onnxPath}`,
      );
      compiled.push(model);
    }
    const models: ModelPaths = { default: compiled[0].onnxPath, ...(compiled[1] ? { contacts: compiled[1].onnxPath } : {}) };
    return { checkpoint, models, compiled, precision, fusedAttention };
  } catch (err) {
    await checkpoint.close();
    throw err;
  }
}
