// What every result view gets, and the controls they share (summary line, labelled sliders).
import type { ParsedSequence } from '../sequence.js';
import { h } from '../dom.js';

export interface RunContext {
  input: ParsedSequence;
  method: string;
  truncation: string;
  signal: AbortSignal;
  /** Where the view draws. */
  container: HTMLElement;
  /** Server progress (done of total). */
  progress(done: number, total: number): void;
  /** Shows an error of a later action (a download, a click) without clearing the result. */
  report(err: unknown): void;
}

/** A file name stem from the FASTA header, or "sequence". */
export function fileStem(input: ParsedSequence): string {
  const stem = (input.name ?? '').split(/\s/)[0].replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[._]+/, '');
  return stem.length > 0 ? stem.slice(0, 60) : 'sequence';
}

/** The residues the server worked on (the first `length` when it truncated). */
export function residuesUsed(input: ParsedSequence, length: number): string[] {
  return input.tokens.slice(0, length);
}

export function summary(...parts: (string | Node)[]): HTMLElement {
  return h('p', { class: 'summary' }, ...parts);
}

/** A labelled range input that calls `onInput` with its value; the value is shown beside it. */
export function slider(
  id: string,
  label: string,
  range: { min: number; max: number; step: number; value: number },
  show: (value: number) => string,
  onInput: (value: number) => void,
): HTMLElement {
  const input = h('input', { type: 'range', id, min: range.min, max: range.max, step: range.step, value: range.value });
  const output = h('output', { for: id, id: `${id}-value` }, show(range.value));
  input.addEventListener('input', () => {
    const value = Number(input.value);
    output.textContent = show(value);
    onInput(value);
  });
  return h('span', { class: 'inline' }, h('label', { for: id }, label), input, output);
}

export function truncationNote(result: { truncated?: boolean; original_length?: number }, length: number): string {
  return result.truncated ? ` (truncated to the first ${length} of ${result.original_length} residues)` : '';
}
