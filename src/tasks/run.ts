// Runs encoded sequences through the engine, splitting those longer than the window into
// windows (tasks/windows.ts) and assembling their results, so callers see one result per sequence.
import type { SequenceResult, Want } from '../engine/batch.js';
import type { EncodedSequence } from './sequences.js';
import { assembleWindows, windowTokens, windowWant, windowsFor } from './windows.js';

export interface RowOutcome {
  result: SequenceResult;
  /** The replica that ran the row. */
  replica: number;
}

/** Submits rows with one want (optionally pinned to replicas); results in row order. */
export type RowRunner = (rows: { tokens: Int32Array; replica?: number }[], want: Want) => Promise<RowOutcome[]>;

export interface RunOptions {
  windowSize: number;
  hiddenSize: number;
  vocabSize: number;
}

/** One outcome per sequence; a windowed sequence reports the replica of its first window. */
export async function runSequences(run: RowRunner, sequences: readonly { encoded: EncodedSequence; replica?: number }[], want: Want, opts: RunOptions): Promise<RowOutcome[]> {
  const plain: number[] = [];
  const windowed: number[] = [];
  sequences.forEach((s, i) => (s.encoded.length > opts.windowSize ? windowed : plain).push(i));
  const out = new Array<RowOutcome>(sequences.length);

  const plainRun = plain.length
    ? run(plain.map((i) => ({ tokens: sequences[i].encoded.tokens, replica: sequences[i].replica })), want).then((outcomes) => outcomes.forEach((o, k) => (out[plain[k]] = o)))
    : Promise.resolve();

  const layout = windowed.map((i) => windowsFor(sequences[i].encoded.length, opts.windowSize));
  const rows = windowed.flatMap((i, k) => layout[k].map((w) => ({ tokens: windowTokens(sequences[i].encoded.tokens, w) })));
  const windowRun = rows.length
    ? run(rows, windowWant(want)).then((outcomes) => {
        let next = 0;
        windowed.forEach((i, k) => {
          const parts = outcomes.slice(next, next + layout[k].length);
          next += layout[k].length;
          const result = assembleWindows(sequences[i].encoded.length, layout[k], parts.map((p) => p.result), want, opts.hiddenSize, opts.vocabSize);
          out[i] = { result, replica: parts[0].replica };
        });
      })
    : Promise.resolve();

  await Promise.all([plainRun, windowRun]);
  return out;
}
