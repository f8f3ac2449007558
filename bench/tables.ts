// Plain-text and Markdown tables for the benchmark reports. Columns whose cells look numeric are
// right-aligned.

const NUMERIC = /^[-+]?[\d,.]+(?:\s*%)?$|^–$/;

function rightAligned(rows: readonly (readonly string[])[], column: number): boolean {
  const cells = rows.map((r) => r[column] ?? '').filter((c) => c !== '');
  return cells.length > 0 && cells.every((c) => NUMERIC.test(c));
}

/** A fixed-width table for a terminal. */
export function textTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const right = headers.map((_, i) => rightAligned(rows, i));
  const line = (cells: readonly string[]) => cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A GitHub-flavoured Markdown table. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const right = headers.map((_, i) => rightAligned(rows, i));
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [
    `| ${headers.map(esc).join(' | ')} |`,
    `|${right.map((r) => (r ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${headers.map((_, i) => esc(r[i] ?? '')).join(' | ')} |`),
  ].join('\n');
}
