// The model card: which model, where it came from, its shape, the devices serving it, and a
// warning when the server runs its built-in demo checkpoint (random weights).
import { getJson } from './api.js';
import { byId, h } from './dom.js';

export interface ModelInfo {
  name: string;
  source: string;
  state: string;
  /** "ESM-2", "ESM-1b / ESM-1v" or "ESM C" once the model is loaded. */
  family_name: string | null;
  layers: number | null;
  hidden_size: number | null;
  attention_heads: number | null;
  published_shape: string[] | null;
  parameters: number | null;
  license: { name: string; url: string; non_commercial: boolean } | null;
  vocabulary: string[] | null;
  /** Ids below this are tokens; the rest are placeholders (ESM C: 33 of 64). */
  vocabulary_tokens: number | null;
  max_sequence_length: number;
  precision: string | null;
  devices: { id: number; requested: string; device: string; precision: string | null; state: string; fallback_reason: string | null }[];
  devices_description: string | null;
}

/** The built-in demo model's name starts with this (src/model/demo.ts). */
export const DEMO_PREFIX = 'esm2-demo';

export function renderModelCard(info: ModelInfo): void {
  const facts = byId('model-facts');
  const devices = info.devices.length
    ? info.devices
        .map((d) => `${d.device}${d.precision ? ` ${d.precision}` : ''}${d.device !== d.requested ? ` (asked for ${d.requested})` : ''}: ${d.state}${d.fallback_reason ? ` — ${d.fallback_reason}` : ''}`)
        .join('; ')
    : 'none yet';
  const rows: [string, string][] = [
    ['model', info.name],
    ['source', info.source],
    ['family', info.family_name ?? 'loading'],
    ['shape', info.layers === null ? 'loading' : `${info.layers} layers, ${info.hidden_size} hidden, ${info.attention_heads} heads`],
    ['size', info.parameters === null ? 'loading' : `${(info.parameters / 1e6).toFixed(info.parameters < 1e7 ? 2 : 0)}M parameters${info.published_shape?.length ? ` (the shape of ${info.published_shape.join(' / ')})` : ''}`],
    ['license', info.license ? `${info.license.name}${info.license.non_commercial ? ' — not for commercial use' : ''}` : info.parameters === null ? 'loading' : 'unknown: see the checkpoint\'s model card'],
    ['precision', info.precision ?? '—'],
    ['max residues', String(info.max_sequence_length)], // the family's limit where smaller (ESM-1b: 1022)
    ['devices', info.devices_description ? `${info.devices_description} — ${devices}` : devices],
  ];
  facts.replaceChildren(...rows.flatMap(([term, value]) => [h('dt', {}, term), h('dd', { 'data-fact': term }, value)]));
  byId('model-status').textContent = info.state === 'ready' ? 'Ready.' : `The service is ${info.state}; this card refreshes until it is ready.`;
  const warning = byId('demo-warning');
  warning.hidden = !info.name.startsWith(DEMO_PREFIX);
  warning.textContent =
    'This server runs the built-in demo model with random weights: its outputs mean nothing. ' +
    'Start the server with MODEL_NAME set to a trained ESM-2 checkpoint for real predictions.';
}

export function loadModelInfo(): Promise<ModelInfo> {
  return getJson<ModelInfo>('v1/models');
}
