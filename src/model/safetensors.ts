// Safetensors reading by offset: only headers are read up front, tensors are read one at a time, so
// opening a 60 GB checkpoint costs a few kilobytes of I/O and memory.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import path from 'node:path';
import { describeReadError } from './config.js';
import { CheckpointError } from './errors.js';
import { bfloat16ToFloat32, float16ToFloat32 } from './float-formats.js';
import { checkHeaderLength, numel, parseHeader, type TensorEntry } from './safetensors-format.js';

export * from './safetensors-format.js';
export * from './safetensors-writer.js';
export * from './safetensors-stream.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

// Typed arrays are read straight from disk bytes, which is only right on little-endian hosts.
if (endianness() !== 'LE') throw new Error('esm2-serve reads safetensors as little-endian and needs a little-endian host');

/** One open `.safetensors` file. Call `close()` when done. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    readonly size: number,
    readonly headerBytes: Buffer,
    readonly dataStart: number,
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    readonly metadata: Readonly<Record<string, string>>,
    private readonly handle: FileHandle,
  ) {}

  /** Opens the file and validates its header; tensor data is not read. */
  static async open(file: string): Promise<SafetensorsFile> {
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      throw new CheckpointError(file, describeReadError(err));
    }
    try {
      const { size } = await handle.stat();
      const prefix = Buffer.alloc(8);
      if (size >= 8) await readFully(handle, file, prefix, 0); // shorter files are refused just below
      const headerLen = checkHeaderLength(file, prefix, size);
      const headerBytes = Buffer.alloc(headerLen);
      await readFully(handle, file, headerBytes, 8);
      const parsed = parseHeader(file, headerBytes, size);
      return new SafetensorsFile(file, size, headerBytes, parsed.dataStart, parsed.tensors, parsed.metadata, handle);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  entry(name: string): TensorEntry {
    const e = this.tensors.get(name);
    if (!e) throw new CheckpointError(this.path, 'not in this file', name);
    return e;
  }

  /** The tensor's bytes exactly as stored (fresh buffer, 8-byte aligned). */
  async readRaw(name: string): Promise<Buffer> {
    const e = this.entry(name);
    const buf = Buffer.from(new ArrayBuffer(e.end - e.begin));
    await readFully(this.handle, this.path, buf, this.dataStart + e.begin, name);
    return buf;
  }

  /** Reads any bytes of the data section (used for fingerprint sampling). */
  async readDataRange(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    await readFully(this.handle, this.path, buf, this.dataStart + offset);
    return buf;
  }

  /** Reads a F32, F16 or BF16 tensor as Float32 (16-bit formats are widened exactly). */
  async readFloat32(name: string): Promise<Float32Array> {
    const e = this.entry(name);
    const n = numel(e.shape);
    switch (e.dtype) {
      case 'F32': {
        const out = new Float32Array(n);
        await readFully(this.handle, this.path, Buffer.from(out.buffer), this.dataStart + e.begin, name);
        return out;
      }
      case 'F16':
      case 'BF16': {
        const bits = new Uint16Array(n);
        await readFully(this.handle, this.path, Buffer.from(bits.buffer), this.dataStart + e.begin, name);
        return e.dtype === 'F16' ? float16ToFloat32(bits) : bfloat16ToFloat32(bits);
      }
      default:
        throw new CheckpointError(this.path, `dtype ${e.dtype} cannot be read as weights (expected F32, F16 or BF16)`, name);
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

// One read() call moves at most ~2 GiB, so large tensors are read in a loop.
const MAX_READ = 1 << 30;

async function readFully(handle: FileHandle, file: string, buf: Buffer, position: number, tensor?: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, Math.min(buf.length - done, MAX_READ), position + done);
    if (bytesRead === 0) {
      throw new CheckpointError(file, `unexpected end of file at byte ${position + done} (file changed or truncated while open)`, tensor);
    }
    done += bytesRead;
  }
}

/** Where a tensor lives in a (possibly sharded) checkpoint. */
export interface TensorLocation {
  file: SafetensorsFile;
  entry: TensorEntry;
}

/** All tensors of a checkpoint directory, whether one file or HF-style shards. */
export interface SafetensorsDir {
  readonly dir: string;
  /** The index file when sharded, else the single safetensors file: what errors name. */
  readonly source: string;
  readonly indexPath?: string;
  readonly files: readonly SafetensorsFile[];
  readonly tensors: ReadonlyMap<string, TensorLocation>;
  close(): Promise<void>;
}

/** Opens `model.safetensors.index.json` + its shards if present, else `model.safetensors`. */
export async function openSafetensorsDir(dir: string): Promise<SafetensorsDir> {
  const indexPath = path.join(dir, INDEX_FILE);
  const shardNames = await readIndex(indexPath);
  const files: SafetensorsFile[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(files.map((f) => f.close()));
  };
  try {
    if (shardNames === undefined) {
      files.push(await openSingle(dir));
    } else {
      for (const shard of new Set(shardNames.values())) files.push(await openShard(dir, shard, indexPath));
    }
    const tensors = new Map<string, TensorLocation>();
    for (const file of files) {
      for (const [name, entry] of file.tensors) {
        const prev = tensors.get(name);
        if (prev) throw new CheckpointError(file.path, `also stored in ${path.basename(prev.file.path)}`, name);
        tensors.set(name, { file, entry });
      }
    }
    if (shardNames) {
      for (const [name, shard] of shardNames) {
        const loc = tensors.get(name);
        if (!loc || path.basename(loc.file.path) !== shard) {
          throw new CheckpointError(indexPath, `weight_map places it in ${shard}, but that shard does not contain it`, name);
        }
      }
    }
    const source = shardNames ? indexPath : files[0].path;
    return { dir, source, indexPath: shardNames ? indexPath : undefined, files, tensors, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** weight_map of the index (tensor → shard file name), or undefined when there is no index. */
async function readIndex(indexPath: string): Promise<Map<string, string> | undefined> {
  let text: string;
  try {
    text = await readFile(indexPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckpointError(indexPath, describeReadError(err));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(indexPath, `invalid JSON (${(err as Error).message})`);
  }
  const weightMap = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new CheckpointError(indexPath, 'missing "weight_map" object');
  }
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    // Shards must sit next to the index: a path elsewhere would let an index read arbitrary files.
    if (typeof shard !== 'string' || shard !== path.basename(shard) || shard === '..' || shard === '.') {
      throw new CheckpointError(indexPath, `weight_map entry ${JSON.stringify(shard)} is not a file name in this directory`, name);
    }
    out.set(name, shard);
  }
  if (out.size === 0) throw new CheckpointError(indexPath, 'weight_map is empty');
  return out;
}

async function openShard(dir: string, shard: string, indexPath: string): Promise<SafetensorsFile> {
  const file = path.join(dir, shard);
  try {
    await stat(file);
  } catch {
    throw new CheckpointError(file, `shard listed in ${path.basename(indexPath)} is missing`);
  }
  return SafetensorsFile.open(file);
}

async function openSingle(dir: string): Promise<SafetensorsFile> {
  const file = path.join(dir, SINGLE_FILE);
  try {
    await stat(file);
  } catch {
    const hasBin = await stat(path.join(dir, 'pytorch_model.bin')).then(() => true, () => false);
    const hint = hasBin ? ' (found pytorch_model.bin: convert it to safetensors first)' : ` (and no ${INDEX_FILE})`;
    throw new CheckpointError(file, `not found${hint}`);
  }
  return SafetensorsFile.open(file);
}
