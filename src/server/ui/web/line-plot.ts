// A line plot of one value per index (per-residue log-likelihood, an embedding's dimensions) in
// SVG: the y axis stays put while the body scrolls; every point is a <circle> with data-i and
// data-value. Hover shows a point; click, or Enter after arrow keys, selects it (onSelect).
import { exposed, fmt, h, hideTooltip, s, showTooltip } from './dom.js';

export interface LinePlotOptions {
  id: string;
  values: readonly number[];
  /** Tooltip and readout text of point i. */
  describe(i: number): string;
  /** Label under x ticks (e.g. "position"). */
  xLabel: string;
  yLabel: string;
  ariaLabel: string;
  /** The number shown for index 0 on the x axis: 1 for positions (default), 0 for dimensions. */
  base?: 0 | 1;
  onSelect?(i: number): void;
}

export interface LinePlot {
  element: HTMLElement;
  svgs(): SVGSVGElement[];
  select(i: number): void;
}

const HEIGHT = 230;
const TOP = 12;
const BOTTOM = 40;
const AXIS = 62;
const FONT = { 'font-family': 'Arial, Helvetica, sans-serif', 'font-size': 10 };

/** About five round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((v) => v >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}

export function linePlot(options: LinePlotOptions, readout: HTMLElement): LinePlot {
  const { values } = options;
  const n = values.length;
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const pad = (hi - lo) * 0.06 || 1;
  const [y0, y1] = [lo - pad, hi + pad];
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const y = (v: number) => TOP + ((y1 - v) / (y1 - y0)) * plotHeight;
  const dx = Math.max(3, Math.min(16, 1000 / n));
  const x = (i: number) => 8 + (i + 0.5) * dx;
  const width = Math.ceil(x(n - 1) + dx / 2 + 8);
  const ticks = niceTicks(y0, y1);

  const axis = s('svg', { width: AXIS, height: HEIGHT, class: 'axis', 'aria-hidden': 'true' });
  const yTitle = s('text', { ...FONT, 'text-anchor': 'middle', transform: `translate(12 ${TOP + plotHeight / 2}) rotate(-90)`, fill: '#4d5661' }, options.yLabel);
  axis.append(yTitle, s('line', { x1: AXIS - 1, x2: AXIS - 1, y1: TOP, y2: TOP + plotHeight, stroke: '#8c959f' }));
  for (const t of ticks) axis.append(s('text', { ...FONT, x: AXIS - 6, y: y(t) + 3, 'text-anchor': 'end', fill: '#1b1f24' }, fmt(t, Math.abs(t) >= 10 ? 0 : 1)));

  const body = s('svg', { width, height: HEIGHT, id: options.id, 'data-points': n });
  const grid = s('g', { stroke: '#eaeef2' });
  for (const t of ticks) grid.append(s('line', { x1: 0, x2: width, y1: y(t), y2: y(t) }));
  const every = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000].find((k) => k * dx >= 30) ?? 2000;
  const xTicks = s('g', { ...FONT, 'text-anchor': 'middle', fill: '#1b1f24' });
  const base = options.base ?? 1;
  for (let i = 0; i < n; i++) if (i === 0 || (i + base) % every === 0) xTicks.append(s('text', { x: x(i), y: TOP + plotHeight + 14 }, String(i + base)));
  xTicks.append(s('text', { x: 8, y: TOP + plotHeight + 32, 'text-anchor': 'start', fill: '#4d5661' }, options.xLabel));
  const path = values.map((v, i) => (Number.isFinite(v) ? `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)}` : '')).join(' ');
  const points = s('g', { fill: '#0b5cad' });
  values.forEach((v, i) => points.append(s('circle', { cx: x(i), cy: y(v), r: Math.min(3, dx / 2), 'data-i': i, 'data-value': String(v) })));
  const marker = s('line', { y1: TOP, y2: TOP + plotHeight, stroke: '#d14900', 'stroke-width': 2, visibility: 'hidden', 'pointer-events': 'none' });
  body.append(grid, xTicks, s('path', { d: path, fill: 'none', stroke: '#0b5cad', 'stroke-width': 1.5 }), points, marker);

  const scroller = h('div', { class: 'scroller', tabindex: 0, role: 'application', 'aria-label': `${options.ariaLabel} Arrow keys move between points; Enter selects.` }, body);
  const element = h('div', { class: 'chart' }, axis, scroller);
  let current: number | undefined;

  const indexAt = (event: MouseEvent) => {
    const i = Math.floor((event.clientX - body.getBoundingClientRect().left - 8) / dx);
    return i >= 0 && i < n ? i : undefined;
  };
  const mark = (i: number) => {
    current = Math.min(n - 1, Math.max(0, i));
    marker.setAttribute('x1', String(x(current)));
    marker.setAttribute('x2', String(x(current)));
    marker.setAttribute('visibility', 'visible');
    readout.textContent = options.describe(current).replace(/\n/g, ' — ');
    const left = x(current);
    if (left < scroller.scrollLeft || left > scroller.scrollLeft + scroller.clientWidth) scroller.scrollLeft = left - scroller.clientWidth / 2;
    exposed[`${options.id}-selected`] = current;
  };
  const select = (i: number) => {
    mark(i);
    options.onSelect?.(current!);
  };

  body.addEventListener('mousemove', (event) => {
    const i = indexAt(event);
    if (i === undefined) return hideTooltip();
    showTooltip(options.describe(i), event.clientX, event.clientY);
  });
  body.addEventListener('mouseleave', hideTooltip);
  body.addEventListener('click', (event) => {
    const i = indexAt(event);
    if (i !== undefined) select(i);
  });
  scroller.addEventListener('keydown', (event) => {
    const i = current ?? -1;
    const next: Record<string, number> = { ArrowLeft: i - 1, ArrowRight: i + 1, PageUp: i - 10, PageDown: i + 10, Home: 0, End: n - 1 };
    if (event.key === 'Enter' && current !== undefined) {
      event.preventDefault();
      select(current);
    } else if (event.key in next) {
      event.preventDefault();
      mark(Math.max(0, next[event.key]));
    }
  });
  return { element, svgs: () => [axis, body], select };
}
