// Small DOM helpers shared by the page's modules: element builders, number formatting, the one
// tooltip, and the window.esm2ui object through which tests (and curious users) read what is drawn.
const SVG_NS = 'http://www.w3.org/2000/svg';

type Attrs = Record<string, string | number | boolean | undefined>;

function setAttrs(el: Element, attrs: Attrs): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
}

/** An HTML element with attributes and children (strings become text). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  el.append(...children);
  return el;
}

/** An SVG element with attributes. */
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  el.append(...children);
  return el;
}

/** A number for people: fixed digits and a real minus sign. */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toFixed(digits).replace('-', '−');
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** Shows the page's tooltip near (x, y) in viewport coordinates. */
export function showTooltip(text: string, x: number, y: number): void {
  const tip = byId('tooltip');
  tip.textContent = text;
  tip.hidden = false;
  const { width, height } = tip.getBoundingClientRect();
  const left = Math.min(x + 14, window.innerWidth - width - 4);
  const top = y + 16 + height > window.innerHeight ? y - height - 8 : y + 16;
  tip.style.left = `${Math.max(4, left)}px`;
  tip.style.top = `${Math.max(4, top)}px`;
}

export function hideTooltip(): void {
  byId('tooltip').hidden = true;
}

/** What the page has drawn, readable as window.esm2ui (tests compare it with the API). */
export const exposed: Record<string, unknown> = {};
Object.assign(globalThis, { esm2ui: exposed });

/** The 1-based position label of a residue: "K2". */
export const residueLabel = (tokens: readonly string[], i: number): string => `${tokens[i]}${i + 1}`;
