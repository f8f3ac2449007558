// A safetensors file as a Readable, for HTTP response bodies: the header (the same buildHeader
// the file writer and encodeSafetensors use), then each tensor's bytes as Buffer views of its own
// memory — F32 data is not copied; F16/BF16 are converted a slice at a time as the reader asks.
// The byte length is known before the first byte, so Content-Length can be set.
import { Readable } from 'node:stream';
import { buildHeader, DTYPE_BYTES, numel } from './safetensors-format.js';
import { encodeChunk, type TensorToWrite } from './safetensors-writer.js';

/** Largest view pushed at once (a slow reader makes write progress at least every this many bytes). */
export const SAFETENSORS_CHUNK_BYTES = 1 << 20;

/** The body stream; `byteLength` is the whole file's size (header included). */
export class SafetensorsStream extends Readable {
  readonly byteLength: number;
  private tensorIndex = 0;
  /** Byte offset inside the current tensor. */
  private offset = 0;
  private headerSent = false;

  constructor(
    private tensors: readonly TensorToWrite[],
    private readonly header: Buffer,
    dataBytes: number,
  ) {
    super({ highWaterMark: SAFETENSORS_CHUNK_BYTES });
    this.byteLength = header.length + dataBytes;
  }

  override _read(): void {
    if (!this.headerSent) {
      this.headerSent = true;
      this.push(this.header);
      return;
    }
    while (this.tensorIndex < this.tensors.length) {
      const t = this.tensors[this.tensorIndex];
      const size = numel(t.shape) * DTYPE_BYTES[t.dtype];
      if (this.offset >= size) {
        this.tensorIndex += 1;
        this.offset = 0;
        continue;
      }
      const chunk = this.slice(t, this.offset, Math.min(size, this.offset + SAFETENSORS_CHUNK_BYTES));
      this.offset += chunk.length;
      this.push(chunk);
      return;
    }
    this.push(null);
  }

  /** Bytes [begin, end) of tensor t as stored: a view of its data when the dtype needs no conversion. */
  private slice(t: TensorToWrite, begin: number, end: number): Buffer {
    const unit = storedBytesPerElement(t);
    const bytes = encodeChunk(t, t.data.subarray(begin / unit, end / unit));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.tensors = []; // let the tensors go with the stream
    callback(err);
  }
}

/**
 * The bytes encodeSafetensors(tensors, metadata) returns, as a stream of the header and then views
 * of each tensor's data (no copy of F32 data: do not change it while the stream is read). Checks
 * sizes up front, as encodeSafetensors does.
 */
export function safetensorsStream(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): SafetensorsStream {
  const header = buildHeader(tensors, metadata);
  for (const t of tensors) {
    encodeChunk(t, t.data.subarray(0, 0)); // refuses data of the wrong kind for the dtype
    const expected = numel(t.shape) * DTYPE_BYTES[t.dtype];
    const bytes = t.data.length * storedBytesPerElement(t);
    if (bytes !== expected) throw new Error(`tensor "${t.name}": ${bytes} bytes, expected ${expected}`);
  }
  return new SafetensorsStream([...tensors], header.bytes, header.dataBytes);
}

/** Stored bytes per element of the given data: Float32Array → the dtype's size; Uint16Array (16-bit bits) → 2; Uint8Array (stored bytes) → 1. */
function storedBytesPerElement(t: TensorToWrite): number {
  return t.data instanceof Float32Array ? DTYPE_BYTES[t.dtype] : t.data.BYTES_PER_ELEMENT;
}
