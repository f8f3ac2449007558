// Embedding view: the mean of the last layer over the residues (/v1/embed), plotted per
// dimension; downloads as JSON, CSV, PNG, or safetensors (mean and per-residue rows of the last
// layer, straight from the server with Accept: application/octet-stream).
import { postForBlob, postJson } from '../api.js';
import { exposed, fmt, h } from '../dom.js';
import { downloadBar, saveBlob, saveCsv, saveJson, saveSvgsAsPng } from '../downloads.js';
import { linePlot } from '../line-plot.js';
import { fileStem, summary, truncationNote, type RunContext } from './common.js';

interface EmbedResult {
  model: string;
  results: { length: number; truncated?: boolean; original_length?: number; representations: Record<string, { mean: number[] }> }[];
}

export async function runEmbed(ctx: RunContext): Promise<void> {
  const request = { sequences: [ctx.input.sequence], include: ['mean'], repr_layers: [-1], truncation: ctx.truncation };
  const response = await postJson<EmbedResult>('v1/embed', request, ctx.signal);
  const result = response.results[0];
  const [layer, { mean }] = Object.entries(result.representations)[0];
  exposed.embedding = { layer: Number(layer), dimensions: mean.length, mean };
  const readout = h('p', { class: 'readout', 'aria-live': 'polite' });
  const plot = linePlot(
    {
      id: 'embedding-plot',
      values: mean,
      describe: (k) => `dimension ${k}\n${fmt(mean[k], 4)}`,
      base: 0,
      xLabel: 'dimension',
      yLabel: 'value',
      ariaLabel: `Mean embedding, ${mean.length} dimensions.`,
    },
    readout,
  );
  const stem = fileStem(ctx.input);
  ctx.container.replaceChildren(
    summary(`Mean embedding of layer ${layer} (the last) over ${result.length} residues${truncationNote(result, result.length)}: ${mean.length} dimensions. Model: ${response.model}.`),
    plot.element,
    readout,
    downloadBar(
      {
        JSON: () => saveJson({ sequence: ctx.input.sequence, model: response.model, layer: Number(layer), mean }, `${stem}_embedding.json`),
        CSV: () => saveCsv(['dimension', 'value'], mean.map((v, k) => [k, v]), `${stem}_embedding.csv`),
        PNG: () => saveSvgsAsPng(plot.svgs(), `${stem}_embedding.png`),
        'safetensors (mean + per residue)': async () =>
          saveBlob(
            await postForBlob('v1/embed', { ...request, include: ['mean', 'per_residue'] }, 'application/octet-stream'),
            `${stem}_embedding.safetensors`,
          ),
      },
      ctx.report,
    ),
  );
}
