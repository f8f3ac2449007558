// Colour scales of the charts. Diverging (scan scores): ColorBrewer RdBu, red for negative
// (the mutant is less likely than the wild type), white at exactly 0, blue for positive — a
// red–blue pair that stays distinct under the common colour-vision deficiencies. Sequential
// (contact probabilities): ColorBrewer Blues, white to dark blue.
export type Rgb = readonly [number, number, number];

const hex = (text: string): Rgb => [parseInt(text.slice(1, 3), 16), parseInt(text.slice(3, 5), 16), parseInt(text.slice(5, 7), 16)];

/** RdBu, most negative first; the middle stop is 0. */
const DIVERGING = ['#67001f', '#b2182b', '#d6604d', '#f4a582', '#fddbc7', '#f7f7f7', '#d1e5f0', '#92c5de', '#4393c3', '#2166ac', '#053061'].map(hex);
const SEQUENTIAL = ['#f7fbff', '#deebf7', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'].map(hex);

function ramp(stops: readonly Rgb[], t: number): Rgb {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const k = Math.min(stops.length - 2, Math.floor(x));
  const f = x - k;
  const [a, b] = [stops[k], stops[k + 1]];
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

/** `value` on a scale symmetric about 0 reaching its darkest at ±`limit`. */
export function diverging(value: number, limit: number): Rgb {
  return ramp(DIVERGING, limit > 0 ? 0.5 + value / (2 * limit) : 0.5);
}

/** `value` in [0, 1]. */
export function sequential(value: number): Rgb {
  return ramp(SEQUENTIAL, value);
}

/** `color` mixed with white: `amount` 0 is white, 1 the colour. */
export function fade(color: Rgb, amount: number): Rgb {
  return [Math.round(255 + (color[0] - 255) * amount), Math.round(255 + (color[1] - 255) * amount), Math.round(255 + (color[2] - 255) * amount)];
}

export const css = ([r, g, b]: Rgb): string => `rgb(${r},${g},${b})`;

/** Black or white, whichever reads better on `background`. */
export function textOn([r, g, b]: Rgb): string {
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? '#000' : '#fff';
}

/** A horizontal colour bar of `scale` over t ∈ [0, 1]. */
export function legendBar(scale: (t: number) => Rgb, width = 160, height = 12): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  canvas.setAttribute('aria-hidden', 'true');
  const ctx = canvas.getContext('2d')!;
  for (let x = 0; x < width; x++) {
    ctx.fillStyle = css(scale(x / (width - 1)));
    ctx.fillRect(x, 0, 1, height);
  }
  return canvas;
}
