// GET /health's verdict: the seed's status and message, from the service state and the replicas.
//   initializing (503): the model is loading.
//   unhealthy (503): every replica has failed, or the service is draining or could not load the model.
//   demo (200): the built-in demo checkpoint serves — random weights, meaningless outputs (a laptop's
//     `npm start` with no model at hand); ALLOW_DEMO_MODEL=false refuses it at start-up instead.
//   degraded (200): requests are answered, but some replica is down (restarting after a crash, a
//     run timeout or a hang — its last fault is named —, or failed for good), or runs on another device than asked for (a GPU fell back to cpu, or DEVICES=auto found
//     NVIDIA GPUs it cannot use).
//   healthy (200): every replica serves on the device it was given.
// And GET /v1/health/live's (livenessVerdict): whether only a restart of the process can help.
import type { PoolReplicaInfo } from '../engine/pool.js';
import type { ServiceState } from './runtime.js';

export type HealthStatus = 'initializing' | 'unhealthy' | 'demo' | 'degraded' | 'healthy';

export interface HealthVerdict {
  status: HealthStatus;
  code: 200 | 503;
  message: string;
}

export interface HealthInput {
  state: ServiceState;
  /** The runtime's own message (loading progress, the load error, …). */
  message: string;
  replicas: PoolReplicaInfo[];
  /** Set while the demo checkpoint serves: why the real model could not be had. */
  demoReason?: string;
  /** Set when DEVICES=auto chose cpu although NVIDIA GPUs are here (no CUDA execution provider). */
  devicesFallback?: string;
}

export function healthVerdict({ state, message, replicas, demoReason, devicesFallback }: HealthInput): HealthVerdict {
  if (state === 'initializing') return { status: 'initializing', code: 503, message };
  const serving = replicas.filter((r) => r.state === 'ready').length;
  const recovering = replicas.filter((r) => r.state === 'restarting' || r.state === 'starting').length;
  if (state !== 'ready') return { status: 'unhealthy', code: 503, message };
  if (serving + recovering === 0) {
    return { status: 'unhealthy', code: 503, message: `every replica has failed: ${replicas.map((r) => `${r.index}: ${r.error ?? r.state}`).join('; ')}` };
  }
  const problems: string[] = devicesFallback ? [devicesFallback] : [];
  const down = replicas.filter((r) => r.state !== 'ready');
  if (down.length) problems.push(`${down.length} of ${replicas.length} replicas down (${down.map((r) => `${r.index}: ${r.state}`).join(', ')})`);
  // Why each one restarting is down (a hang, a crash, a run timeout): the latest fault it had.
  for (const r of down.filter((r) => r.state === 'restarting' && r.lastFault)) problems.push(`replica ${r.index} ${r.lastFault!.reason}: ${r.lastFault!.message}`);
  for (const r of replicas.filter((r) => r.fallbackReason)) {
    problems.push(`replica ${r.index} asked for ${r.device} runs on ${r.actual}${r.precision ? ` (${r.precision})` : ''}: ${r.fallbackReason}`);
  }
  if (demoReason !== undefined) {
    const demo = `serving the built-in demo checkpoint: RANDOM WEIGHTS, meaningless outputs (${demoReason}); set MODEL_NAME to a trained ESM-2 checkpoint`;
    return { status: 'demo', code: 200, message: [demo, ...problems].join('; ') };
  }
  if (problems.length) return { status: 'degraded', code: 200, message: [message, ...problems].join('; ') };
  return { status: 'healthy', code: 200, message };
}

export interface LivenessVerdict {
  code: 200 | 503;
  body: { status: 'alive' } | { status: 'failed'; detail: string };
}

/**
 * /v1/health/live (the Kubernetes liveness probe, the images' HEALTHCHECK): 503 only when this
 * process will never serve again as it is — every replica has failed for good (`unavailable`, the
 * pool's reason), or the model could not be loaded (the process is exiting anyway) — so that the
 * orchestrator restarts it. 200 while the model loads (initializing), while serving, degraded
 * (a replica restarting, or failed while another serves) and draining: a probe must not kill a
 * pod that is starting up or finishing its accepted work.
 */
export function livenessVerdict(state: ServiceState, message: string, unavailable: string | undefined): LivenessVerdict {
  if (state === 'unhealthy') return { code: 503, body: { status: 'failed', detail: `the model could not be loaded: ${message}` } };
  if (state === 'ready' && unavailable) return { code: 503, body: { status: 'failed', detail: `no replica can serve: ${unavailable}; only a restart of the process can help` } };
  return { code: 200, body: { status: 'alive' } };
}
