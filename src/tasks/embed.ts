// The embed task: which engine outputs a request needs, and how a sequence's result is cut into
// esm-extract's quantities (residue rows only: cls and eos rows dropped).
import type { SequenceResult, Want } from '../contract/index.js';
import type { TensorToWrite } from '../model/safetensors.js';

export const EMBED_INCLUDES = ['mean', 'per_residue', 'bos', 'logits', 'contacts'] as const;
export type EmbedInclude = (typeof EMBED_INCLUDES)[number];

export interface EmbedSpec {
  include: readonly EmbedInclude[];
  /** Absolute layers 0 … num_layers. */
  layers: readonly number[];
}

/** esm-extract's layer numbering: −1 is the last layer, 0 the embeddings. */
export function resolveReprLayers(spec: readonly number[], numLayers: number): number[] {
  return [
    ...new Set(
      spec.map((layer) => {
        if (!Number.isInteger(layer) || layer < -(numLayers + 1) || layer > numLayers) {
          throw new RangeError(`layer ${layer} is out of range for a ${numLayers}-layer model (use -${numLayers + 1} … ${numLayers})`);
        }
        return (layer + numLayers + 1) % (numLayers + 1);
      }),
    ),
  ];
}

/** Why "contacts" is refused on a checkpoint without contact_head.regression tensors. */
export const NO_CONTACT_HEAD =
  '"contacts": this checkpoint has no contact head (no contact_head.regression tensors; ESM C and ESM-1v as published have none), so it predicts no contacts; ask for embeddings or logits';

export function embedWant(spec: EmbedSpec): Want {
  const has = (kind: EmbedInclude) => spec.include.includes(kind);
  return {
    ...(has('mean') ? { mean: [...spec.layers] } : {}),
    ...(has('per_residue') ? { hidden: [...spec.layers] } : {}),
    ...(has('bos') ? { bos: [...spec.layers] } : {}),
    ...(has('logits') ? { logits: true } : {}),
    ...(has('contacts') ? { contacts: true } : {}),
  };
}

/** Rows 1 … L of a [L + 2, width] per-token output: the residues. */
export function residueRows(perToken: Float32Array, width: number, residues: number): Float32Array {
  return perToken.subarray(width, (residues + 1) * width);
}

export interface EmbedTensor {
  /** Name relative to the sequence: "mean/33", "per_residue/33", "logits", "contacts". */
  name: string;
  shape: number[];
  data: Float32Array;
}

/** The quantities a spec asks for, cut out of one sequence's engine result. */
export function embedTensors(result: SequenceResult, spec: EmbedSpec, residues: number, hiddenSize: number, vocabSize: number): EmbedTensor[] {
  const has = (kind: EmbedInclude) => spec.include.includes(kind);
  const out: EmbedTensor[] = [];
  for (const layer of spec.layers) {
    if (has('mean')) out.push({ name: `mean/${layer}`, shape: [hiddenSize], data: result.mean![layer] });
    if (has('per_residue')) out.push({ name: `per_residue/${layer}`, shape: [residues, hiddenSize], data: residueRows(result.hidden![layer], hiddenSize, residues) });
    if (has('bos')) out.push({ name: `bos/${layer}`, shape: [hiddenSize], data: result.bos![layer] });
  }
  if (has('logits')) out.push({ name: 'logits', shape: [residues, vocabSize], data: residueRows(result.logits!, vocabSize, residues) });
  if (has('contacts')) out.push({ name: 'contacts', shape: [residues, residues], data: result.contacts! });
  return out;
}

/** A flat row-major array as nested JSON rows. */
export function toNested(data: Float32Array, shape: readonly number[]): number[] | number[][] {
  if (shape.length === 1) return Array.from(data);
  const width = shape[1];
  return Array.from({ length: shape[0] }, (_, i) => Array.from(data.subarray(i * width, (i + 1) * width)));
}

/**
 * JSON form: { representations: { "<layer>": { mean, per_residue, bos } }, logits?, contacts? }.
 * `leaf` renders a tensor (nested number arrays by default; the server passes a streamed form).
 */
export function embedJson(tensors: readonly EmbedTensor[], leaf: (t: EmbedTensor) => unknown = (t) => toNested(t.data, t.shape)): Record<string, unknown> {
  const representations: Record<string, Record<string, unknown>> = {};
  const out: Record<string, unknown> = { representations };
  for (const t of tensors) {
    const [kind, layer] = t.name.split('/');
    if (layer === undefined) out[kind] = leaf(t);
    else (representations[layer] ??= {})[kind] = leaf(t);
  }
  return out;
}

export function embedSafetensorsEntries(index: number, tensors: readonly EmbedTensor[]): TensorToWrite[] {
  return tensors.map((t) => ({ name: `${index}/${t.name}`, dtype: 'F32', shape: t.shape, data: t.data }));
}
