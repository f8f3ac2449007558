import { existsSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE, headDim, loadConfig, type EsmConfig } from './config.js';
import { CheckpointError, formatShape } from './errors.js';
import { esm2TensorShapes, invFreqName, rotaryInvFreq, type Esm2TensorSpec } from './esm2-tensors.js';
import { esmcLayoutOf, esmcStoredPlaces, esmcTensorShapes, type StoredPlace } from './esmc-tensors.js';
import { computeFingerprint } from './fingerprint.js';
import { FLOAT_DTYPES, openSafetensorsDir, type FloatDtype, type SafetensorsDir, type TensorLocation } from './safetensors.js';
import { Tokenizer } from './tokenizer.js';

export const VOCAB_FILE = 'vocab.txt';
/** ESM C's vocabulary file (the hub repositories have no vocab.txt). */
export const TOKENIZER_FILE = 'tokenizer.json';

/**
 * A validated checkpoint directory of any family. Tensor names are HF names without the `esm.`
 * prefix (ESM-2, ESM-1b/1v), or the ESM C Transformers port's without `esmc.` (esmc-tensors.ts).
 */
export interface Esm2Checkpoint {
  readonly dir: string;
  readonly config: EsmConfig;
  readonly tokenizer: Tokenizer;
  /** True when every layer's rotary inv_freq comes from the checkpoint rather than being computed. */
  readonly hasStoredInvFreq: boolean;
  /** False when the checkpoint has no contact_head.regression tensors: no contacts variant, contacts refused (422). */
  readonly hasContactHead: boolean;
  /** Names accepted by `readTensor`, in module order. */
  readonly tensorNames: readonly string[];
  tensorShape(name: string): number[];
  /** Storage dtype; computed inv_freq reports F32. */
  tensorDtype(name: string): FloatDtype;
  readTensor(name: string): Promise<Float32Array>;
  /** sha256 hex of the checkpoint content (sampled; see fingerprint.ts). Computed once. */
  fingerprint(): Promise<string>;
  close(): Promise<void>;
}

/** A tensor as found in the files: its stored name (prefix, fallback), location, and its rows of a shared matrix. */
interface Found {
  stored: string;
  location: TensorLocation;
  rows?: [number, number];
}
/** Each ESM-2 tensor's expected shape and where it is found; no `found` means computed (inv_freq). */
type Resolved = Map<string, { shape: number[]; found?: Found }>;

/**
 * Opens `dir` (config.json, vocab.txt, model.safetensors or sharded safetensors) and checks every
 * required tensor's presence, dtype and shape up front, so a bad checkpoint fails at startup with one
 * error naming the file and tensor instead of deep inside graph compilation.
 */
export async function loadCheckpoint(dir: string): Promise<Esm2Checkpoint> {
  const config = await loadConfig(dir);
  const { tokenizer, vocabPath } = await loadTokenizer(dir, config);
  checkVocabAgainstConfig(config, tokenizer, vocabPath, path.join(dir, CONFIG_FILE));

  const weights = await openSafetensorsDir(dir);
  let resolved: Resolved;
  try {
    resolved = resolveTensors(config, weights);
  } catch (err) {
    await weights.close();
    throw err;
  }

  const lookup = (name: string): { shape: number[]; found?: Found } => {
    const r = resolved.get(name);
    if (!r) throw new CheckpointError(weights.source, 'not an ESM-2 tensor name (expected HF names without "esm.")', name);
    return r;
  };
  const hasStoredInvFreq = Array.from({ length: config.numLayers }, (_, i) => invFreqName(i)).every(
    (n) => resolved.get(n)?.found !== undefined,
  );
  const hasContactHead = resolved.has('contact_head.regression.weight');
  let fingerprint: Promise<string> | undefined;

  return {
    dir,
    config,
    tokenizer,
    hasStoredInvFreq,
    hasContactHead,
    tensorNames: [...resolved.keys()],
    tensorShape: (name) => [...lookup(name).shape],
    tensorDtype: (name) => (lookup(name).found?.location.entry.dtype as FloatDtype | undefined) ?? 'F32',
    async readTensor(name) {
      const { found, shape } = lookup(name);
      if (!found) return rotaryInvFreq(headDim(config));
      const data = await found.location.file.readFloat32(found.stored);
      if (!found.rows) return data;
      const width = shape.slice(1).reduce((a, b) => a * b, 1);
      return data.slice(found.rows[0] * width, found.rows[1] * width);
    },
    fingerprint() {
      fingerprint ??= computeFingerprint(dir, weights, vocabPath);
      return fingerprint;
    },
    close: () => weights.close(),
  };
}

/** vocab.txt (ESM-2, ESM-1b/1v), or tokenizer.json where there is none (ESM C, placeholders up to vocab_size). */
async function loadTokenizer(dir: string, config: EsmConfig): Promise<{ tokenizer: Tokenizer; vocabPath: string }> {
  const vocabPath = path.join(dir, VOCAB_FILE);
  const jsonPath = path.join(dir, TOKENIZER_FILE);
  if (config.family === 'esmc' && !existsSync(vocabPath) && existsSync(jsonPath)) {
    return { tokenizer: await Tokenizer.fromTokenizerJson(jsonPath, config.vocabSize), vocabPath: jsonPath };
  }
  return { tokenizer: await Tokenizer.fromFile(vocabPath), vocabPath };
}

function checkVocabAgainstConfig(config: EsmConfig, tokenizer: Tokenizer, vocabPath: string, configPath: string): void {
  if (tokenizer.vocab.length !== config.vocabSize) {
    throw new CheckpointError(vocabPath, `has ${tokenizer.tokenCount} tokens but config.json vocab_size is ${config.vocabSize}`);
  }
  if (tokenizer.maskId !== config.maskTokenId) {
    throw new CheckpointError(configPath, `mask_token_id is ${config.maskTokenId} but <mask> is token ${tokenizer.maskId} in vocab.txt`);
  }
  if (tokenizer.padId !== config.padTokenId) {
    throw new CheckpointError(configPath, `pad_token_id is ${config.padTokenId} but <pad> is token ${tokenizer.padId} in vocab.txt`);
  }
}

/** The family's tensors, each with the stored places it may be found at (first match wins). */
function familyTensors(config: EsmConfig, weights: SafetensorsDir): { spec: Esm2TensorSpec; places: StoredPlace[] }[] {
  if (config.family === 'esmc') {
    const layout = esmcLayoutOf(weights.tensors);
    return esmcTensorShapes(config).map((spec) => ({ spec, places: esmcStoredPlaces(spec.name, spec.shape, config, layout) }));
  }
  // ESM-2, ESM-1b/1v: under `esm.<name>` (EsmForMaskedLM) or `<name>` (EsmModel), then the fallback (the tied decoder).
  const at = (name: string, shape: number[]): StoredPlace[] => [`esm.${name}`, name].map((stored) => ({ stored, shape }));
  return esm2TensorShapes(config).map((spec) => ({ spec, places: [...at(spec.name, spec.shape), ...(spec.fallback ? at(spec.fallback, spec.shape) : [])] }));
}

/** Finds every required tensor of the family at one of its stored places, checking dtype and shape. */
function resolveTensors(config: EsmConfig, weights: SafetensorsDir): Resolved {
  checkNoExtraLayers(config, weights); // first: a config/weights mismatch explains the shape errors that follow
  const resolved: Resolved = new Map();
  const searched = () => weights.files.map((f) => path.basename(f.path)).join(', ');
  const tensors = familyTensors(config, weights);
  // No contact head at all is a checkpoint without contacts; half of one is a broken checkpoint.
  const noContactHead = tensors.filter((t) => t.spec.contactHead).every((t) => !find(weights, t.places));
  for (const { spec, places } of tensors) {
    if (spec.contactHead && noContactHead) continue;
    const found = find(weights, places);
    if (!found) {
      if (spec.optional) {
        resolved.set(spec.name, { shape: spec.shape });
        continue;
      }
      const looked = places.slice(0, 2).map((p) => `"${p.stored}"`).join(' and ');
      throw new CheckpointError(weights.source, `missing (looked for ${looked} in ${searched()})`, spec.name);
    }
    const { stored, location } = found;
    const expectedShape = places.find((p) => p.stored === stored)!.shape;
    if (!(FLOAT_DTYPES as readonly string[]).includes(location.entry.dtype)) {
      throw new CheckpointError(location.file.path, `dtype ${location.entry.dtype} is not supported (expected F32, F16 or BF16)`, stored);
    }
    if (formatShape(location.entry.shape) !== formatShape(expectedShape)) {
      throw new CheckpointError(
        location.file.path,
        `expected shape ${formatShape(expectedShape)}, found ${formatShape(location.entry.shape)}`,
        stored,
      );
    }
    resolved.set(spec.name, { shape: spec.shape, found });
  }
  return resolved;
}

function find(weights: SafetensorsDir, places: StoredPlace[]): Found | undefined {
  for (const { stored, rows } of places) {
    const location = weights.tensors.get(stored);
    if (location) return { stored, location, ...(rows ? { rows } : {}) };
  }
  return undefined;
}

/** Layers beyond num_hidden_layers mean config.json and the weights belong to different models. */
function checkNoExtraLayers(config: EsmConfig, weights: SafetensorsDir): void {
  for (const [name, { file }] of weights.tensors) {
    const m = /^(?:esmc?\.)?(?:encoder\.layer|layers|transformer\.blocks)\.(\d+)\./.exec(name);
    if (m && Number(m[1]) >= config.numLayers) {
      throw new CheckpointError(
        file.path,
        `layer ${m[1]} exists but config.json num_hidden_layers is ${config.numLayers} (config and weights do not match)`,
        name,
      );
    }
  }
}
