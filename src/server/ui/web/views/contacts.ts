// Contact map view: the contact head's L × L probabilities from /v1/embed, a threshold slider,
// zoom, the top-L/5 contacts (sequence separation ≥ 6) listed, and downloads.
import { postJson } from '../api.js';
import { legendBar, sequential } from '../colors.js';
import { fmt, h } from '../dom.js';
import { contactMap, MIN_SEPARATION, topContacts } from '../contact-map.js';
import { downloadBar, saveCanvasAsPng, saveCsv, saveJson } from '../downloads.js';
import { fileStem, residuesUsed, slider, summary, truncationNote, type RunContext } from './common.js';

interface EmbedResult {
  model: string;
  results: { length: number; truncated?: boolean; original_length?: number; contacts: number[][] }[];
}

export async function runContacts(ctx: RunContext): Promise<void> {
  const response = await postJson<EmbedResult>('v1/embed', { sequences: [ctx.input.sequence], include: ['contacts'], truncation: ctx.truncation }, ctx.signal);
  const result = response.results[0];
  const values = result.contacts;
  const L = values.length;
  const tokens = residuesUsed(ctx.input, L);
  const top = topContacts(values, Math.max(1, Math.floor(L / 5)));
  const readout = h('p', { class: 'readout', 'aria-live': 'polite' }, 'Hover a cell, or focus the map and use the arrow keys.');
  const map = contactMap(tokens, values, top, readout);
  const count = h('span', { id: 'contacts-above', 'aria-live': 'polite' });
  const showCount = () => (count.textContent = `${map.above()} pairs at or above the threshold`);
  showCount();

  const rows = top.map((c, rank) => {
    const show = h('button', { type: 'button', class: 'secondary', 'aria-label': `Show ${tokens[c.i]}${c.i + 1}–${tokens[c.j]}${c.j + 1} on the map` }, 'show');
    show.addEventListener('click', () => map.focusCell(c.i, c.j));
    return h('tr', {}, h('td', {}, String(rank + 1)), h('td', {}, `${tokens[c.i]}${c.i + 1}`), h('td', {}, `${tokens[c.j]}${c.j + 1}`), h('td', {}, fmt(c.probability)), h('td', {}, show));
  });
  const table = h(
    'table',
    { class: 'data', id: 'top-contacts' },
    h('caption', { class: 'muted' }, `Top L/5 = ${top.length} contacts, |i − j| ≥ ${MIN_SEPARATION} (outlined on the map)`),
    h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'i'), h('th', {}, 'j'), h('th', {}, 'p'), h('th', {}, ''))),
    h('tbody', {}, ...rows),
  );
  const stem = fileStem(ctx.input);
  ctx.container.replaceChildren(
    summary(`Contact map: ${L} × ${L} residues${truncationNote(result, L)}. Model: ${response.model}.`),
    h('div', { class: 'legend' }, h('span', {}, '0'), legendBar(sequential), h('span', {}, '1'), h('span', {}, 'contact probability; below the threshold faded')),
    h(
      'div',
      { class: 'toolbar' },
      slider('contact-threshold', 'Threshold', { min: 0, max: 1, step: 0.01, value: 0.5 }, (v) => v.toFixed(2), (v) => {
        map.setThreshold(v);
        showCount();
      }),
      count,
      slider('contact-zoom', 'Zoom', { min: 1, max: 24, step: 1, value: Math.max(1, Math.min(16, Math.floor(640 / L))) }, (v) => `${v} px`, (v) => map.setZoom(v)),
    ),
    h('div', { class: 'split' }, h('div', {}, map.element, readout), table),
    downloadBar(
      {
        'CSV (matrix)': () => saveCsv(['residue', ...tokens.map((t, j) => `${t}${j + 1}`)], values.map((row, i) => [`${tokens[i]}${i + 1}`, ...row]), `${stem}_contacts.csv`),
        'CSV (top L/5)': () => saveCsv(['i', 'residue_i', 'j', 'residue_j', 'probability'], top.map((c) => [c.i + 1, tokens[c.i], c.j + 1, tokens[c.j], c.probability]), `${stem}_top_contacts.csv`),
        JSON: () => saveJson({ sequence: ctx.input.sequence, model: response.model, contacts: values }, `${stem}_contacts.json`),
        PNG: () => saveCanvasAsPng(map.canvas, `${stem}_contacts.png`),
      },
      ctx.report,
    ),
  );
}
