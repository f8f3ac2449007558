// Deep mutational scan view: runs the scan through the progress stream (/v1/score/stream) and
// shows the L × 20 heatmap with its legend, zoom and downloads.
import { postEventStream } from '../api.js';
import { diverging, legendBar } from '../colors.js';
import { exposed, fmt, h } from '../dom.js';
import { saveCsv, saveJson, saveSvgsAsPng, downloadBar } from '../downloads.js';
import { mutationName, scanHeatmap, type ScanData } from '../heatmap.js';
import { fileStem, residuesUsed, slider, summary, truncationNote, type RunContext } from './common.js';

interface ScanResult {
  model: string;
  method: string;
  amino_acids: string[];
  matrix: (number | null)[][];
  truncated?: boolean;
  original_length?: number;
}

export async function runScan(ctx: RunContext): Promise<void> {
  const progress: [number, number][] = [];
  exposed.scanProgress = progress;
  const result = await postEventStream<ScanResult>(
    'v1/score/stream',
    { sequence: ctx.input.sequence, method: ctx.method, truncation: ctx.truncation },
    (event, data) => {
      if (event !== 'progress') return;
      const { done, total } = data as { done: number; total: number };
      progress.push([done, total]);
      ctx.progress(done, total);
    },
    ctx.signal,
  );
  const L = result.matrix.length;
  const data: ScanData = { tokens: residuesUsed(ctx.input, L), aminoAcids: result.amino_acids, matrix: result.matrix };
  exposed.scan = { rows: L, cols: result.amino_acids.length, aminoAcids: result.amino_acids, matrix: result.matrix };

  const readout = h('p', { class: 'readout', 'aria-live': 'polite' }, 'Hover a cell, or focus the heatmap and use the arrow keys.');
  const initial = Math.max(4, Math.min(24, Math.floor(1040 / L)));
  const heatmap = scanHeatmap(data, initial, readout);
  const legend = h(
    'div',
    { class: 'legend' },
    h('span', {}, fmt(-heatmap.limit, 2)),
    legendBar((t) => diverging(2 * t - 1, 1)),
    h('span', {}, `+${fmt(heatmap.limit, 2)}`),
    h('span', {}, 'score = log p(mutant) − log p(wild type); red: less likely than the wild type, blue: more; ● wild type'),
  );
  const stem = fileStem(ctx.input);
  const methodName = result.method === 'masked_marginal' ? 'masked marginal' : 'wild-type marginal';
  ctx.container.replaceChildren(
    summary(`Deep mutational scan: ${L} positions × ${result.amino_acids.length} amino acids, ${methodName}${truncationNote(result, L)}. Model: ${result.model}.`),
    legend,
    h('div', { class: 'toolbar' }, slider('scan-zoom', 'Zoom', { min: 3, max: 40, step: 1, value: initial }, (v) => `${v} px`, (v) => heatmap.setZoom(v))),
    heatmap.element,
    readout,
    downloadBar(
      {
        'CSV (matrix)': () =>
          saveCsv(['position', 'wild_type', ...result.amino_acids], result.matrix.map((row, i) => [i + 1, data.tokens[i], ...row.map((v) => v ?? '')]), `${stem}_scan.csv`),
        'CSV (mutations)': () =>
          saveCsv(
            ['mutant', 'position', 'wild_type', 'mutation', 'score'],
            result.matrix.flatMap((row, i) => row.map((v, j) => [mutationName(data, i, j), i + 1, data.tokens[i], result.amino_acids[j], v ?? ''])),
            `${stem}_scan_mutations.csv`,
          ),
        JSON: () => saveJson({ sequence: ctx.input.sequence, ...result }, `${stem}_scan.json`),
        PNG: () => saveSvgsAsPng(heatmap.svgs(), `${stem}_scan.png`),
      },
      ctx.report,
    ),
  );
}
