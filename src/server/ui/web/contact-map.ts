// The contact map: an L × L canvas heatmap of contact probabilities (sequential blue scale) with
// a threshold: cells at or above it in full colour, the rest faded. The strongest contacts at
// sequence separation ≥ 6 (the top L/5) are outlined. A canvas, not SVG, since L² cells reach a
// million; what is drawn is exposed as window.esm2ui.contacts (rows, cols, values, threshold,
// above) and the canvas carries data-rows and data-cols. Hover or arrow keys read out a cell.
import { fade, sequential } from './colors.js';
import { exposed, fmt, h, hideTooltip, showTooltip } from './dom.js';

export interface Contact {
  i: number;
  j: number;
  probability: number;
}

export interface ContactMap {
  element: HTMLElement;
  canvas: HTMLCanvasElement;
  setThreshold(threshold: number): void;
  setZoom(cellSize: number): void;
  /** Moves the cursor to a cell (0-based) and reads it out. */
  focusCell(i: number, j: number): void;
  /** Cells i < j at or above the threshold. */
  above(): number;
}

/** Residue pairs closer than this in sequence are trivially in contact and not listed. */
export const MIN_SEPARATION = 6;
const MARGIN = 34;
const FONT = '10px Arial, Helvetica, sans-serif';

/** The `count` most probable pairs i < j with j − i ≥ MIN_SEPARATION, most probable first. */
export function topContacts(values: readonly (readonly number[])[], count: number): Contact[] {
  const pairs: Contact[] = [];
  for (let i = 0; i < values.length; i++) for (let j = i + MIN_SEPARATION; j < values.length; j++) pairs.push({ i, j, probability: values[i][j] });
  return pairs.sort((a, b) => b.probability - a.probability || a.i - b.i || a.j - b.j).slice(0, count);
}

export function contactMap(tokens: readonly string[], values: readonly (readonly number[])[], top: readonly Contact[], readout: HTMLElement): ContactMap {
  const L = values.length;
  let threshold = 0.5;
  let cell = Math.max(1, Math.min(16, Math.floor(640 / L)));
  let cursor: { i: number; j: number } | undefined;
  const bitmap = document.createElement('canvas');
  bitmap.width = L;
  bitmap.height = L;
  const canvas = h('canvas', { id: 'contact-map', 'data-rows': L, 'data-cols': L, 'aria-hidden': 'true' });
  const scroller = h('div', {
    class: 'scroller',
    tabindex: 0,
    role: 'application',
    'aria-roledescription': 'contact map',
    'aria-label': `Contact map, ${L} × ${L} residues. Arrow keys move between cells.`,
  }, canvas);
  const element = h('div', { class: 'chart' }, scroller);
  const model = { rows: L, cols: L, values, threshold, above: 0, top };
  exposed.contacts = model;

  const paintBitmap = () => {
    const image = bitmap.getContext('2d')!.createImageData(L, L);
    let above = 0;
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) {
        const p = values[i][j];
        const color = p >= threshold ? sequential(p) : fade(sequential(p), 0.25);
        if (p >= threshold && i < j) above++;
        const k = 4 * (i * L + j);
        image.data.set([color[0], color[1], color[2], 255], k);
      }
    }
    bitmap.getContext('2d')!.putImageData(image, 0, 0);
    model.threshold = threshold;
    model.above = above;
  };

  const step = () => [1, 2, 5, 10, 20, 50, 100, 200].find((s) => s * cell >= 24) ?? 500;

  const draw = () => {
    const size = L * cell;
    canvas.width = size + MARGIN + 2;
    canvas.height = size + MARGIN + 2;
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(bitmap, MARGIN, MARGIN, size, size);
    ctx.strokeStyle = '#8c959f';
    ctx.strokeRect(MARGIN - 0.5, MARGIN - 0.5, size + 1, size + 1);
    ctx.fillStyle = '#1b1f24';
    ctx.font = FONT;
    const every = step();
    for (let k = 0; k < L; k++) {
      if (k !== 0 && (k + 1) % every !== 0) continue;
      const at = MARGIN + (k + 0.5) * cell;
      ctx.textAlign = 'center';
      ctx.fillText(String(k + 1), at, MARGIN - 8);
      ctx.textAlign = 'right';
      ctx.fillText(String(k + 1), MARGIN - 4, at + 3);
    }
    if (cell >= 3) {
      ctx.strokeStyle = '#d14900';
      ctx.lineWidth = 1.5;
      for (const c of top) ctx.strokeRect(MARGIN + c.j * cell + 0.75, MARGIN + c.i * cell + 0.75, cell - 1.5, cell - 1.5);
    }
    if (cursor) {
      ctx.strokeStyle = '#000';
      ctx.lineWidth = 2;
      ctx.strokeRect(MARGIN + cursor.j * cell - 1, MARGIN + cursor.i * cell - 1, cell + 2, cell + 2);
    }
  };

  const describe = (i: number, j: number) => `${tokens[i]}${i + 1} – ${tokens[j]}${j + 1}\np = ${fmt(values[i][j])}`;
  const cellAt = (event: MouseEvent) => {
    const box = canvas.getBoundingClientRect();
    const j = Math.floor((event.clientX - box.left - MARGIN) / cell);
    const i = Math.floor((event.clientY - box.top - MARGIN) / cell);
    return i >= 0 && j >= 0 && i < L && j < L ? { i, j } : undefined;
  };

  const focusCell = (i: number, j: number) => {
    cursor = { i: Math.min(L - 1, Math.max(0, i)), j: Math.min(L - 1, Math.max(0, j)) };
    draw();
    readout.textContent = describe(cursor.i, cursor.j).replace('\n', ' — ');
    const x = MARGIN + cursor.j * cell;
    const y = MARGIN + cursor.i * cell;
    if (x < scroller.scrollLeft || x > scroller.scrollLeft + scroller.clientWidth - cell) scroller.scrollLeft = x - scroller.clientWidth / 2;
    if (y < scroller.scrollTop || y > scroller.scrollTop + scroller.clientHeight - cell) scroller.scrollTop = y - scroller.clientHeight / 2;
    const box = canvas.getBoundingClientRect();
    showTooltip(describe(cursor.i, cursor.j), box.left + x + cell, box.top + y);
  };

  canvas.addEventListener('mousemove', (event) => {
    const at = cellAt(event);
    if (at) showTooltip(describe(at.i, at.j), event.clientX, event.clientY);
    else hideTooltip();
  });
  canvas.addEventListener('mouseleave', hideTooltip);
  canvas.addEventListener('click', (event) => {
    const at = cellAt(event);
    if (at) focusCell(at.i, at.j);
  });
  scroller.addEventListener('blur', hideTooltip);
  scroller.addEventListener('keydown', (event) => {
    const { i, j } = cursor ?? { i: 0, j: 0 };
    const moves: Record<string, [number, number]> = {
      ArrowLeft: [i, j - 1], ArrowRight: [i, j + 1], ArrowUp: [i - 1, j], ArrowDown: [i + 1, j],
      PageUp: [i - 10, j], PageDown: [i + 10, j], Home: [i, 0], End: [i, L - 1],
    };
    const next = moves[event.key];
    if (!next) return;
    event.preventDefault();
    if (cursor) focusCell(next[0], next[1]);
    else focusCell(0, 0);
  });

  paintBitmap();
  draw();
  return {
    element,
    canvas,
    setThreshold(value: number) {
      threshold = value;
      paintBitmap();
      draw();
    },
    setZoom(size: number) {
      cell = size;
      draw();
    },
    focusCell,
    above: () => model.above,
  };
}
