// The service's engine without HTTP: the same ReplicaPool and Scheduler the server builds (same
// DEVICES, same batch-queue settings), driven by the same closed-loop clients and workload as the
// HTTP benchmark, each request a scheduler submit of its sequences wanting what /predict wants (the
// mean of the last layer). Compared with the end-to-end figure, it gives the cost of HTTP, JSON and
// the routes.
import { resolveDevices } from '../src/engine/detect.js';
import { prepareModel } from '../src/engine/prepare.js';
import { ReplicaPool } from '../src/engine/pool.js';
import type { Esm2Checkpoint } from '../src/model/checkpoint.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { schedulerOptions } from '../src/server/runtime.js';
import type { Settings } from '../src/server/settings.js';
import { warmupThenMeasure, type Completion, type PointStats } from './load.js';

export interface Engine {
  checkpoint: Esm2Checkpoint;
  pool: ReplicaPool;
  description: string;
  close(): Promise<void>;
}

/** Compiles (or reuses the cached graph) and starts the replicas DEVICES=`devices` would start. */
export async function startEngine(modelDir: string, settings: Settings): Promise<Engine> {
  const devices = await resolveDevices(settings.devices);
  const prepared = await prepareModel({ modelDir, device: devices.replicas[0].device, precision: settings.precision, contacts: false });
  try {
    // As the server: each replica runs the graphs of the device it obtains, and may fall back only as ALLOW_CPU_FALLBACK says.
    const pool = await ReplicaPool.start({ replicas: devices.replicas, models: prepared.graphsFor, allowCpuFallback: settings.allowCpuFallback, padTokenId: prepared.checkpoint.tokenizer.padId });
    return {
      checkpoint: prepared.checkpoint,
      pool,
      description: devices.description,
      async close() {
        await pool.close();
        await prepared.checkpoint.close();
      },
    };
  } catch (err) {
    await prepared.checkpoint.close();
    throw err;
  }
}

export interface EngineLoadOptions {
  concurrency: number;
  batchSize: number;
  sequences: readonly string[];
  warmupRequests: number;
  requests: number;
  durationS?: number;
  timeLimitS: number;
  timeoutMs: number;
}

/** Closed-loop load through a fresh Scheduler over the engine's pool, with the server's batching settings. */
export async function measureEngine(engine: Engine, settings: Settings, o: EngineLoadOptions): Promise<PointStats> {
  const scheduler = new Scheduler(engine.pool, schedulerOptions(settings));
  const { tokenizer, config } = engine.checkpoint;
  const want = { mean: [config.numLayers] };
  const encoded = new Map<number, Int32Array>();
  const tokensOf = (i: number) => {
    let t = encoded.get(i);
    if (!t) encoded.set(i, (t = tokenizer.encode(o.sequences[i])));
    return t;
  };
  const send = async (index: number): Promise<Completion> => {
    const ids = Array.from({ length: o.batchSize }, (_, k) => (index * o.batchSize + k) % o.sequences.length);
    const residues = ids.reduce((sum, i) => sum + o.sequences[i].length, 0);
    const items = ids.map((i) => ({ tokens: tokensOf(i), want }));
    const startedAt = performance.now();
    try {
      await scheduler.submit(items, { timeoutMs: o.timeoutMs });
      return { startedAt, endedAt: performance.now(), ok: true, status: 'ok', sequences: ids.length, residues };
    } catch (err) {
      return { startedAt, endedAt: performance.now(), ok: false, status: err instanceof Error ? err.name : 'error', sequences: ids.length, residues, detail: String(err) };
    }
  };
  const { stats } = await warmupThenMeasure({
    concurrency: o.concurrency,
    send,
    warmupRequests: o.warmupRequests,
    requests: o.requests,
    durationS: o.durationS,
    timeLimitS: o.timeLimitS,
  });
  await scheduler.drain();
  return stats;
}
