// JSON response bodies written as a pull-based stream, so that a large answer (per-residue rows of
// many layers, tens or hundreds of MB of JSON) is never one string in memory: V8 refuses strings
// over ~512 MB (`Invalid string length`), and even below that a whole answer held for a client that
// does not read costs its full size until the connection goes. jsonStream(value) writes exactly the
// bytes of JSON.stringify(value), with each JsonTensor written as the nested arrays of its numbers
// (JsonTensor.toJSON), a bounded chunk at a time, only as the reader asks for more, yielding to the
// event loop between chunks so that other requests are answered meanwhile.
import { Readable } from 'node:stream';

/** Characters of JSON gathered before a chunk is pushed (ASCII for numbers: ≈ bytes). */
export const JSON_CHUNK_CHARS = 64 * 1024;
/** Numbers stringified at once: 2,048 × at most 24 characters (`-1.1754942106924411e-38`) ≤ 48 KiB. */
const NUMBERS_PER_PIECE = 2048;
/** Longest the stream produces chunks in one go before yielding to the event loop with setImmediate. */
const TURN_MS = 2;

/**
 * A tensor leaf of a JSON value: written as the nested arrays of `Array.from(data)` numbers, one
 * array level per dimension (shape [n]: a flat array; [rows, cols]: an array of rows). Its data is
 * referenced, not copied: do not change it while a stream writes it.
 */
export class JsonTensor {
  constructor(
    readonly data: Float32Array,
    readonly shape: readonly number[],
  ) {
    if (shape.length === 0) throw new RangeError('JsonTensor needs at least one dimension');
    let n = 1;
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`JsonTensor shape [${shape.join(', ')}] has a dimension that is not a whole number ≥ 0`);
      n *= d;
    }
    if (n !== data.length) throw new RangeError(`JsonTensor shape [${shape.join(', ')}] holds ${n} numbers, data has ${data.length}`);
  }

  /** The nested arrays JSON.stringify writes for it (what jsonStream writes, as one value). */
  toJSON(): unknown {
    const nest = (offset: number, dim: number): unknown => {
      const size = this.shape[dim];
      if (dim === this.shape.length - 1) return Array.from(this.data.subarray(offset, offset + size));
      const stride = this.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: size }, (_, i) => nest(offset + i * stride, dim + 1));
    };
    return nest(0, 0);
  }
}

/**
 * A Readable of the UTF-8 bytes of `JSON.stringify(value)`, JsonTensor leaves included (see above).
 * `value` is plain JSON data: objects, arrays, strings, numbers, booleans, null; toJSON methods,
 * undefined/function/symbol members and non-finite numbers are treated as JSON.stringify treats
 * them. A value JSON.stringify would refuse (a cycle, a BigInt) destroys the stream with the same
 * TypeError when it is reached; a top-level value that has no JSON (undefined) throws here.
 * Chunks are at most JSON_CHUNK_CHARS plus one piece (≤ 48 KiB of numbers, or of a long string).
 */
export function jsonStream(value: unknown): Readable {
  const top = toJsonValue(value, '');
  if (top === SKIP) throw new TypeError('jsonStream: the value has no JSON (undefined, a function or a symbol)');
  const pieces = serialize(top, new Set());
  let pending = '';
  let turnStart = performance.now();
  let yielding = false;

  /** Gathers pieces into one chunk; undefined when the value is written out. */
  const nextChunk = (): string | undefined => {
    while (pending.length < JSON_CHUNK_CHARS) {
      const step = pieces.next();
      if (step.done) {
        const last = pending;
        pending = '';
        return last === '' ? undefined : last;
      }
      pending += step.value;
    }
    const chunk = pending;
    pending = '';
    return chunk;
  };

  return new Readable({
    // One chunk ahead at most: the stream holds ~64 KiB beyond what its reader has taken.
    highWaterMark: JSON_CHUNK_CHARS,
    read() {
      if (yielding) return;
      const produce = (): void => {
        let chunk: string | undefined;
        try {
          chunk = nextChunk();
        } catch (err) {
          this.destroy(err as Error);
          return;
        }
        if (chunk === undefined) this.push(null);
        else this.push(Buffer.from(chunk, 'utf8'));
      };
      if (performance.now() - turnStart < TURN_MS) {
        produce();
        return;
      }
      // Let timers and I/O (other requests) run before the next chunk.
      yielding = true;
      setImmediate(() => {
        yielding = false;
        turnStart = performance.now();
        if (!this.destroyed) produce();
      });
    },
    destroy(err, callback) {
      // Drop the generator (and what it references) at once.
      pieces.return(undefined);
      pending = '';
      callback(err);
    },
  });
}

/** Marks a member JSON.stringify leaves out (or writes as null in an array). */
const SKIP = Symbol('skip');

/** The value JSON.stringify would serialize for `holder[key]`: toJSON applied; SKIP for undefined, functions, symbols. */
function toJsonValue(value: unknown, key: string): unknown {
  if (value instanceof JsonTensor) return value;
  if ((typeof value === 'object' && value !== null) || typeof value === 'bigint') {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') value = (toJSON as (k: string) => unknown).call(value, key);
  }
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return SKIP;
  return value;
}

function* serialize(value: unknown, stack: Set<object>): Generator<string, void, undefined> {
  if (value === null) {
    yield 'null';
    return;
  }
  switch (typeof value) {
    case 'string':
      yield* splitString(JSON.stringify(value));
      return;
    case 'number':
    case 'boolean':
    case 'bigint': // throws the TypeError JSON.stringify throws
      yield JSON.stringify(value);
      return;
    case 'object':
      break;
    default:
      throw new TypeError(`jsonStream: unexpected ${typeof value}`);
  }
  if (value instanceof JsonTensor) {
    yield* tensor(value);
    return;
  }
  // Boxed primitives are written as their primitive (JSON.stringify unwraps them).
  if (value instanceof Number || value instanceof String || value instanceof Boolean) {
    yield JSON.stringify(value);
    return;
  }
  if (stack.has(value)) throw new TypeError('Converting circular structure to JSON');
  stack.add(value);
  if (Array.isArray(value)) yield* array(value as unknown[], stack);
  else yield* object(value as Record<string, unknown>, stack);
  stack.delete(value);
}

function* array(items: unknown[], stack: Set<object>): Generator<string, void, undefined> {
  yield '[';
  let i = 0;
  while (i < items.length) {
    if (i > 0) yield ',';
    // A run of plain numbers (nested-array data built by hand) is stringified a piece at a time.
    let j = i;
    while (j < items.length && j - i < NUMBERS_PER_PIECE && typeof items[j] === 'number') j++;
    if (j > i) {
      yield JSON.stringify(items.slice(i, j)).slice(1, -1);
      i = j;
      continue;
    }
    const v = toJsonValue(items[i], String(i));
    if (v === SKIP) yield 'null';
    else yield* serialize(v, stack);
    i++;
  }
  yield ']';
}

function* object(obj: Record<string, unknown>, stack: Set<object>): Generator<string, void, undefined> {
  yield '{';
  let first = true;
  for (const key of Object.keys(obj)) {
    const v = toJsonValue(obj[key], key);
    if (v === SKIP) continue;
    yield `${first ? '' : ','}${JSON.stringify(key)}:`;
    first = false;
    yield* serialize(v, stack);
  }
  yield '}';
}

function* tensor(t: JsonTensor): Generator<string, void, undefined> {
  const { data, shape } = t;
  const last = shape.length - 1;
  const rowLength = shape[last];
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  function* nest(offset: number, dim: number): Generator<string, void, undefined> {
    if (dim === last) {
      if (rowLength <= NUMBERS_PER_PIECE) {
        yield JSON.stringify(Array.from(data.subarray(offset, offset + rowLength)));
        return;
      }
      yield '[';
      for (let i = 0; i < rowLength; i += NUMBERS_PER_PIECE) {
        const end = Math.min(rowLength, i + NUMBERS_PER_PIECE);
        const inner = JSON.stringify(Array.from(data.subarray(offset + i, offset + end))).slice(1, -1);
        yield i === 0 ? inner : `,${inner}`;
      }
      yield ']';
      return;
    }
    yield '[';
    for (let i = 0; i < shape[dim]; i++) {
      if (i > 0) yield ',';
      yield* nest(offset + i * strides[dim], dim + 1);
    }
    yield ']';
  }
  yield* nest(0, 0);
}

/** A long JSON string literal in pieces of about JSON_CHUNK_CHARS, never between the halves of a surrogate pair. */
function* splitString(json: string): Generator<string, void, undefined> {
  if (json.length <= JSON_CHUNK_CHARS) {
    yield json;
    return;
  }
  let start = 0;
  while (start < json.length) {
    let end = Math.min(json.length, start + JSON_CHUNK_CHARS);
    const code = json.charCodeAt(end - 1);
    if (end < json.length && code >= 0xd800 && code <= 0xdbff) end -= 1;
    yield json.slice(start, end);
    start = end;
  }
}
