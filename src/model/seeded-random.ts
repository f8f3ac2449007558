// Fast deterministic random numbers for random checkpoints: xoshiro128** seeded through splitmix32.
// Each tensor gets its own stream keyed by (seed, name), so values do not depend on write order and
// tied tensors (LM decoder = word embeddings) can share a stream.

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class SeededStream {
  private readonly s = new Uint32Array(4);

  /** `seed` is a non-negative integer up to 2^53; `key` separates streams (a tensor name). */
  constructor(seed: number, key: string) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${seed}`);
    let x = splitmix32(fnv1a(key) ^ splitmix32(seed >>> 0) ^ splitmix32(Math.floor(seed / 2 ** 32) + 0x6a09e667));
    for (let i = 0; i < 4; i++) {
      x = splitmix32(x + i);
      this.s[i] = x;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1; // xoshiro's one forbidden state
  }

  /**
   * Fills `out` with `center + U(-1, 1) * halfWidth`. Uniform rather than Gaussian keeps generation
   * at a few ns per value (a 15B checkpoint is 15e9 values); the spread is what matters for tests.
   */
  fillUniform(out: Float32Array, center: number, halfWidth: number): void {
    let [a, b, c, d] = this.s;
    const scale = (2 * halfWidth) / 2 ** 32;
    const base = center - halfWidth;
    for (let i = 0; i < out.length; i++) {
      const m = Math.imul(b, 5);
      const r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = (d << 11) | (d >>> 21);
      out[i] = base + r * scale;
    }
    this.s[0] = a;
    this.s[1] = b;
    this.s[2] = c;
    this.s[3] = d;
  }
}
