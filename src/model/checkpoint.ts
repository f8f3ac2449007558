import path from 'node:path';
import { CONFIG_FILE, headDim, loadConfig, type EsmConfig } from './config.js';
import { CheckpointError, formatShape } from './errors.js';
import { esm2TensorShapes, invFreqName, rotaryInvFreq } from './esm2-tensors.js';
import { computeFingerprint } from './fingerprint.js';
import { FLOAT_DTYPES, openSafetensorsDir, type FloatDtype, type SafetensorsDir, type TensorLocation } from './safetensors.js';
import { Tokenizer } from './tokenizer.js';

export const VOCAB_FILE = 'vocab.txt';

/** A validated ESM-2 checkpoint directory. Tensor names are HF names without the `esm.` prefix. */
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

/** A tensor as found in the files: its stored name (prefix, fallback) and location. */
interface Found {
  stored: string;
  location: TensorLocation;
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
  const vocabPath = path.join(dir, VOCAB_FILE);
  const tokenizer = await Tokenizer.fromFile(vocabPath);
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
      const { found } = lookup(name);
      return found ? found.location.file.readFloat32(found.stored) : rotaryInvFreq(headDim(config));
    },
    fingerprint() {
      fingerprint ??= computeFingerprint(dir, weights);
      return fingerprint;
    },
    close: () => weights.close(),
  };
}

function checkVocabAgainstConfig(config: EsmConfig, tokenizer: Tokenizer, vocabPath: string, configPath: string): void {
  if (tokenizer.vocab.length !== config.vocabSize) {
    throw new CheckpointError(vocabPath, `has ${tokenizer.vocab.length} tokens but config.json vocab_size is ${config.vocabSize}`);
  }
  if (tokenizer.maskId !== config.maskTokenId) {
    throw new CheckpointError(configPath, `mask_token_id is ${config.maskTokenId} but <mask> is token ${tokenizer.maskId} in vocab.txt`);
  }
  if (tokenizer.padId !== config.padTokenId) {
    throw new CheckpointError(configPath, `pad_token_id is ${config.padTokenId} but <pad> is token ${tokenizer.padId} in vocab.txt`);
  }
}

/** Finds every required tensor under `esm.<name>` (EsmForMaskedLM) or `<name>` (EsmModel). */
function resolveTensors(config: EsmConfig, weights: SafetensorsDir): Resolved {
  checkNoExtraLayers(config, weights); // first: a config/weights mismatch explains the shape errors that follow
  const resolved: Resolved = new Map();
  const searched = () => weights.files.map((f) => path.basename(f.path)).join(', ');
  const specs = esm2TensorShapes(config);
  // No contact head at all is a checkpoint without contacts; half of one is a broken checkpoint.
  const noContactHead = specs.filter((s) => s.contactHead).every((s) => !find(weights, s.name));
  for (const spec of specs) {
    if (spec.contactHead && noContactHead) continue;
    const found = find(weights, spec.name) ?? (spec.fallback ? find(weights, spec.fallback) : undefined);
    if (!found) {
      if (spec.optional) {
        resolved.set(spec.name, { shape: spec.shape });
        continue;
      }
      throw new CheckpointError(weights.source, `missing (looked for "esm.${spec.name}" and "${spec.name}" in ${searched()})`, spec.name);
    }
    const { stored, location } = found;
    if (!(FLOAT_DTYPES as readonly string[]).includes(location.entry.dtype)) {
      throw new CheckpointError(location.file.path, `dtype ${location.entry.dtype} is not supported (expected F32, F16 or BF16)`, stored);
    }
    if (formatShape(location.entry.shape) !== formatShape(spec.shape)) {
      throw new CheckpointError(
        location.file.path,
        `expected shape ${formatShape(spec.shape)}, found ${formatShape(location.entry.shape)}`,
        stored,
      );
    }
    resolved.set(spec.name, { shape: spec.shape, found });
  }
  return resolved;
}

function find(weights: SafetensorsDir, name: string): Found | undefined {
  for (const stored of [`esm.${name}`, name]) {
    const location = weights.tensors.get(stored);
    if (location) return { stored, location };
  }
  return undefined;
}

/** Layers beyond num_hidden_layers mean config.json and the weights belong to different models. */
function checkNoExtraLayers(config: EsmConfig, weights: SafetensorsDir): void {
  for (const [name, { file }] of weights.tensors) {
    const m = /^(?:esm\.)?encoder\.layer\.(\d+)\./.exec(name);
    if (m && Number(m[1]) >= config.numLayers) {
      throw new CheckpointError(
        file.path,
        `layer ${m[1]} exists but config.json num_hidden_layers is ${config.numLayers} (config and weights do not match)`,
        name,
      );
    }
  }
}
