// From a checkpoint directory and a device to the compiled graphs a replica loads: the one place
// that decides precision and attention kind per device. The precision follows the device a replica
// actually runs on: a GPU replica that falls back to the cpu asks graphsFor('cpu') and gets fp32
// (PRECISION=auto), compiled then and only then.
import { loadCheckpoint, type Esm2Checkpoint } from '../model/checkpoint.js';
import { compileCheckpoint, type CompiledModel, type Precision } from '../compile/index.js';
import { parseDevice, type DeviceSpec } from './devices.js';
import type { ModelPaths } from './protocol.js';

export interface PrepareOptions {
  modelDir: string;
  /** Device spec whose graphs are compiled at once (cpu, cuda:N, tensorrt:N, webgpu); others on demand (graphsFor). */
  device: string;
  /** auto (or absent): each device's own (defaultPrecision); fp32/fp16: that one on every device; int8: cpu only (refused on a GPU device). */
  precision?: Precision | 'auto';
  /** Also compile the contact-head variant. */
  contacts?: boolean;
  cacheDir?: string;
  /** Progress at level info; a damaged cached graph that is recompiled at level warn. */
  log?: (message: string, level?: 'info' | 'warn') => void;
}

/** The graphs of one precision. */
export interface DeviceGraphs {
  precision: Precision;
  models: ModelPaths;
  compiled: CompiledModel[];
}

export interface PreparedModel extends DeviceGraphs {
  checkpoint: Esm2Checkpoint;
  fusedAttention: boolean;
  /** The graphs a replica on `device` loads, compiled on first use and kept (one compile per precision). Needs the checkpoint open. */
  graphsFor(device: string): Promise<DeviceGraphs>;
}

/** GPUs want half precision; CPUs have no fast fp16 GEMM. */
export function defaultPrecision(device: DeviceSpec): Precision {
  return device.kind === 'cpu' ? 'fp32' : 'fp16';
}

/** The precision a replica on `device` runs: the one asked for, or the device's own for auto. */
export function precisionFor(device: string, precision: Precision | 'auto' | undefined): Precision {
  return !precision || precision === 'auto' ? defaultPrecision(parseDevice(device)) : precision;
}

/**
 * int8 graphs are DynamicQuantizeMatMul, a CPU kernel: on a GPU ORT would run every Linear on the
 * cpu with copies each way, so a GPU device with PRECISION=int8 is refused rather than run slowly.
 * A GPU replica fallen back to cpu runs int8 (it asks for the cpu's graphs).
 */
export function checkPrecisionForDevice(device: string, precision: Precision): void {
  const spec = parseDevice(device);
  if (precision === 'int8' && spec.kind !== 'cpu') {
    throw new Error(`precision int8 runs on cpu only (its quantized MatMul has no ${spec.kind} kernel); use fp16 or auto on ${device}, or int8 with cpu`);
  }
}

export async function prepareModel(opts: PrepareOptions): Promise<PreparedModel> {
  // Fused contrib-op attention measured faster than standard ops on the CPU EP too (docs/performance.md).
  const fusedAttention = true;
  const checkpoint = await loadCheckpoint(opts.modelDir);
  const compile = async (precision: Precision): Promise<DeviceGraphs> => {
    const compiled: CompiledModel[] = [];
    // A checkpoint without a contact head gets no contacts graph (its requests for contacts are refused).
    for (const variant of opts.contacts && checkpoint.hasContactHead ? (['default', 'contacts'] as const) : (['default'] as const)) {
      const onWarning = (message: string) => opts.log?.(message, 'warn');
      const model = await compileCheckpoint(checkpoint, { variant, precision, fusedAttention, cacheDir: opts.cacheDir, onWarning });
      opts.log?.(
        model.compiled
          ? `compiled ${variant} graph (${precision}) in ${(model.compileMs / 1000).toFixed(1)} s → ${model.onnxPath}`
          : `using cached ${variant} graph (${precision}) ${model.onnxPath}`,
      );
      compiled.push(model);
    }
    const models: ModelPaths = { default: compiled[0].onnxPath, ...(compiled[1] ? { contacts: compiled[1].onnxPath } : {}) };
    return { precision, models, compiled };
  };
  const byPrecision = new Map<Precision, Promise<DeviceGraphs>>();
  const graphsFor = (device: string): Promise<DeviceGraphs> => {
    const precision = precisionFor(device, opts.precision);
    try {
      checkPrecisionForDevice(device, precision);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    let graphs = byPrecision.get(precision);
    if (!graphs) {
      graphs = compile(precision);
      byPrecision.set(precision, graphs);
      graphs.catch(() => byPrecision.delete(precision)); // a failed compile is retried by the next ask
    }
    return graphs;
  };
  try {
    const first = await graphsFor(opts.device);
    return { checkpoint, fusedAttention, graphsFor, ...first };
  } catch (err) {
    await checkpoint.close();
    throw err;
  }
}
