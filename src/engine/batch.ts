// Pure functions around one batched forward pass: padding the token rows into the graph's
// `input_ids`, choosing the outputs to fetch, and cutting the batched outputs back into
// per-sequence results. A sequence's result reads only its own rows, so it cannot depend on
// what else was in the batch.

import type { SequenceResult, Want } from '../contract/index.js';

export type { SequenceResult, Want };

/** A batched float output as read from ORT: row-major data and its dims. */
export interface BatchOutput {
  data: Float32Array;
  dims: readonly number[];
}

export interface PaddedBatch {
  ids: BigInt64Array;
  batchSize: number;
  seqLen: number;
}

export const hiddenOutputName = (layer: number): string => `hidden_${layer}`;

/** Right-pads every token row to the longest one: the graph's int64 [B, T] `input_ids`. */
export function padTokens(tokens: readonly Int32Array[], padTokenId: number): PaddedBatch {
  if (tokens.length === 0) throw new RangeError('a batch needs at least one sequence');
  let seqLen = 0;
  for (const [i, row] of tokens.entries()) {
    // Every row carries cls and eos around its residues.
    if (row.length < 2) throw new RangeError(`sequence ${i} has ${row.length} tokens; at least cls and eos are needed`);
    seqLen = Math.max(seqLen, row.length);
  }
  const ids = new BigInt64Array(tokens.length * seqLen).fill(BigInt(padTokenId));
  tokens.forEach((row, b) => {
    for (let t = 0; t < row.length; t++) ids[b * seqLen + t] = BigInt(row[t]);
  });
  return { ids, batchSize: tokens.length, seqLen };
}

/** Every layer any part of `want` mentions, sorted and without repeats. */
export function wantedLayers(want: Want): number[] {
  const layers = new Set([...(want.hidden ?? []), ...(want.mean ?? []), ...(want.bos ?? [])]);
  return [...layers].sort((a, b) => a - b);
}

/** The graph outputs that answer `want`: only these are copied out (ORT still runs the whole graph). */
export function outputsToFetch(want: Want): string[] {
  const names = wantedLayers(want).map(hiddenOutputName);
  if (want.logits) names.unshift('logits');
  if (want.contacts) names.push('contacts');
  return names;
}

/** Copies rows [from, to) of batch item `b` out of a [B, T, D] output. */
export function sliceRows(out: BatchOutput, b: number, from: number, to: number): Float32Array {
  const [, seqLen, width] = out.dims;
  const start = (b * seqLen + from) * width;
  // A copy, not a view: the result must not alias ORT's output buffer, whose lifetime ORT owns.
  return out.data.slice(start, start + (to - from) * width);
}

/** Mean of rows [from, to) of batch item `b` in a [B, T, D] output, accumulated in float64. */
export function meanRows(out: BatchOutput, b: number, from: number, to: number): Float32Array {
  const [, seqLen, width] = out.dims;
  const sum = new Float64Array(width);
  for (let t = from; t < to; t++) {
    const base = (b * seqLen + t) * width;
    for (let d = 0; d < width; d++) sum[d] += out.data[base + d];
  }
  const count = to - from;
  return Float32Array.from(sum, (s) => (count > 0 ? s / count : Number.NaN));
}

/** The L × L block at rows/cols 1 … L of batch item `b` in a [B, T, T] contacts output. */
export function sliceContacts(out: BatchOutput, b: number, residues: number): Float32Array {
  const [, seqLen] = out.dims;
  const result = new Float32Array(residues * residues);
  for (let i = 0; i < residues; i++) {
    const start = (b * seqLen + 1 + i) * seqLen + 1;
    result.set(out.data.subarray(start, start + residues), i * residues);
  }
  return result;
}

function need(outputs: Record<string, BatchOutput>, name: string): BatchOutput {
  const out = outputs[name];
  if (!out) throw new Error(`the model did not return output "${name}"`);
  return out;
}

/**
 * Cuts batched outputs into one result per sequence. `lengths[b]` is the token count of
 * sequence b (cls + L residues + eos), so its residues are rows 1 … L.
 */
export function splitResults(
  outputs: Record<string, BatchOutput>,
  lengths: readonly number[],
  want: Want,
): SequenceResult[] {
  return lengths.map((tokenCount, b) => {
    const residues = tokenCount - 2;
    const result: SequenceResult = {};
    if (want.logits) result.logits = sliceRows(need(outputs, 'logits'), b, 0, tokenCount);
    const perLayer = (layers: number[] | undefined, cut: (out: BatchOutput) => Float32Array) => {
      if (!layers?.length) return undefined;
      const byLayer: Record<number, Float32Array> = {};
      for (const layer of layers) byLayer[layer] = cut(need(outputs, hiddenOutputName(layer)));
      return byLayer;
    };
    const hidden = perLayer(want.hidden, (out) => sliceRows(out, b, 0, tokenCount));
    const mean = perLayer(want.mean, (out) => meanRows(out, b, 1, 1 + residues));
    const bos = perLayer(want.bos, (out) => sliceRows(out, b, 0, 1));
    if (hidden) result.hidden = hidden;
    if (mean) result.mean = mean;
    if (bos) result.bos = bos;
    if (want.contacts) result.contacts = sliceContacts(need(outputs, 'contacts'), b, residues);
    return result;
  });
}
