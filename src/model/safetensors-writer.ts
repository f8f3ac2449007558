// Safetensors writing. The streaming writer puts the header first (it only needs shapes), then
// pulls tensor data chunk by chunk from a producer, so a checkpoint far larger than memory can be
// written while holding one or two chunks at a time.
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { float32ToBfloat16, float32ToFloat16 } from './float-formats.js';
import { buildHeader, DTYPE_BYTES, numel, type FloatDtype } from './safetensors-format.js';

export interface TensorSpec {
  name: string;
  dtype: FloatDtype;
  shape: readonly number[];
}

/**
 * Float32Array data is converted to `dtype`; a Uint16Array is taken as already-encoded F16/BF16 bits;
 * a Uint8Array as the exact stored bytes.
 */
export type TensorData = Float32Array | Uint16Array | Uint8Array;

export interface TensorToWrite extends TensorSpec {
  data: TensorData;
}

/** Yields a tensor's elements in order, in as many chunks as convenient. */
export type TensorProducer = (
  tensor: TensorSpec,
  index: number,
) => AsyncIterable<TensorData> | Iterable<TensorData>;

export interface WriteResult {
  path: string;
  bytes: number;
}

/** Writes a complete file from in-memory tensors. */
export async function writeSafetensors(
  file: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<WriteResult> {
  return writeSafetensorsStreaming(file, tensors, (_t, i) => [tensors[i].data], metadata);
}

/**
 * Writes the header from declared shapes, then each tensor's data as `produce` yields it. The file
 * appears under its final name only when complete (written to `<file>.partial`, then renamed), so an
 * interrupted run never leaves a plausible-looking truncated checkpoint behind.
 */
export async function writeSafetensorsStreaming(
  file: string,
  tensors: readonly TensorSpec[],
  produce: TensorProducer,
  metadata?: Record<string, string>,
  onBytes?: (bytes: number) => void,
): Promise<WriteResult> {
  const header = buildHeader(tensors, metadata);
  const partial = `${file}.partial`;
  const handle = await open(partial, 'w');
  // Keep one write in flight while the producer makes the next chunk (disk and CPU overlap).
  let pending: Promise<void> | undefined;
  try {
    await writeAll(handle, header.bytes, 0);
    let pos = header.bytes.length;
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const expected = numel(t.shape) * DTYPE_BYTES[t.dtype];
      let written = 0;
      for await (const chunk of produce(t, i)) {
        const bytes = encodeChunk(t, chunk);
        if (written + bytes.length > expected) throw new Error(`tensor "${t.name}": producer yielded more than ${expected} bytes`);
        if (pending) await pending;
        pending = writeAll(handle, bytes, pos + written);
        written += bytes.length;
        onBytes?.(bytes.length);
      }
      if (pending) await pending;
      pending = undefined;
      if (written !== expected) throw new Error(`tensor "${t.name}": producer yielded ${written} bytes, expected ${expected}`);
      pos += written;
    }
    await handle.close();
  } catch (err) {
    await pending?.catch(() => undefined); // never leave a rejected write unobserved
    await handle.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw err;
  }
  await rename(partial, file);
  return { path: file, bytes: header.bytes.length + header.dataBytes };
}

/** A chunk of a tensor's data as the bytes stored for its dtype (a view, not a copy, when no conversion is needed). */
export function encodeChunk(t: TensorSpec, chunk: TensorData): Uint8Array {
  if (chunk instanceof Float32Array) {
    if (t.dtype === 'F32') return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const bits = t.dtype === 'F16' ? float32ToFloat16(chunk) : float32ToBfloat16(chunk);
    return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
  }
  if (chunk instanceof Uint16Array) {
    if (t.dtype === 'F32') throw new Error(`tensor "${t.name}": 16-bit data given for an F32 tensor`);
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  return chunk;
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** The whole file as one buffer, for small outputs such as an HTTP response body. */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Buffer {
  const header = buildHeader(tensors, metadata);
  const out = Buffer.alloc(header.bytes.length + header.dataBytes);
  header.bytes.copy(out, 0);
  tensors.forEach((t, i) => {
    const bytes = encodeChunk(t, t.data);
    const expected = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (bytes.length !== expected) throw new Error(`tensor "${t.name}": ${bytes.length} bytes, expected ${expected}`);
    out.set(bytes, header.bytes.length + header.offsets[i]);
  });
  return out;
}
