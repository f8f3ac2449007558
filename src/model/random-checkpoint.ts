// Random-weight checkpoints in the exact HF layout (names, shapes, config, vocab, sharding) of ESM-2,
// ESM-1b/1v and ESM C (its hub layout: tokenizer.json, fused q/k/v), so the loader, compiler and
// server can be exercised at every published size without downloads.
// Tensors are generated and written one chunk at a time: memory stays flat even for the 15B shape.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EsmConfig } from './config.js';
import { esm2TensorShapes, hfStoredName, LM_DECODER, POSITION_EMBEDDINGS, rotaryInvFreq, WORD_EMBEDDINGS } from './esm2-tensors.js';
import { getPreset, hfConfigJson, presetConfig, type Esm2Preset } from './presets.js';
import { DTYPE_BYTES, INDEX_FILE, numel, SINGLE_FILE, writeSafetensorsStreaming, type TensorSpec, type WriteResult } from './safetensors.js';
import { SeededStream } from './seeded-random.js';
import { ESM2_VOCAB, ESMC_TOKENS } from './tokenizer.js';
import { esmcHubTensorList } from './esmc-tensors.js';

export interface RandomCheckpointOptions {
  preset: string | Esm2Preset;
  outDir: string;
  seed: number;
  dtype?: 'F32' | 'F16';
  /** Shard when the F32 size exceeds this many bytes (default 10 GB: the 3B and 15B shapes). */
  shardAboveBytes?: number;
  /** Largest shard in bytes (default 5 GB, HF `save_pretrained`'s default). */
  maxShardBytes?: number;
  onProgress?: (writtenBytes: number, totalBytes: number) => void;
}

export interface RandomCheckpointResult {
  dir: string;
  config: EsmConfig;
  /** Every file written, weights last. */
  files: WriteResult[];
  tensorCount: number;
  /** Bytes of tensor data (the index's `total_size`). */
  tensorBytes: number;
  sharded: boolean;
}

const WEIGHT_STD = 0.02;
// A uniform distribution on [-w, w] has standard deviation w / sqrt(3).
const HALF_WIDTH = WEIGHT_STD * Math.sqrt(3);
const CHUNK_ELEMENTS = 1 << 21; // 8 MiB of float32 per chunk

const TOKENIZER_CONFIG = { model_max_length: 1026, tokenizer_class: 'EsmTokenizer', do_lower_case: false };
const SPECIAL_TOKENS_MAP = {
  cls_token: '<cls>',
  eos_token: '<eos>',
  mask_token: '<mask>',
  pad_token: '<pad>',
  unk_token: '<unk>',
};

export async function writeRandomCheckpoint(options: RandomCheckpointOptions): Promise<RandomCheckpointResult> {
  const preset = typeof options.preset === 'string' ? getPreset(options.preset) : options.preset;
  const dtype = options.dtype ?? 'F32';
  const config = presetConfig(preset);
  const tensors = config.family === 'esmc' ? esmcHubTensorList(config).map((t) => ({ name: t.stored, dtype, shape: t.shape })) : hfTensorList(config, dtype);
  const tensorBytes = tensors.reduce((sum, t) => sum + bytesOf(t), 0);
  const f32Bytes = tensors.reduce((sum, t) => sum + numel(t.shape) * 4, 0);
  const sharded = f32Bytes > (options.shardAboveBytes ?? 10e9);
  const shards = sharded ? planShards(tensors, options.maxShardBytes ?? 5e9) : [tensors];
  new SeededStream(options.seed, ''); // validate the seed before touching the disk

  const dir = options.outDir;
  await mkdir(dir, { recursive: true });
  await removeStaleWeights(dir);
  const files: WriteResult[] = [];
  const writeJson = async (name: string, value: unknown): Promise<void> => {
    const text = `${JSON.stringify(value, null, 2)}\n`;
    await writeFile(path.join(dir, name), text);
    files.push({ path: path.join(dir, name), bytes: Buffer.byteLength(text) });
  };
  await writeJson('config.json', hfConfigJson(config, dtype === 'F16' ? 'float16' : 'float32'));
  if (config.family === 'esmc') {
    await writeJson('tokenizer.json', esmcTokenizerJson());
  } else {
    const vocabText = `${ESM2_VOCAB.join('\n')}\n`;
    await writeFile(path.join(dir, 'vocab.txt'), vocabText);
    files.push({ path: path.join(dir, 'vocab.txt'), bytes: Buffer.byteLength(vocabText) });
  }
  await writeJson('tokenizer_config.json', config.family === 'esmc' ? { ...TOKENIZER_CONFIG, tokenizer_class: 'ESMCTokenizer' } : TOKENIZER_CONFIG);
  await writeJson('special_tokens_map.json', SPECIAL_TOKENS_MAP);

  let written = 0;
  const onBytes = (n: number): void => {
    written += n;
    options.onProgress?.(written, tensorBytes);
  };
  const produce = (t: TensorSpec) => generateTensor(t, config, options.seed);
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards.length; i++) {
    const name = sharded ? shardFileName(i, shards.length) : SINGLE_FILE;
    for (const t of shards[i]) weightMap[t.name] = name;
    files.push(await writeSafetensorsStreaming(path.join(dir, name), shards[i], produce, { format: 'pt' }, onBytes));
  }
  if (sharded) {
    const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    await writeJson(INDEX_FILE, { metadata: { total_size: tensorBytes }, weight_map: sortedMap });
  }
  return { dir, config, files, tensorCount: tensors.length, tensorBytes, sharded };
}

/** Every tensor an HF `EsmForMaskedLM` checkpoint stores, with its stored (prefixed) name, in module order. */
export function hfTensorList(config: EsmConfig, dtype: 'F32' | 'F16' = 'F32'): TensorSpec[] {
  const specs = esm2TensorShapes(config).map((s) => ({ name: hfStoredName(s.name), dtype, shape: s.shape }));
  if (config.family === 'esm2') {
    // Stored by HF ESM-2 checkpoints although rotary models never read it (ESM-1b's is in the list).
    const position = { name: hfStoredName(POSITION_EMBEDDINGS), dtype, shape: [config.maxPositionEmbeddings, config.hiddenSize] };
    specs.splice(1, 0, position); // right after the word embeddings, as in the HF state dict
  }
  return specs;
}

/** ESM C's tokenizer.json: its 33 tokens as a vocabulary without merges, the specials as added tokens. */
function esmcTokenizerJson(): Record<string, unknown> {
  const special = (t: string) => t.startsWith('<') || t === '|';
  return {
    version: '1.0',
    added_tokens: ESMC_TOKENS.flatMap((content, id) => (special(content) ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }] : [])),
    model: { type: 'BPE', unk_token: '<unk>', vocab: Object.fromEntries(ESMC_TOKENS.map((t, id) => [t, id])), merges: [] },
  };
}

/** HF's `model-00001-of-00003.safetensors` naming. */
export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

function bytesOf(t: TensorSpec): number {
  return numel(t.shape) * DTYPE_BYTES[t.dtype];
}

/** Greedy split in module order, like HF: start a new shard when the next tensor would overflow. */
function planShards(tensors: TensorSpec[], maxShardBytes: number): TensorSpec[][] {
  const shards: TensorSpec[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    const bytes = bytesOf(t);
    if (size + bytes > maxShardBytes && shards[shards.length - 1].length > 0) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += bytes;
  }
  return shards;
}

/** Yields one tensor's values; the stream is keyed by name (the decoder reuses the embeddings' stream: tied). */
function* generateTensor(t: TensorSpec, config: EsmConfig, seed: number): Generator<Float32Array> {
  const name = t.name.replace(/^esmc?\./, '');
  if (name.endsWith('rotary_embeddings.inv_freq')) {
    yield rotaryInvFreq(config.hiddenSize / config.numHeads);
    return;
  }
  // ESM C's hub names: layer_norm_weight (fused LayerNorm + Linear), q_ln / k_ln, transformer.norm, lm_head.2.
  const isNormWeight = /(LayerNorm|layer_norm|emb_layer_norm_after)\.weight$|layer_norm_weight$|_ln\.weight$|transformer\.norm\.weight$|^lm_head\.2\.weight$/.test(name);
  const stream = new SeededStream(seed, name === LM_DECODER ? WORD_EMBEDDINGS : name);
  const center = isNormWeight ? 1 : 0; // LayerNorm gains near 1, everything else near 0
  let left = numel(t.shape);
  while (left > 0) {
    const chunk = new Float32Array(Math.min(left, CHUNK_ELEMENTS));
    stream.fillUniform(chunk, center, HALF_WIDTH);
    left -= chunk.length;
    yield chunk;
  }
}

/** Drops weights an earlier run left in `dir`, so a stale index or shard cannot shadow the new files. */
async function removeStaleWeights(dir: string): Promise<void> {
  const stale = /^(model\.safetensors|model\.safetensors\.index\.json|model-\d{5}-of-\d{5}\.safetensors)(\.partial)?$/;
  for (const name of await readdir(dir)) {
    if (stale.test(name)) await rm(path.join(dir, name), { force: true });
  }
}
