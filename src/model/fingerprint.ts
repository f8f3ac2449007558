// Checkpoint identity for caches (compiled graphs are keyed by it). Hashing every byte of a 60 GB
// checkpoint on each start would take minutes, so we hash what is cheap but telling: config, vocab,
// every safetensors header (names, dtypes, shapes, offsets), file sizes, and 16 evenly spaced 64 KiB
// samples of each file's data. Re-generated or fine-tuned weights change the sampled bytes; a
// hand-edit of a single weight outside the samples would not be noticed, which is an accepted trade.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CONFIG_FILE } from './config.js';
import type { SafetensorsDir } from './safetensors.js';

export const FINGERPRINT_SAMPLES = 16;
export const FINGERPRINT_SAMPLE_BYTES = 64 * 1024;
const VERSION = 'esm2-serve-fingerprint-v1';

/** `vocabFile`: the vocabulary the checkpoint was read with (vocab.txt, or ESM C's tokenizer.json). */
export async function computeFingerprint(dir: string, weights: SafetensorsDir, vocabFile = path.join(dir, 'vocab.txt')): Promise<string> {
  const hash = createHash('sha256');
  // Length-prefix every field so concatenations cannot collide.
  const field = (label: string, bytes: Uint8Array | string): void => {
    const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    hash.update(`${label}:${buf.length}:`);
    hash.update(buf);
  };
  field('version', VERSION);
  field(CONFIG_FILE, await readFile(path.join(dir, CONFIG_FILE)));
  field(path.basename(vocabFile), await readFile(vocabFile));

  // Sorted by file name so the result does not depend on open order; the directory path is not hashed,
  // so a copied or moved checkpoint keeps its fingerprint.
  const files = [...weights.files].sort((a, b) => path.basename(a.path).localeCompare(path.basename(b.path)));
  for (const file of files) {
    field('file', path.basename(file.path));
    field('size', String(file.size));
    field('header', file.headerBytes);
    const dataBytes = file.size - file.dataStart;
    for (const [offset, length] of sampleRanges(dataBytes)) {
      field(`data@${offset}`, await file.readDataRange(offset, length));
    }
  }
  return hash.digest('hex');
}

/** The whole data section when small, else 16 evenly spaced 64 KiB windows (first at 0, last at the end). */
export function sampleRanges(dataBytes: number): Array<[number, number]> {
  if (dataBytes <= FINGERPRINT_SAMPLES * FINGERPRINT_SAMPLE_BYTES) return dataBytes > 0 ? [[0, dataBytes]] : [];
  const span = dataBytes - FINGERPRINT_SAMPLE_BYTES;
  const out: Array<[number, number]> = [];
  for (let i = 0; i < FINGERPRINT_SAMPLES; i++) {
    out.push([Math.floor((span * i) / (FINGERPRINT_SAMPLES - 1)), FINGERPRINT_SAMPLE_BYTES]);
  }
  return out;
}
