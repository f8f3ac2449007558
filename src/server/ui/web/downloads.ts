// Downloads of results: CSV and JSON text, binary bodies (safetensors), and charts as PNG (SVG
// charts are drawn onto a canvas first; canvas charts are saved as they are).
import { h } from './dom.js';

export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function saveText(text: string, filename: string, type: string): void {
  saveBlob(new Blob([text], { type }), filename);
}

export function saveJson(value: unknown, filename: string): void {
  saveText(`${JSON.stringify(value, null, 1)}\n`, filename, 'application/json');
}

/** One CSV field, quoted when it must be. */
function field(value: string | number): string {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csv(header: readonly (string | number)[], rows: readonly (readonly (string | number)[])[]): string {
  return [header, ...rows].map((row) => row.map(field).join(',')).join('\n') + '\n';
}

export function saveCsv(header: readonly (string | number)[], rows: readonly (readonly (string | number)[])[], filename: string): void {
  saveText(csv(header, rows), filename, 'text/csv');
}

function loadImage(url: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error('the chart could not be drawn as an image'));
    image.src = url;
  });
}

/** SVG charts side by side (e.g. an axis and its scrolling body) on a white PNG. */
export async function saveSvgsAsPng(svgs: readonly SVGSVGElement[], filename: string, scale = 2): Promise<void> {
  const sizes = svgs.map((svg) => ({ width: Number(svg.getAttribute('width')), height: Number(svg.getAttribute('height')) }));
  const canvas = document.createElement('canvas');
  canvas.width = Math.ceil(sizes.reduce((sum, s) => sum + s.width, 0) * scale);
  canvas.height = Math.ceil(Math.max(...sizes.map((s) => s.height)) * scale);
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  let x = 0;
  for (let k = 0; k < svgs.length; k++) {
    const copy = svgs[k].cloneNode(true) as SVGSVGElement;
    copy.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
    const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(copy)], { type: 'image/svg+xml' }));
    try {
      const image = await loadImage(url);
      ctx.drawImage(image, x * scale, 0, sizes[k].width * scale, sizes[k].height * scale);
    } finally {
      URL.revokeObjectURL(url);
    }
    x += sizes[k].width;
  }
  await saveCanvasAsPng(canvas, filename);
}

export function saveCanvasAsPng(canvas: HTMLCanvasElement, filename: string): Promise<void> {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => {
      if (!blob) return reject(new Error('the chart could not be encoded as PNG'));
      saveBlob(blob, filename);
      resolve();
    }, 'image/png'),
  );
}

/** A row of download buttons: label → action (errors are shown by `onError`). */
export function downloadBar(actions: Record<string, () => void | Promise<void>>, onError: (err: unknown) => void): HTMLElement {
  const bar = h('div', { class: 'downloads', role: 'group', 'aria-label': 'Downloads' });
  for (const [label, action] of Object.entries(actions)) {
    const button = h('button', { type: 'button', class: 'secondary', 'data-download': label }, `⬇ ${label}`);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await action();
      } catch (err) {
        onError(err);
      } finally {
        button.disabled = false;
      }
    });
    bar.append(button);
  }
  return bar;
}
