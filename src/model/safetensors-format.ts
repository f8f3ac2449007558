// The safetensors layout: 8-byte little-endian header length N, N bytes of JSON
// `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {str: str} }`,
// then the data section; offsets are relative to the start of the data section.
import { CheckpointError, formatShape } from './errors.js';

export const DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_BYTES;
/** The dtypes this project reads as weights and writes. */
export type FloatDtype = 'F32' | 'F16' | 'BF16';
export const FLOAT_DTYPES: readonly FloatDtype[] = ['F32', 'F16', 'BF16'];

export interface TensorEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte offsets relative to the start of the data section (end exclusive). */
  begin: number;
  end: number;
}

export interface ParsedHeader {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** Absolute file offset of the data section (8 + header length). */
  dataStart: number;
}

/** The safetensors reference implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Checks the 8-byte length prefix against the file size; returns the header length. */
export function checkHeaderLength(file: string, prefix: Buffer, fileSize: number): number {
  if (fileSize < 8) throw new CheckpointError(file, `file is ${fileSize} bytes, too short for a safetensors header`);
  const n = prefix.readBigUInt64LE(0);
  if (n === 0n || n > BigInt(MAX_HEADER_BYTES) || n > BigInt(fileSize - 8)) {
    throw new CheckpointError(
      file,
      `header length ${n} is impossible for a ${fileSize}-byte file (not a safetensors file, or truncated)`,
    );
  }
  return Number(n);
}

/** Parses and validates the JSON header; every tensor must fit inside the data section without overlap. */
export function parseHeader(file: string, json: Buffer, fileSize: number): ParsedHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new CheckpointError(file, `header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CheckpointError(file, 'header is not a JSON object');
  }
  const dataStart = 8 + json.length;
  const dataBytes = fileSize - dataStart;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};

  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(file, value);
      continue;
    }
    tensors.set(name, parseEntry(file, name, value));
  }

  // Sorted by offset, each tensor must start at or after the previous one's end and end inside the file.
  const byOffset = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let prevEnd = 0;
  let prevName = '';
  for (const [name, e] of byOffset) {
    if (e.begin < prevEnd) {
      throw new CheckpointError(file, `data_offsets [${e.begin},${e.end}] overlap tensor "${prevName}" (ends at ${prevEnd})`, name);
    }
    if (e.end > dataBytes) {
      throw new CheckpointError(
        file,
        `data_offsets [${e.begin},${e.end}] run past the end of the data section (${dataBytes} bytes): file truncated or header corrupt`,
        name,
      );
    }
    prevEnd = e.end;
    prevName = name;
  }
  return { tensors, metadata, dataStart };
}

function parseMetadata(file: string, value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CheckpointError(file, '__metadata__ is not a JSON object');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new CheckpointError(file, `__metadata__ value for "${k}" is not a string`);
    out[k] = v;
  }
  return out;
}

function parseEntry(file: string, name: string, value: unknown): TensorEntry {
  const bad = (problem: string): never => {
    throw new CheckpointError(file, problem, name);
  };
  if (typeof value !== 'object' || value === null) bad('header entry is not an object');
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) bad(`unknown dtype ${JSON.stringify(dtype)}`);
  const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!Array.isArray(shape) || !shape.every(isIndex)) bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex) || offsets[0] > offsets[1]) {
    bad(`data_offsets ${JSON.stringify(offsets)} is not a [begin, end] pair with begin <= end`);
  }
  const entry: TensorEntry = {
    dtype: dtype as SafetensorsDtype,
    shape: shape as number[],
    begin: (offsets as number[])[0],
    end: (offsets as number[])[1],
  };
  const expected = numel(entry.shape) * DTYPE_BYTES[entry.dtype];
  if (entry.end - entry.begin !== expected) {
    bad(`data_offsets span ${entry.end - entry.begin} bytes but ${entry.dtype} ${formatShape(entry.shape)} needs ${expected}`);
  }
  return entry;
}

/**
 * Serializes a header for tensors laid out back to back in the given order. The JSON is padded with
 * spaces to a multiple of 8 bytes (as the reference writer does) so the data section stays aligned.
 */
export function buildHeader(
  tensors: ReadonlyArray<{ name: string; dtype: SafetensorsDtype; shape: readonly number[] }>,
  metadata?: Record<string, string>,
): { bytes: Buffer; dataBytes: number; offsets: number[] } {
  const obj: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) obj.__metadata__ = metadata;
  const offsets: number[] = [];
  let pos = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.hasOwn(obj, t.name)) throw new Error(`duplicate or reserved tensor name "${t.name}"`);
    const size = numel(t.shape) * DTYPE_BYTES[t.dtype];
    obj[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [pos, pos + size] };
    offsets.push(pos);
    pos += size;
  }
  let json = JSON.stringify(obj);
  const len = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (len % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const bytes = Buffer.alloc(8 + jsonBytes.length);
  bytes.writeBigUInt64LE(BigInt(jsonBytes.length), 0);
  jsonBytes.copy(bytes, 8);
  return { bytes, dataBytes: pos, offsets };
}
