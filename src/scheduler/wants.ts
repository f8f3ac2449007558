// Sharing one batch between items that want different outputs: the batch fetches the union of
// their wants, and each item's result is cut back to exactly what that item asked for.
import type { SequenceResult, Want } from './types.js';

/**
 * Items wanting contacts need the slower contacts graph (ORT runs the whole graph whatever is
 * fetched), so they queue apart and are never batched with items that don't.
 */
export type Lane = 'default' | 'contacts';

export const laneOf = (want: Want): Lane => (want.contacts ? 'contacts' : 'default');

function unionLayers(lists: (number[] | undefined)[]): number[] | undefined {
  const layers = new Set<number>();
  for (const list of lists) for (const layer of list ?? []) layers.add(layer);
  return layers.size > 0 ? [...layers].sort((a, b) => a - b) : undefined;
}

/** The want of a batch of one lane: everything any of its items wants. */
export function mergeWants(wants: readonly Want[], lane: Lane): Want {
  const merged: Want = {};
  if (wants.some((w) => w.logits)) merged.logits = true;
  const hidden = unionLayers(wants.map((w) => w.hidden));
  const mean = unionLayers(wants.map((w) => w.mean));
  const bos = unionLayers(wants.map((w) => w.bos));
  if (hidden) merged.hidden = hidden;
  if (mean) merged.mean = mean;
  if (bos) merged.bos = bos;
  if (lane === 'contacts') merged.contacts = true;
  return merged;
}

function pickLayers(
  from: Record<number, Float32Array> | undefined,
  layers: number[] | undefined,
  what: string,
): Record<number, Float32Array> | undefined {
  if (!layers?.length) return undefined;
  const picked: Record<number, Float32Array> = {};
  for (const layer of layers) {
    const tensor = from?.[layer];
    if (!tensor) throw new Error(`the executor returned no ${what} for layer ${layer}`);
    picked[layer] = tensor;
  }
  return picked;
}

/**
 * The part of a batch result this item asked for. A missing output is an executor bug: throwing
 * fails the item's request rather than silently answering with less than it asked for.
 */
export function pickWanted(result: SequenceResult, want: Want): SequenceResult {
  const picked: SequenceResult = {};
  if (want.logits) {
    if (!result.logits) throw new Error('the executor returned no logits');
    picked.logits = result.logits;
  }
  const hidden = pickLayers(result.hidden, want.hidden, 'hidden states');
  const mean = pickLayers(result.mean, want.mean, 'mean');
  const bos = pickLayers(result.bos, want.bos, 'bos row');
  if (hidden) picked.hidden = hidden;
  if (mean) picked.mean = mean;
  if (bos) picked.bos = bos;
  if (want.contacts) {
    if (!result.contacts) throw new Error('the executor returned no contacts');
    picked.contacts = result.contacts;
  }
  return picked;
}
