// Line charts as standalone SVG, for the benchmark reports: axes with "nice" ticks (linear, or
// log₂ / log₁₀ for doubling quantities such as concurrency and batch size), axis labels, a title,
// a legend, and one polyline with markers per series. Colours are the Okabe–Ito palette (safe for
// colour-vision deficiencies), and every series also differs in marker shape and dash pattern, so
// no information rests on colour alone. <title>/<desc> make the chart readable by screen readers.

export type MarkerShape = 'circle' | 'square' | 'triangle' | 'diamond' | 'cross' | 'plus';
export type Scale = 'linear' | 'log2' | 'log10';

export interface ChartPoint {
  x: number;
  y: number;
}

export interface Series {
  label: string;
  points: readonly ChartPoint[];
  /** Defaults: the palette, marker shapes and dash patterns in order. */
  color?: string;
  marker?: MarkerShape;
  /** SVG stroke-dasharray ('' = solid). */
  dash?: string;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  /** Longer text for screen readers (<desc>). */
  description?: string;
  width?: number;
  height?: number;
  xScale?: Scale;
  yScale?: Scale;
  /** Tick positions on x (default: nice ticks, or the data's x values on a log₂ axis). */
  xTicks?: readonly number[];
  /** Start a linear y axis at zero (default true). */
  yFromZero?: boolean;
}

/** Okabe & Ito (2008), without the yellow that vanishes on white. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'] as const;
export const MARKERS: readonly MarkerShape[] = ['circle', 'square', 'triangle', 'diamond', 'cross', 'plus'];
export const DASHES = ['', '6 3', '2 3', '8 3 2 3'] as const;

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Compact tick labels: 950, 1.5k, 12k, 2.5M, 0.25. */
export function formatTick(value: number): string {
  const abs = Math.abs(value);
  const trim = (s: string) => (s.includes('.') ? s.replace(/\.?0+$/, '') : s);
  if (abs >= 1e6) return `${trim((value / 1e6).toFixed(abs >= 1e7 ? 0 : 1))}M`;
  if (abs >= 1e4) return `${trim((value / 1e3).toFixed(0))}k`;
  if (abs >= 1e3) return `${trim((value / 1e3).toFixed(1))}k`;
  if (abs >= 1 || abs === 0) return trim(value.toFixed(abs >= 100 ? 0 : 1));
  return trim(value.toPrecision(2));
}

/** 1-2-5 ticks covering [min, max], about `count` of them. */
export function niceTicks(min: number, max: number, count = 6): number[] {
  if (!(max > min)) {
    const v = Number.isFinite(min) ? min : 0;
    return v === 0 ? [0, 1] : [Math.min(0, v), Math.max(0, v)];
  }
  const raw = (max - min) / Math.max(1, count - 1);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  const first = Math.floor(min / step) * step;
  for (let v = first, i = 0; v < max + step * 0.999 && i < 50; v += step, i++) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function logTicks(min: number, max: number, base: 2 | 10): number[] {
  const lo = Math.floor(Math.log(min) / Math.log(base));
  const hi = Math.ceil(Math.log(max) / Math.log(base));
  const ticks: number[] = [];
  for (let e = lo; e <= hi && ticks.length < 60; e++) {
    ticks.push(base ** e);
    if (base === 10 && hi - lo <= 2) ticks.push(2 * 10 ** e, 5 * 10 ** e);
  }
  return ticks.filter((t) => t >= base ** lo && t <= base ** hi).sort((a, b) => a - b);
}

function transform(scale: Scale): (v: number) => number {
  if (scale === 'log2') return (v) => Math.log2(v);
  if (scale === 'log10') return (v) => Math.log10(v);
  return (v) => v;
}

function markerSvg(shape: MarkerShape, x: number, y: number, color: string): string {
  const r = 4;
  const f = (n: number) => n.toFixed(1);
  switch (shape) {
    case 'circle':
      return `<circle cx="${f(x)}" cy="${f(y)}" r="${r}" fill="${color}"/>`;
    case 'square':
      return `<rect x="${f(x - r)}" y="${f(y - r)}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`;
    case 'triangle':
      return `<polygon points="${f(x)},${f(y - r - 1)} ${f(x - r - 1)},${f(y + r)} ${f(x + r + 1)},${f(y + r)}" fill="${color}"/>`;
    case 'diamond':
      return `<polygon points="${f(x)},${f(y - r - 1)} ${f(x + r + 1)},${f(y)} ${f(x)},${f(y + r + 1)} ${f(x - r - 1)},${f(y)}" fill="${color}"/>`;
    case 'cross':
      return `<path d="M${f(x - r)},${f(y - r)}L${f(x + r)},${f(y + r)}M${f(x - r)},${f(y + r)}L${f(x + r)},${f(y - r)}" stroke="${color}" stroke-width="2"/>`;
    case 'plus':
      return `<path d="M${f(x - r - 1)},${f(y)}L${f(x + r + 1)},${f(y)}M${f(x)},${f(y - r - 1)}L${f(x)},${f(y + r + 1)}" stroke="${color}" stroke-width="2"/>`;
  }
}

/** A line chart as a complete SVG document. Points that cannot be drawn (NaN, ≤ 0 on a log axis) are left out. */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 440;
  const xScale = o.xScale ?? 'linear';
  const yScale = o.yScale ?? 'linear';
  const drawable = (p: ChartPoint) =>
    Number.isFinite(p.x) && Number.isFinite(p.y) && (xScale === 'linear' || p.x > 0) && (yScale === 'linear' || p.y > 0);
  const series = o.series.map((s, i) => ({
    label: s.label,
    points: s.points.filter(drawable),
    color: s.color ?? PALETTE[i % PALETTE.length],
    marker: s.marker ?? MARKERS[i % MARKERS.length],
    dash: s.dash ?? DASHES[Math.floor(i / PALETTE.length) % DASHES.length],
  }));
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);

  // Ticks and data ranges.
  let xTicks: number[];
  if (o.xTicks) xTicks = [...o.xTicks].filter((t) => xScale === 'linear' || t > 0);
  else if (xs.length === 0) xTicks = xScale === 'linear' ? [0, 1] : [1, 2];
  else if (xScale === 'log2') xTicks = [...new Set(xs)].sort((a, b) => a - b);
  else if (xScale === 'log10') xTicks = logTicks(Math.min(...xs), Math.max(...xs), 10);
  else xTicks = niceTicks(Math.min(...xs), Math.max(...xs));
  if (xTicks.length === 1) xTicks = xScale === 'linear' ? [xTicks[0] - 1, xTicks[0], xTicks[0] + 1] : [xTicks[0] / 2, xTicks[0], xTicks[0] * 2];
  let yTicks: number[];
  if (ys.length === 0) yTicks = yScale === 'linear' ? [0, 1] : [1, 10];
  else if (yScale === 'linear') yTicks = niceTicks((o.yFromZero ?? true) ? Math.min(0, ...ys) : Math.min(...ys), Math.max(...ys));
  else yTicks = logTicks(Math.min(...ys), Math.max(...ys), yScale === 'log2' ? 2 : 10);
  const tx = transform(xScale);
  const ty = transform(yScale);
  const xDomain = [Math.min(tx(xTicks[0]), ...xs.map(tx)), Math.max(tx(xTicks[xTicks.length - 1]), ...xs.map(tx))];
  const yDomain = [Math.min(ty(yTicks[0]), ...ys.map(ty)), Math.max(ty(yTicks[yTicks.length - 1]), ...ys.map(ty))];

  // Layout: plot area left, legend right.
  const legendWidth = Math.min(260, 40 + 7 * Math.max(8, ...series.map((s) => s.label.length)));
  const margin = { top: 48, right: legendWidth + 16, bottom: 58, left: 78 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const xPad = xScale === 'linear' ? 0 : 0.04 * (xDomain[1] - xDomain[0] || 1);
  const px = (v: number) => margin.left + ((tx(v) - (xDomain[0] - xPad)) / (xDomain[1] - xDomain[0] + 2 * xPad || 1)) * plotW;
  const py = (v: number) => margin.top + plotH - ((ty(v) - yDomain[0]) / (yDomain[1] - yDomain[0] || 1)) * plotH;
  const f = (n: number) => n.toFixed(1);

  const out: string[] = [];
  const titleId = 'chart-title';
  const descId = 'chart-desc';
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${titleId} ${descId}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title id="${titleId}">${escapeXml(o.title)}</title>`,
    `<desc id="${descId}">${escapeXml(o.description ?? `${o.yLabel} against ${o.xLabel}: ${series.map((s) => s.label).join('; ')}`)}</desc>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${f(margin.left)}" y="28" font-size="16" font-weight="bold" fill="#000000">${escapeXml(o.title)}</text>`,
  );
  // Grid and ticks.
  out.push('<g class="grid" stroke="#dddddd" stroke-width="1">');
  for (const t of yTicks) out.push(`<line x1="${f(margin.left)}" y1="${f(py(t))}" x2="${f(margin.left + plotW)}" y2="${f(py(t))}"/>`);
  for (const t of xTicks) out.push(`<line x1="${f(px(t))}" y1="${f(margin.top)}" x2="${f(px(t))}" y2="${f(margin.top + plotH)}"/>`);
  out.push('</g>');
  out.push('<g class="axes" stroke="#000000" stroke-width="1.2">');
  out.push(`<line x1="${f(margin.left)}" y1="${f(margin.top + plotH)}" x2="${f(margin.left + plotW)}" y2="${f(margin.top + plotH)}"/>`);
  out.push(`<line x1="${f(margin.left)}" y1="${f(margin.top)}" x2="${f(margin.left)}" y2="${f(margin.top + plotH)}"/>`);
  for (const t of xTicks) out.push(`<line x1="${f(px(t))}" y1="${f(margin.top + plotH)}" x2="${f(px(t))}" y2="${f(margin.top + plotH + 5)}"/>`);
  for (const t of yTicks) out.push(`<line x1="${f(margin.left - 5)}" y1="${f(py(t))}" x2="${f(margin.left)}" y2="${f(py(t))}"/>`);
  out.push('</g>');
  out.push('<g class="tick-labels" fill="#000000">');
  for (const t of xTicks) out.push(`<text x="${f(px(t))}" y="${f(margin.top + plotH + 19)}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  for (const t of yTicks) out.push(`<text x="${f(margin.left - 9)}" y="${f(py(t) + 4)}" text-anchor="end">${escapeXml(formatTick(t))}</text>`);
  out.push('</g>');
  out.push(
    `<text class="x-label" x="${f(margin.left + plotW / 2)}" y="${f(height - 14)}" text-anchor="middle" font-size="13" fill="#000000">${escapeXml(o.xLabel)}</text>`,
    `<text class="y-label" x="0" y="0" transform="translate(20 ${f(margin.top + plotH / 2)}) rotate(-90)" text-anchor="middle" font-size="13" fill="#000000">${escapeXml(o.yLabel)}</text>`,
  );
  // Series: one polyline each, then its markers.
  series.forEach((s, i) => {
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    out.push(`<g class="series" data-series="${i}"><title>${escapeXml(s.label)}</title>`);
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} stroke-linejoin="round" points="${sorted.map((p) => `${f(px(p.x))},${f(py(p.y))}`).join(' ')}"/>`,
    );
    for (const p of sorted) out.push(markerSvg(s.marker, px(p.x), py(p.y), s.color));
    out.push('</g>');
  });
  // Legend.
  const lx = width - legendWidth - 4;
  out.push(`<g class="legend" font-size="12">`);
  out.push(`<rect x="${f(lx - 8)}" y="${f(margin.top - 6)}" width="${legendWidth}" height="${f(series.length * 20 + 10)}" fill="#ffffff" stroke="#bbbbbb"/>`);
  series.forEach((s, i) => {
    const y = margin.top + 10 + i * 20;
    out.push(`<line x1="${f(lx)}" y1="${f(y)}" x2="${f(lx + 28)}" y2="${f(y)}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(markerSvg(s.marker, lx + 14, y, s.color));
    out.push(`<text x="${f(lx + 36)}" y="${f(y + 4)}" fill="#000000">${escapeXml(s.label)}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}
