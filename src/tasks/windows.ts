// Long sequences: ESM-2 saw at most 1022 residues in training. Window mode runs overlapping
// windows of W residues (stride W/2, the last window aligned to the end) and assembles them:
// per-residue rows and logits are averaged over the windows covering a residue, contacts over
// the windows covering both residues (pairs no window covers stay 0), cls/eos rows and the bos
// vector are averaged over windows, and means are taken over the assembled residue rows.
import type { SequenceResult, Want } from '../contract/index.js';

export interface Window {
  /** First residue (0-based). */
  start: number;
  /** Residues in the window. */
  length: number;
}

export function windowsFor(residues: number, windowSize: number): Window[] {
  if (residues <= windowSize) return [{ start: 0, length: residues }];
  const stride = Math.max(1, Math.floor(windowSize / 2));
  const windows: Window[] = [];
  for (let start = 0; ; start += stride) {
    if (start + windowSize >= residues) {
      windows.push({ start: residues - windowSize, length: windowSize });
      return windows;
    }
    windows.push({ start, length: windowSize });
  }
}

/** Token rows of one window: cls + its residues + eos, from the full cls … eos row. */
export function windowTokens(tokens: Int32Array, window: Window): Int32Array {
  const out = new Int32Array(window.length + 2);
  out[0] = tokens[0];
  out.set(tokens.subarray(1 + window.start, 1 + window.start + window.length), 1);
  out[window.length + 1] = tokens[tokens.length - 1];
  return out;
}

/** What each window must return for `want` to be assembled: means need the per-residue rows. */
export function windowWant(want: Want): Want {
  const hidden = [...new Set([...(want.hidden ?? []), ...(want.mean ?? [])])].sort((a, b) => a - b);
  return { ...want, ...(hidden.length ? { hidden } : {}), mean: undefined };
}

/**
 * Averages rows [T_w × width] of each window into [L + 2 × width] (cls and eos rows averaged too).
 * Sums in float32, in the result itself: a row is covered by at most a few windows (stride W/2),
 * and a long sequence's rows must not need twice their size again while assembled.
 */
function assembleRows(residues: number, width: number, parts: { window: Window; rows: Float32Array }[]): Float32Array {
  const out = new Float32Array((residues + 2) * width);
  const count = new Uint8Array(residues + 2);
  for (const { window, rows } of parts) {
    for (let t = 0; t < window.length + 2; t++) {
      const target = t === 0 ? 0 : t === window.length + 1 ? residues + 1 : window.start + t;
      count[target]++;
      for (let d = 0; d < width; d++) out[target * width + d] += rows[t * width + d];
    }
  }
  for (let t = 0; t < residues + 2; t++) if (count[t] > 1) for (let d = 0; d < width; d++) out[t * width + d] /= count[t];
  return out;
}

/** L × L contacts averaged over the windows covering both residues (0 where none does); float32 sums in place, 5 bytes a pair in all. */
function assembleContacts(residues: number, parts: { window: Window; contacts: Float32Array }[]): Float32Array {
  const out = new Float32Array(residues * residues);
  const count = new Uint8Array(residues * residues);
  for (const { window, contacts } of parts) {
    const n = window.length;
    for (let i = 0; i < n; i++) {
      const row = (window.start + i) * residues + window.start;
      for (let j = 0; j < n; j++) {
        out[row + j] += contacts[i * n + j];
        count[row + j]++;
      }
    }
  }
  for (let k = 0; k < out.length; k++) if (count[k] > 1) out[k] /= count[k];
  return out;
}

function meanOfResidueRows(rows: Float32Array, residues: number, width: number): Float32Array {
  const sum = new Float64Array(width);
  for (let t = 1; t <= residues; t++) for (let d = 0; d < width; d++) sum[d] += rows[t * width + d];
  return Float32Array.from(sum, (s) => s / residues);
}

/**
 * One sequence's result from its windows' results (each computed with `windowWant(want)`), holding
 * exactly what `want` asks for. A single window is returned unchanged.
 */
export function assembleWindows(residues: number, windows: Window[], results: SequenceResult[], want: Want, hiddenSize: number, vocabSize: number): SequenceResult {
  if (windows.length === 1) return results[0];
  const out: SequenceResult = {};
  const zip = <T>(pick: (r: SequenceResult) => T) => windows.map((window, i) => ({ window, value: pick(results[i]) }));
  const hidden: Record<number, Float32Array> = {};
  for (const layer of windowWant(want).hidden ?? []) {
    hidden[layer] = assembleRows(residues, hiddenSize, zip((r) => r.hidden![layer]).map(({ window, value }) => ({ window, rows: value })));
  }
  if (want.hidden) out.hidden = Object.fromEntries(want.hidden.map((l) => [l, hidden[l]]));
  if (want.mean) out.mean = Object.fromEntries(want.mean.map((l) => [l, meanOfResidueRows(hidden[l], residues, hiddenSize)]));
  if (want.bos) {
    out.bos = Object.fromEntries(
      want.bos.map((l) => {
        const sum = new Float64Array(hiddenSize);
        for (const r of results) r.bos![l].forEach((v, d) => (sum[d] += v));
        return [l, Float32Array.from(sum, (s) => s / results.length)];
      }),
    );
  }
  if (want.logits) out.logits = assembleRows(residues, vocabSize, zip((r) => r.logits!).map(({ window, value }) => ({ window, rows: value })));
  if (want.contacts) out.contacts = assembleContacts(residues, zip((r) => r.contacts!).map(({ window, value }) => ({ window, contacts: value })));
  return out;
}
