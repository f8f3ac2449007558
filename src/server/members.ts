// Ensembles (MODEL_NAME a comma list, e.g. ESM-1v's five checkpoints): what makes members
// interchangeable for scoring, and how they share the devices. Each member is a whole LoadedModel
// — its own ReplicaPool and Scheduler on the same DEVICES list —, so one member's batches never
// wait on another's queue and a member's replica fault is its own; memory is members × one model.
import type { ResolvedDevices } from '../engine/detect.js';
import type { Esm2Checkpoint } from '../model/checkpoint.js';
import { FAMILY_NAMES } from '../model/config.js';
import type { LengthLimit } from '../tasks/sequences.js';
import type { LoadedModel } from './runtime.js';

/** One checkpoint the server serves: its name as `/v1/models` lists it and `model` picks it. */
export interface Member {
  name: string;
  /** "huggingface hub (repo@commit)", "local directory" or "built-in demo". */
  source: string;
  model: LoadedModel;
}

/**
 * Why `b` cannot be scored beside `a` (family, vocabulary or length limit differ), or undefined.
 * Scores are averaged position by position and token by token, so each must mean the same in both.
 */
export function notInterchangeable(a: Esm2Checkpoint, aLimit: LengthLimit, b: Esm2Checkpoint, bLimit: LengthLimit): string | undefined {
  const [fa, fb] = [a.config.family, b.config.family];
  if (fa !== fb) return `family ${fa} (${FAMILY_NAMES[fa]}) vs ${fb} (${FAMILY_NAMES[fb]})`;
  const [va, vb] = [a.tokenizer.vocab, b.tokenizer.vocab];
  if (va.length !== vb.length) return `vocabulary of ${va.length} tokens vs ${vb.length}`;
  const i = va.findIndex((token, k) => token !== vb[k]);
  if (i >= 0) return `vocabulary token ${i} is ${JSON.stringify(va[i])} vs ${JSON.stringify(vb[i])}`;
  if (aLimit.residues !== bLimit.residues) return `length limit ${aLimit.residues} residues vs ${bLimit.residues}`;
  return undefined;
}

/** The one-line start-up refusal of two members that cannot form an ensemble. */
export function ensembleMismatch(a: string, b: string, why: string): Error {
  return new Error(`MODEL_NAME: members "${a}" and "${b}" cannot form an ensemble: ${why}`);
}

/**
 * The replicas each of `members` members starts: the same devices, CPU replicas' intra-op threads
 * divided between the members (at least one each), so members × replicas do not oversubscribe
 * the cores. One member: the devices as resolved.
 */
export function shareDevices(devices: ResolvedDevices, members: number): ResolvedDevices {
  if (members <= 1) return devices;
  let split = false;
  const replicas = devices.replicas.map((r) => {
    if (r.intraOpNumThreads === undefined) return r;
    split = true;
    return { ...r, intraOpNumThreads: Math.max(1, Math.floor(r.intraOpNumThreads / members)) };
  });
  const each = replicas.find((r) => r.intraOpNumThreads !== undefined)?.intraOpNumThreads;
  const how = split ? `; shared by ${members} members: ${each} thread${each === 1 ? '' : 's'} per replica` : `; each of ${members} members runs its own replicas on them`;
  return { ...devices, replicas, description: `${devices.description}${how}` };
}

/** Metric label of a member's replica: its index alone for one model, "<member>.<replica>" in an ensemble. */
export function replicaLabel(member: number, replica: number, ensemble: boolean): string {
  return ensemble ? `${member}.${replica}` : String(replica);
}

/** The element-wise mean of the members' numbers (float64). */
export function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}
