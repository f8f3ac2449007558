// /v1/score (and /v1/score/stream) on an ensemble without a `model` pick: every member scores the
// same variants at once, each on its own replicas, and the answer is their mean — ProteinGym's
// convention for ESM-1v's five checkpoints — with each member's own number beside it.
import { InputError } from '../../tasks/errors.js';
import { encodeSequence, type EncodedSequence, type Truncation } from '../../tasks/sequences.js';
import { scoreCost } from '../../tasks/cost.js';
import { scanMutations, scoreParsedMutations } from '../../tasks/score.js';
import { parseMutations, residueLetters, type DeepMutationalScan, type ScoreMethod } from '../../tasks/variants.js';
import { mean, type Member } from '../members.js';
import type { ServingRuntime } from '../runtime.js';
import { admitEnsemble, readyMembers, scoreContext, type AdmittedEnsemble, type CallScope } from './common.js';

export interface EnsembleScoreBody {
  sequence: string;
  mutations?: string[];
  scan?: boolean;
  method: ScoreMethod;
  truncation: Truncation;
}

/** An ensemble's request, admitted: its members, each one's encoding of the sequence, the inferences. */
export interface EnsembleScoreRequest {
  members: Member[];
  encoded: EncodedSequence[];
  admitted: AdmittedEnsemble;
}

/** Positions a list of mutations can touch at the most (each ":"-part is one), for the cost. */
export const positionsOf = (mutations: readonly string[], residues: number) => Math.min(residues, mutations.reduce((n, m) => n + m.split(':').length, 0));

/** Validates and admits an ensemble score: every member's cost counted (common.ts admitEnsemble). */
export function admitEnsembleScore(runtime: ServingRuntime, scope: CallScope, body: EnsembleScoreBody): EnsembleScoreRequest {
  const members = readyMembers(runtime);
  if ((body.mutations === undefined) === (body.scan !== true)) throw new InputError('mutations', 'give either "mutations" or "scan": true');
  // Members share family, vocabulary and length limit (checked at start), so these encodings agree.
  const encoded = members.map((m) => encodeSequence(m.model.checkpoint.tokenizer, body.sequence, 'sequence', m.model.lengthLimit, body.truncation));
  const L = encoded[0].length;
  const answers = body.scan ? L * 20 : body.mutations!.length;
  const positions = body.scan ? L : positionsOf(body.mutations!, L);
  const costs = members.map((m) => scoreCost(m.model.checkpoint.config, m.model.windowSize, L, body.method, positions, answers));
  return { members, encoded, admitted: admitEnsemble(runtime, members, scope, costs) };
}

/** The listed mutations scored by every member: `score` the mean, `member_scores` in `members` order. */
export async function ensembleScores({ members, encoded, admitted }: EnsembleScoreRequest, mutations: readonly string[], method: ScoreMethod) {
  // Malformed or mismatching mutations are a 422 before any member runs.
  const parsed = parseMutations(mutations, residueLetters(members[0].model.checkpoint.tokenizer, encoded[0].tokens), 'mutations');
  const perMember = await admitted.run((inference, member, i) => scoreParsedMutations(scoreContext(member, inference), encoded[i].tokens, parsed, method));
  return parsed.map((m, j) => {
    const memberScores = perMember.map((scores) => scores[j]);
    return { mutation: m.text, score: mean(memberScores), member_scores: memberScores };
  });
}

/**
 * The deep mutational scan by every member: `matrix` the mean, `member_matrices` in `members` order.
 * `onProgress` counts every member's passes together; `headers: false` when a stream has begun.
 */
export async function ensembleScan(
  { members, encoded, admitted }: EnsembleScoreRequest,
  method: ScoreMethod,
  { onProgress, headers = true }: { onProgress?: (done: number, total: number) => void; headers?: boolean } = {},
): Promise<DeepMutationalScan & { member_matrices: number[][][] }> {
  const progress = members.map(() => ({ done: 0, total: 0 }));
  const report = () => onProgress?.(progress.reduce((n, p) => n + p.done, 0), progress.reduce((n, p) => n + p.total, 0));
  const scans = await admitted.run(
    (inference, member, i) =>
      scanMutations(scoreContext(member, inference), encoded[i].tokens, method, {
        onProgress: (done, total) => {
          progress[i] = { done, total };
          report();
        },
      }),
    { headers },
  );
  const matrix = scans[0].matrix.map((row, i) => row.map((_, j) => mean(scans.map((s) => s.matrix[i][j]))));
  return { amino_acids: scans[0].amino_acids, matrix, member_matrices: scans.map((s) => s.matrix) };
}
