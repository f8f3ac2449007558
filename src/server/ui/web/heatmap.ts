// The deep mutational scan as an SVG heatmap: one column per position, one row per amino acid
// (the API's column order), coloured on a diverging scale centred at 0, the wild type marked with a
// dot. Every cell is a <rect> carrying data-i (0-based position), data-j (amino-acid column),
// data-pos, data-aa and data-value (the API's number, unrounded). Hover or arrow keys show the
// mutation and its score; zoom changes the cell width, and the body scrolls for long proteins.
import { diverging, css } from './colors.js';
import { fmt, h, hideTooltip, s, showTooltip } from './dom.js';

export interface ScanData {
  /** Residue tokens, one per position. */
  tokens: readonly string[];
  /** Column order of `matrix` (the 20 standard amino acids). */
  aminoAcids: readonly string[];
  /** L × 20 scores; null where the server had no number. */
  matrix: readonly (readonly (number | null)[])[];
}

export interface ScanHeatmap {
  element: HTMLElement;
  /** The axis and body SVGs, for the PNG download. */
  svgs(): SVGSVGElement[];
  setZoom(cellWidth: number): void;
  /** Largest |score| off the wild type: the scale's ends. */
  limit: number;
}

const ROW = 16;
const TOP = 36;
const AXIS = 28;
const FONT = { 'font-family': 'Arial, Helvetica, sans-serif', 'font-size': 10 };

/** A label step that keeps position numbers from overlapping. */
function labelStep(cellWidth: number): number {
  return [1, 2, 5, 10, 20, 50, 100, 200, 500].find((step) => step * cellWidth >= 26) ?? 1000;
}

export function mutationName(data: ScanData, i: number, j: number): string {
  return `${data.tokens[i]}${i + 1}${data.aminoAcids[j]}`;
}

export function scanHeatmap(data: ScanData, initialCellWidth: number, readout: HTMLElement): ScanHeatmap {
  const L = data.matrix.length;
  const A = data.aminoAcids.length;
  let limit = 0;
  data.matrix.forEach((row, i) => row.forEach((v, j) => v !== null && data.aminoAcids[j] !== data.tokens[i] && (limit = Math.max(limit, Math.abs(v)))));
  const height = TOP + A * ROW + 2;

  const axis = s('svg', { width: AXIS, height, class: 'axis', 'aria-hidden': 'true' });
  axis.append(s('text', { x: AXIS - 4, y: 28, 'text-anchor': 'end', ...FONT, fill: '#4d5661' }, 'wt'));
  data.aminoAcids.forEach((aa, j) =>
    axis.append(s('text', { x: AXIS - 6, y: TOP + j * ROW + ROW / 2 + 4, 'text-anchor': 'end', ...FONT, 'font-size': 11, fill: '#1b1f24' }, aa)),
  );
  const scroller = h('div', {
    class: 'scroller',
    tabindex: 0,
    role: 'application',
    'aria-roledescription': 'heatmap',
    'aria-label': `Mutational scan heatmap, ${L} positions × ${A} amino acids. Arrow keys move between cells; Page Up and Page Down jump 10 positions.`,
  });
  const element = h('div', { class: 'chart' }, axis, scroller);
  let body = s('svg');
  let cursor: { i: number; j: number } | undefined;
  let cellWidth = initialCellWidth;

  const draw = () => {
    body = s('svg', { width: L * cellWidth + 2, height, id: 'scan-heatmap', 'data-rows': L, 'data-cols': A });
    const step = labelStep(cellWidth);
    const labels = s('g', { ...FONT, fill: '#1b1f24', 'text-anchor': 'middle' });
    for (let i = 0; i < L; i++) {
      if ((i + 1) % step === 0 || i === 0) labels.append(s('text', { x: (i + 0.5) * cellWidth, y: 12 }, String(i + 1)));
      if (cellWidth >= 8) labels.append(s('text', { x: (i + 0.5) * cellWidth, y: 28, 'font-weight': 'bold' }, data.tokens[i].length === 1 ? data.tokens[i] : '·'));
    }
    const cells = s('g');
    const marks = s('g', { fill: '#000', 'pointer-events': 'none' });
    data.matrix.forEach((row, i) =>
      row.forEach((v, j) => {
        const wt = data.aminoAcids[j] === data.tokens[i];
        const value = v ?? Number.NaN;
        cells.append(
          s('rect', {
            x: i * cellWidth,
            y: TOP + j * ROW,
            width: cellWidth,
            height: ROW,
            fill: Number.isNaN(value) ? '#bbb' : css(diverging(value, limit)),
            'data-i': i,
            'data-j': j,
            'data-pos': i + 1,
            'data-aa': data.aminoAcids[j],
            'data-value': String(value),
            ...(wt ? { 'data-wt': 'true' } : {}),
          }),
        );
        if (wt) marks.append(s('circle', { cx: (i + 0.5) * cellWidth, cy: TOP + (j + 0.5) * ROW, r: Math.max(1.2, Math.min(cellWidth, ROW) * 0.18) }));
      }),
    );
    const box = s('rect', { class: 'cursor', fill: 'none', stroke: '#000', 'stroke-width': 2, width: cellWidth, height: ROW, visibility: 'hidden', 'pointer-events': 'none' });
    body.append(labels, cells, marks, box);
    scroller.replaceChildren(body);
    if (cursor) moveTo(cursor.i, cursor.j, false);
  };

  const describe = (i: number, j: number): string => {
    const v = data.matrix[i][j];
    const wt = data.aminoAcids[j] === data.tokens[i];
    return `${mutationName(data, i, j)}${wt ? ' (wild type)' : ''}\nscore ${v === null ? 'n/a' : fmt(v)}`;
  };

  function moveTo(i: number, j: number, announce = true): void {
    cursor = { i: Math.min(L - 1, Math.max(0, i)), j: Math.min(A - 1, Math.max(0, j)) };
    const box = body.querySelector('rect.cursor')!;
    box.setAttribute('x', String(cursor.i * cellWidth));
    box.setAttribute('y', String(TOP + cursor.j * ROW));
    box.setAttribute('visibility', 'visible');
    if (!announce) return;
    readout.textContent = describe(cursor.i, cursor.j).replace('\n', ' — ');
    const left = cursor.i * cellWidth;
    if (left < scroller.scrollLeft || left + cellWidth > scroller.scrollLeft + scroller.clientWidth) scroller.scrollLeft = left - scroller.clientWidth / 2;
    const rect = box.getBoundingClientRect();
    showTooltip(describe(cursor.i, cursor.j), rect.right, rect.top);
  }

  scroller.addEventListener('mousemove', (event) => {
    const cell = (event.target as Element).closest('rect[data-value]');
    if (!cell) return hideTooltip();
    showTooltip(describe(Number(cell.getAttribute('data-i')), Number(cell.getAttribute('data-j'))), event.clientX, event.clientY);
  });
  scroller.addEventListener('mouseleave', hideTooltip);
  scroller.addEventListener('blur', hideTooltip);
  scroller.addEventListener('click', (event) => {
    const cell = (event.target as Element).closest('rect[data-value]');
    if (cell) moveTo(Number(cell.getAttribute('data-i')), Number(cell.getAttribute('data-j')));
  });
  scroller.addEventListener('keydown', (event) => {
    const { i, j } = cursor ?? { i: 0, j: 0 };
    const moves: Record<string, [number, number]> = {
      ArrowLeft: [i - 1, j], ArrowRight: [i + 1, j], ArrowUp: [i, j - 1], ArrowDown: [i, j + 1],
      PageUp: [i - 10, j], PageDown: [i + 10, j], Home: [0, j], End: [L - 1, j],
    };
    const next = moves[event.key];
    if (!next) return;
    event.preventDefault();
    moveTo(cursor ? next[0] : 0, cursor ? next[1] : 0);
  });

  draw();
  return {
    element,
    svgs: () => [axis, body],
    setZoom(width: number) {
      cellWidth = width;
      draw();
    },
    limit,
  };
}
