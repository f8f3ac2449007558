// Exact conversions between float32 and the 16-bit formats checkpoints are stored in.
// Float32 → 16-bit rounds to nearest, ties to even (what PyTorch's .half()/.bfloat16() do), so a
// checkpoint re-saved here matches one re-saved by torch bit for bit.

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE binary16 bits of a float32 given as its raw bits. */
function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13); // inf; NaN stays a (quiet) NaN
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    // Result is subnormal (or zero): below half the smallest subnormal 2^-24 it rounds to zero.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const kept = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    // A carry out of the subnormal range yields 0x400, which is exactly the smallest normal: correct.
    return sign | (rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept);
  }
  const h = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A mantissa carry propagates into the exponent (and up to inf), as IEEE rounding requires.
  return rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1) ? h + 1 : h;
}

/** Float32 value of binary16 bits (every half is exactly representable in float32). */
function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// 65536-entry decode table: F16 checkpoints decode with one lookup per element.
let f16Table: Float32Array | undefined;
function f16DecodeTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToNumber(h);
  }
  return f16Table;
}

function u32View(src: Float32Array): Uint32Array {
  return new Uint32Array(src.buffer, src.byteOffset, src.length);
}

/** Float32 → binary16 bits, round-to-nearest-even; overflow → ±inf; NaN preserved. */
export function float32ToFloat16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = u32View(src);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

/** binary16 bits → Float32 (exact, including subnormals, ±inf and NaN). */
export function float16ToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const table = f16DecodeTable();
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  return out;
}

/** Float32 → bfloat16 bits (upper half of the float32), round-to-nearest-even; NaN preserved. */
export function float32ToBfloat16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = u32View(src);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
      out[i] = (x >>> 16) | 0x40; // keep NaN a NaN even if its payload sits in the dropped bits
    } else {
      // Finite x and ±inf stay below 2^32 after adding the rounding bias, so >>> is exact.
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/** bfloat16 bits → Float32 (exact: the bits become the upper half of a float32). */
export function bfloat16ToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = u32View(out);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

/** Scalar helpers (tests and one-off values). */
export function toFloat16Bits(value: number): number {
  scratchF32[0] = value;
  return f32BitsToF16Bits(scratchU32[0]);
}
export function fromFloat16Bits(bits: number): number {
  return f16BitsToNumber(bits & 0xffff);
}
export function toBfloat16Bits(value: number): number {
  return float32ToBfloat16(Float32Array.of(value))[0];
}
export function fromBfloat16Bits(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}
/** The value after a round trip through binary16 (e.g. rotary inv_freq as stored by ESM). */
export function roundToFloat16(value: number): number {
  return fromFloat16Bits(toFloat16Bits(value));
}
