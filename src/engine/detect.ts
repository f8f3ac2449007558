// From the DEVICES setting to the replicas to start: "auto" looks for NVIDIA GPUs *and* the CUDA
// execution provider (one without the other means CPU), "cpu:N" splits the cores between N
// replicas, lists name GPUs. The description says why, for the start-up log.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { DeviceSpecError, formatDevice, parseDevice, type DeviceSpec } from './devices.js';

export interface ReplicaPlan {
  device: string;
  /** ORT intra-op threads; set for CPU replicas so that replicas sharing the CPU do not oversubscribe it. */
  intraOpNumThreads?: number;
}

export interface ResolvedDevices {
  replicas: ReplicaPlan[];
  /** One line for the start-up log: what was chosen and why. */
  description: string;
  /**
   * Set when `auto` found NVIDIA GPUs it cannot use (no CUDA execution provider) and chose cpu: a
   * fallback like a GPU replica's, reported and refused the same way (ALLOW_CPU_FALLBACK).
   */
  gpuFallback?: string;
}

/** A DEVICES value parsed, before anything about the machine is known. */
export type DevicesSpec =
  | { kind: 'auto' }
  | { kind: 'cpu'; replicas: number }
  | { kind: 'list'; devices: DeviceSpec[] };

export interface ResolveOptions {
  /** CPU cores to share between CPU replicas; default os.availableParallelism(). */
  cores?: number;
  /** For CUDA_VISIBLE_DEVICES; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** `nvidia-smi --query-gpu=index,name,memory.total,uuid --format=csv,noheader` output, null without nvidia-smi. */
  nvidiaSmi?: () => Promise<string | null>;
  cudaProviderInstalled?: () => boolean;
}

export interface NvidiaGpu {
  index: number;
  name: string;
  memory: string;
  uuid?: string;
}

const CPU_REPLICAS = /^cpu:(\d+)$/;
const NVIDIA_SMI_TIMEOUT_MS = 5000;
export const DEVICES_GRAMMAR = 'auto, cpu, cpu:N, a list such as cuda:0,1 or tensorrt:0, or webgpu';

/** A DeviceSpecError whose message states the DEVICES grammar rather than a single device's. */
export class DevicesSpecError extends DeviceSpecError {
  constructor(
    spec: string,
    /** What is wrong, without the grammar. */
    readonly why: string,
  ) {
    super(spec, why);
    this.message = `invalid devices "${spec}": ${why} (expected ${DEVICES_GRAMMAR})`;
  }
}

/** Parses a DEVICES value without touching the machine: `auto`, `cpu`, `cpu:N`, `webgpu`, `cuda:0,1`, `cuda:0,tensorrt:1`. */
export function parseDevicesSpec(spec: string): DevicesSpec {
  const text = spec.trim().toLowerCase();
  if (text === 'auto') return { kind: 'auto' };
  if (text === 'cpu') return { kind: 'cpu', replicas: 1 };
  const cpu = CPU_REPLICAS.exec(text);
  if (cpu) {
    const replicas = Number(cpu[1]);
    if (!Number.isSafeInteger(replicas) || replicas < 1) throw new DevicesSpecError(spec, 'cpu:N needs N ≥ 1 replicas');
    return { kind: 'cpu', replicas };
  }
  const devices: DeviceSpec[] = [];
  let previous: DeviceSpec | undefined;
  const items = text.split(',').map((item) => item.trim());
  for (const raw of items) {
    if (raw === '') throw new DevicesSpecError(spec, 'empty entry in the device list');
    if (raw === 'auto' || CPU_REPLICAS.test(raw)) throw new DevicesSpecError(spec, `"${raw}" must stand alone`);
    // A bare number continues the previous kind: "cuda:0,1" is cuda:0 and cuda:1.
    const item = /^\d+$/.test(raw) && previous ? `${previous.kind}:${raw}` : raw;
    const device = parseItem(spec, item, items.length > 1);
    const name = formatDevice(device);
    if (devices.some((d) => formatDevice(d) === name)) throw new DevicesSpecError(spec, `${name} is listed twice`);
    devices.push(device);
    previous = device;
  }
  return { kind: 'list', devices };
}

function parseItem(spec: string, item: string, inList: boolean): DeviceSpec {
  try {
    return parseDevice(item);
  } catch (err) {
    if (!(err instanceof DeviceSpecError)) throw err;
    // Name the whole setting, not only the entry, so the message points at what the user wrote.
    const why = /^invalid device "[^"]*": (.*) \(expected [^)]*\)$/.exec(err.message)?.[1] ?? err.message;
    throw new DevicesSpecError(spec, inList ? `"${item}": ${why}` : why);
  }
}

export async function resolveDevices(spec: string, opts: ResolveOptions = {}): Promise<ResolvedDevices> {
  const parsed = parseDevicesSpec(spec);
  const cores = Math.max(1, opts.cores ?? os.availableParallelism());
  switch (parsed.kind) {
    case 'cpu':
      return cpuReplicas(parsed.replicas, cores, `DEVICES=${spec.trim()}`);
    case 'list':
      return {
        replicas: parsed.devices.map((d) => ({ device: formatDevice(d) })),
        description: `DEVICES=${spec.trim()}: ${parsed.devices.map(formatDevice).join(', ')}`,
      };
    case 'auto':
      return detectAuto(cores, opts);
  }
}

/** N replicas splitting the cores: each gets floor(cores / N) threads, at least one. */
function cpuReplicas(count: number, cores: number, why: string): ResolvedDevices {
  const threads = Math.max(1, Math.floor(cores / count));
  const replicas = Array.from({ length: count }, () => ({ device: 'cpu', intraOpNumThreads: threads }));
  const over = count * threads > cores ? ` (more replicas than the ${cores} cores)` : '';
  return { replicas, description: `${why}: ${count} cpu replica${count > 1 ? 's' : ''} × ${threads} thread${threads > 1 ? 's' : ''}${over}` };
}

async function detectAuto(cores: number, opts: ResolveOptions): Promise<ResolvedDevices> {
  const smi = await (opts.nvidiaSmi ?? queryNvidiaSmi)();
  const gpus = smi === null ? [] : parseNvidiaSmi(smi);
  if (gpus.length === 0) {
    return cpuReplicas(1, cores, `DEVICES=auto: no NVIDIA GPU (${smi === null ? 'nvidia-smi missing or failing' : 'nvidia-smi lists none'})`);
  }
  const env = opts.env ?? process.env;
  const visible = visibleGpus(gpus, env.CUDA_VISIBLE_DEVICES);
  const cvd = env.CUDA_VISIBLE_DEVICES === undefined ? '' : `, CUDA_VISIBLE_DEVICES="${env.CUDA_VISIBLE_DEVICES}" shows ${visible.length}`;
  const found = `${gpus.length} NVIDIA GPU${gpus.length > 1 ? 's' : ''}${cvd}`;
  if (visible.length === 0) return cpuReplicas(1, cores, `DEVICES=auto: ${found}`);
  if (!(opts.cudaProviderInstalled ?? cudaProviderInstalled)()) {
    const why = `${found}, but onnxruntime-node has no CUDA execution provider (install it: node node_modules/onnxruntime-node/script/install.js --onnxruntime-node-install=cuda12, README "GPU hosts")`;
    return { ...cpuReplicas(1, cores, `DEVICES=auto: ${why}`), gpuFallback: why };
  }
  // CUDA numbers the visible GPUs 0 … k−1 whatever their physical index, and so does ORT's deviceId.
  const replicas = visible.map((_, ordinal) => ({ device: `cuda:${ordinal}` }));
  const mapping = visible.map((gpu, ordinal) => `cuda:${ordinal} = GPU ${gpu.index} (${gpu.name}, ${gpu.memory})`);
  return { replicas, description: `DEVICES=auto: ${found} with the CUDA execution provider: ${mapping.join('; ')}` };
}

/** Parses `index, name, memory.total[, uuid]` CSV lines; lines that do not parse are skipped. */
export function parseNvidiaSmi(output: string): NvidiaGpu[] {
  const gpus: NvidiaGpu[] = [];
  for (const line of output.split('\n')) {
    const [index, name, memory, uuid] = line.split(',').map((field) => field.trim());
    if (!/^\d+$/.test(index ?? '') || !name) continue;
    gpus.push({ index: Number(index), name, memory: memory ?? '?', ...(uuid ? { uuid } : {}) });
  }
  return gpus;
}

/**
 * The GPUs CUDA will see, in CUDA's order. CUDA reads the list up to its first invalid entry;
 * an empty value, "-1" or "NoDevFiles" hides every GPU. Entries are indices or UUID prefixes.
 */
export function visibleGpus(gpus: NvidiaGpu[], cudaVisibleDevices: string | undefined): NvidiaGpu[] {
  if (cudaVisibleDevices === undefined) return gpus;
  const visible: NvidiaGpu[] = [];
  for (const entry of cudaVisibleDevices.split(',').map((e) => e.trim())) {
    const gpu = /^\d+$/.test(entry)
      ? gpus.find((g) => g.index === Number(entry))
      : entry.length > 0 ? gpus.find((g) => g.uuid !== undefined && g.uuid.startsWith(entry)) : undefined;
    if (!gpu || visible.includes(gpu)) break;
    visible.push(gpu);
  }
  return visible;
}

/** nvidia-smi's GPU list, or null when it is missing, fails or hangs (no usable driver). */
export function queryNvidiaSmi(): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(
      'nvidia-smi',
      ['--query-gpu=index,name,memory.total,uuid', '--format=csv,noheader'],
      { timeout: NVIDIA_SMI_TIMEOUT_MS, windowsHide: true },
      (err, stdout) => resolve(err ? null : stdout),
    );
  });
}

/**
 * Whether onnxruntime-node ships the CUDA execution provider library for this platform
 * (bin/napi-v*\/<platform>/<arch>/libonnxruntime_providers_cuda.so); the default npm install
 * does not, and a session asking for CUDA would then only fall back to CPU.
 */
export function cudaProviderInstalled(): boolean {
  const packageDir = onnxruntimePackageDir();
  if (!packageDir) return false;
  const binDir = path.join(packageDir, 'bin');
  const names = new Set(['libonnxruntime_providers_cuda.so', 'onnxruntime_providers_cuda.dll']);
  let napiDirs: string[];
  try {
    napiDirs = readdirSync(binDir).filter((name) => name.startsWith('napi-v'));
  } catch {
    return false;
  }
  return napiDirs.some((napi) => {
    const dir = path.join(binDir, napi, process.platform, process.arch);
    return [...names].some((name) => existsSync(path.join(dir, name)));
  });
}

/** onnxruntime-node's package directory: up from its resolved entry point to its package.json. */
function onnxruntimePackageDir(): string | undefined {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve('onnxruntime-node');
  } catch {
    return undefined;
  }
  for (let dir = path.dirname(entry); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && path.basename(dir) === 'onnxruntime-node') return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}
