// Splits the sequences of one /predict/batch request over devices, and describes the split in the
// seed service's `distribution_info` shape.

export type DistributionStrategy = 'contiguous' | 'balanced';

/** The seed's `distribution_info` (devices without sequences are omitted). */
export interface DistributionInfo {
  total_sequences: number;
  num_gpus_used: number;
  sequences_per_gpu: Record<string, number>;
  gpu_assignments: Record<string, number[]>;
}

/**
 * Per device (index 0 … devices − 1), the indices of the sequences it runs, ascending.
 * `lengths[i]` is sequence i's token count; only `balanced` looks at it.
 */
export function distribute(lengths: readonly number[], devices: number, strategy: DistributionStrategy): number[][] {
  if (!Number.isInteger(devices) || devices < 1) throw new RangeError(`need a whole number ≥ 1 of devices, got ${devices}`);
  switch (strategy) {
    case 'contiguous':
      return contiguous(lengths.length, devices);
    case 'balanced':
      return balanced(lengths, devices);
    default:
      throw new RangeError(`unknown distribution strategy "${String(strategy)}"`);
  }
}

/** The seed's algorithm: equal contiguous chunks, the first n % devices devices one longer. */
function contiguous(count: number, devices: number): number[][] {
  const base = Math.floor(count / devices);
  const remainder = count % devices;
  const assignment: number[][] = [];
  let next = 0;
  for (let device = 0; device < devices; device++) {
    const size = base + (device < remainder ? 1 : 0);
    assignment.push(Array.from({ length: size }, (_, k) => next + k));
    next += size;
  }
  return assignment;
}

/**
 * Longest-processing-time-first: each sequence, longest first, goes to the device with the least
 * work so far. Cost model: a sequence costs its token length. A device runs its share as
 * length-bucketed token-budget batches, whose padded tokens ≈ the sum of the lengths, and at
 * ESM-2's lengths (≤ 1024 tokens) the per-token projections and feed-forward layers outweigh the
 * quadratic attention term, so time ≈ tokens. Greedy-to-least-loaded keeps
 * max load − min load ≤ the longest sequence, so the devices finish together.
 */
function balanced(lengths: readonly number[], devices: number): number[][] {
  const assignment: number[][] = Array.from({ length: devices }, () => []);
  const load = new Array<number>(devices).fill(0);
  const longestFirst = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  for (const index of longestFirst) {
    let target = 0;
    for (let device = 1; device < devices; device++) if (load[device] < load[target]) target = device;
    assignment[target].push(index);
    load[target] += lengths[index];
  }
  for (const indices of assignment) indices.sort((a, b) => a - b);
  return assignment;
}

/** The seed's `distribution_info` for an assignment from distribute(). */
export function distributionInfo(assignment: readonly (readonly number[])[]): DistributionInfo {
  const info: DistributionInfo = { total_sequences: 0, num_gpus_used: 0, sequences_per_gpu: {}, gpu_assignments: {} };
  assignment.forEach((indices, device) => {
    if (indices.length === 0) return;
    const key = `gpu_${device}`;
    info.total_sequences += indices.length;
    info.num_gpus_used += 1;
    info.sequences_per_gpu[key] = indices.length;
    info.gpu_assignments[key] = [...indices];
  });
  return info;
}
