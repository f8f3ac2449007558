// The ESM C tensors and where each is stored. Names are the Transformers port's without `esmc.`
// (its q/k/v and gate/up projections separate); the hub repositories store q/k/v as one
// `layernorm_qkv` matrix and gate/up as one `fc1` matrix, read here as row ranges of those.
import type { EsmConfig } from './config.js';
import type { Esm2TensorSpec } from './esm2-tensors.js';

/** Where a tensor is stored: its name in the files, the stored shape, and the rows it takes when it shares a matrix. */
export interface StoredPlace {
  stored: string;
  shape: number[];
  rows?: [start: number, end: number];
}

/** The two layouts of ESM C checkpoints: the hub repositories' names, or the Transformers port's. */
export type EsmcLayout = 'hub' | 'transformers';

export const ESMC_WORD_EMBEDDINGS = 'embed_tokens.weight';
const HUB_MARKER = 'esmc.transformer.blocks.0.attn.layernorm_qkv.weight';

/** The layout the stored names are in: the hub's when its fused q/k/v matrix is there. */
export function esmcLayoutOf(storedNames: { has(name: string): boolean }): EsmcLayout {
  return storedNames.has(HUB_MARKER) || storedNames.has(HUB_MARKER.slice('esmc.'.length)) ? 'hub' : 'transformers';
}

/** Every tensor ESM C's forward pass needs, in module order (no biases in the encoder, an untied head with biases). */
export function esmcTensorShapes(config: EsmConfig): Esm2TensorSpec[] {
  const E = config.hiddenSize;
  const I = config.intermediateSize;
  const V = config.vocabSize;
  const specs: Esm2TensorSpec[] = [{ name: ESMC_WORD_EMBEDDINGS, shape: [V, E] }];
  const add = (name: string, shape: number[]) => specs.push({ name, shape });
  for (let i = 0; i < config.numLayers; i++) {
    const p = `layers.${i}`;
    add(`${p}.input_layernorm.weight`, [E]);
    add(`${p}.input_layernorm.bias`, [E]);
    for (const proj of ['q_proj', 'k_proj', 'v_proj']) add(`${p}.self_attn.${proj}.weight`, [E, E]);
    add(`${p}.self_attn.q_norm.weight`, [E]);
    add(`${p}.self_attn.k_norm.weight`, [E]);
    add(`${p}.self_attn.o_proj.weight`, [E, E]);
    add(`${p}.post_attention_layernorm.weight`, [E]);
    add(`${p}.post_attention_layernorm.bias`, [E]);
    add(`${p}.mlp.gate_proj.weight`, [I, E]);
    add(`${p}.mlp.up_proj.weight`, [I, E]);
    add(`${p}.mlp.down_proj.weight`, [E, I]);
  }
  add('norm.weight', [E]);
  for (const part of ['weight', 'bias']) add(`lm_head.dense.${part}`, part === 'weight' ? [E, E] : [E]);
  for (const part of ['weight', 'bias']) add(`lm_head.layer_norm.${part}`, [E]);
  add('lm_head.decoder.weight', [V, E]);
  add('lm_head.decoder.bias', [V]);
  return specs;
}

/** The stored names `name` may have, first match wins: under `esmc.` (a ForMaskedLM checkpoint) or bare. */
export function esmcStoredPlaces(name: string, shape: number[], config: EsmConfig, layout: EsmcLayout): StoredPlace[] {
  const encoder = (stored: string, s = shape, rows?: [number, number]): StoredPlace[] =>
    [`esmc.${stored}`, stored].map((n) => ({ stored: n, shape: s, ...(rows ? { rows } : {}) }));
  if (layout === 'transformers') return name.startsWith('lm_head.') ? [{ stored: name, shape }] : encoder(name);
  const E = config.hiddenSize;
  const I = config.intermediateSize;
  const head = /^lm_head\.(dense|layer_norm|decoder)\.(weight|bias)$/.exec(name);
  if (head) return [{ stored: `lm_head.${{ dense: 0, layer_norm: 2, decoder: 3 }[head[1] as 'dense']}.${head[2]}`, shape }];
  if (name === ESMC_WORD_EMBEDDINGS) return encoder('embed.weight');
  if (name === 'norm.weight') return encoder('transformer.norm.weight');
  const m = /^layers\.(\d+)\.(.+)$/.exec(name);
  if (!m) return [];
  const block = `transformer.blocks.${m[1]}`;
  const qkv = ['q_proj', 'k_proj', 'v_proj'];
  const [, , rest] = m;
  const proj = /^self_attn\.(q_proj|k_proj|v_proj)\.weight$/.exec(rest);
  if (proj) {
    const k = qkv.indexOf(proj[1]);
    return encoder(`${block}.attn.layernorm_qkv.weight`, [3 * E, E], [k * E, (k + 1) * E]);
  }
  const gate = /^mlp\.(gate_proj|up_proj)\.weight$/.exec(rest);
  if (gate) return encoder(`${block}.ffn.fc1_weight`, [2 * I, E], gate[1] === 'gate_proj' ? [0, I] : [I, 2 * I]);
  const direct: Record<string, string> = {
    'input_layernorm.weight': 'attn.layernorm_qkv.layer_norm_weight',
    'input_layernorm.bias': 'attn.layernorm_qkv.layer_norm_bias',
    'self_attn.q_norm.weight': 'attn.q_ln.weight',
    'self_attn.k_norm.weight': 'attn.k_ln.weight',
    'self_attn.o_proj.weight': 'attn.out_proj.weight',
    'post_attention_layernorm.weight': 'ffn.layer_norm_weight',
    'post_attention_layernorm.bias': 'ffn.layer_norm_bias',
    'mlp.down_proj.weight': 'ffn.fc2_weight',
  };
  return direct[rest] ? encoder(`${block}.${direct[rest]}`) : [];
}

/** The hub layout's stored tensors (q/k/v and gate/up fused), each once, in module order: what a random ESM C checkpoint writes. */
export function esmcHubTensorList(config: EsmConfig): StoredPlace[] {
  const stored = new Map<string, StoredPlace>();
  for (const spec of esmcTensorShapes(config)) {
    const [first] = esmcStoredPlaces(spec.name, spec.shape, config, 'hub');
    if (!stored.has(first.stored)) stored.set(first.stored, { stored: first.stored, shape: first.shape });
  }
  return [...stored.values()];
}
