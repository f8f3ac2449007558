// Per-residue view: log p(true residue | it masked) at every position from /v1/pll (per_position),
// as a line plot; clicking a position (or Enter on it) asks /v1/fill-mask what the model would put
// there, the top-k listed with the wild type marked.
import { postJson } from '../api.js';
import { exposed, fmt, h } from '../dom.js';
import { downloadBar, saveCsv, saveJson, saveSvgsAsPng } from '../downloads.js';
import { linePlot } from '../line-plot.js';
import { withMask } from '../sequence.js';
import { fileStem, residuesUsed, summary, truncationNote, type RunContext } from './common.js';

interface PllResult {
  model: string;
  results: { length: number; pseudo_log_likelihood: number; pseudo_perplexity: number; per_position: number[]; truncated?: boolean; original_length?: number }[];
}

interface FillMaskResult {
  predictions: { position: number; tokens: { token: string; probability: number }[] }[];
}

const TOP_K = 10;

export async function runResidues(ctx: RunContext): Promise<void> {
  const response = await postJson<PllResult>('v1/pll', { sequences: [ctx.input.sequence], per_position: true, truncation: ctx.truncation }, ctx.signal);
  const result = response.results[0];
  const values = result.per_position;
  const L = values.length;
  const tokens = residuesUsed(ctx.input, L);
  exposed.residues = { points: L, values, pseudo_log_likelihood: result.pseudo_log_likelihood };
  const stem = fileStem(ctx.input);

  const panel = h('div', { id: 'fill-mask', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Click a position in the plot (or use the arrow keys and Enter) to see the model’s top amino acids there.'));
  const position = h('input', { type: 'number', id: 'fill-position', min: 1, max: L, value: 1 });
  const predict = h('button', { type: 'button', id: 'fill-run' }, 'Predict');
  let lastPrediction: unknown;

  const fill = async (i: number) => {
    position.value = String(i + 1);
    panel.replaceChildren(h('p', { class: 'muted' }, `Predicting position ${i + 1}…`));
    try {
      // The same sequence (and truncation) with only residue i masked.
      const answer = await postJson<FillMaskResult>('v1/fill-mask', { sequence: withMask(ctx.input.tokens, i), top_k: TOP_K, truncation: ctx.truncation });
      const ranked = (answer.predictions.find((p) => p.position === i + 1) ?? answer.predictions[0]).tokens;
      lastPrediction = { position: i + 1, wild_type: tokens[i], tokens: ranked };
      exposed.fillMask = lastPrediction;
      panel.replaceChildren(
        h(
          'table',
          { class: 'data', id: 'fill-mask-table' },
          h('caption', { class: 'muted' }, `Position ${i + 1} (wild type ${tokens[i]}), masked: top ${ranked.length}`),
          h('thead', {}, h('tr', {}, h('th', {}, 'amino acid'), h('th', {}, 'probability'))),
          h('tbody', {}, ...ranked.map((t) => h('tr', t.token === tokens[i] ? { class: 'wt' } : {}, h('td', {}, t.token === tokens[i] ? `${t.token} (wild type)` : t.token), h('td', {}, fmt(t.probability))))),
        ),
      );
    } catch (err) {
      panel.replaceChildren();
      ctx.report(err);
    }
  };
  predict.addEventListener('click', () => {
    const p = Number(position.value);
    if (Number.isInteger(p) && p >= 1 && p <= L) plot.select(p - 1);
  });

  const readout = h('p', { class: 'readout', 'aria-live': 'polite' });
  const plot = linePlot(
    {
      id: 'pll-plot',
      values,
      describe: (i) => `${tokens[i]}${i + 1}\nlog p = ${fmt(values[i])}`,
      xLabel: 'position',
      yLabel: 'log p(residue | masked)',
      ariaLabel: `Log-likelihood of each of the ${L} residues with it masked.`,
      onSelect: (i) => void fill(i),
    },
    readout,
  );
  ctx.container.replaceChildren(
    summary(
      `Pseudo-log-likelihood ${fmt(result.pseudo_log_likelihood)} over ${L} residues${truncationNote(result, L)}, `,
      `pseudo-perplexity ${fmt(result.pseudo_perplexity)}. Model: ${response.model}.`,
    ),
    h('div', { class: 'split' }, h('div', {}, plot.element, readout), h('div', {}, h('div', { class: 'toolbar' }, h('label', { for: 'fill-position' }, 'Position'), position, predict), panel)),
    downloadBar(
      {
        CSV: () => saveCsv(['position', 'residue', 'log_prob'], values.map((v, i) => [i + 1, tokens[i], v]), `${stem}_pll.csv`),
        JSON: () => saveJson({ sequence: ctx.input.sequence, model: response.model, ...result }, `${stem}_pll.json`),
        PNG: () => saveSvgsAsPng(plot.svgs(), `${stem}_pll.png`),
        'JSON (fill-mask)': () => saveJson(lastPrediction ?? {}, `${stem}_fill_mask.json`),
      },
      ctx.report,
    ),
  );
}
