// One checkpoint at two precisions on the same sequences: how far the test precision (int8, fp16)
// moves what users read against the reference (fp32 of the same graph). `esm2 compare` and
// bench/int8-accuracy.ts both print these figures.
import type { Tokenizer } from '../model/tokenizer.js';
import type { Infer } from './inference.js';
import { maskedLogProbs } from './masked-marginals.js';
import { pseudoLikelihoodFromMatrix } from './pll.js';
import { deepMutationalScan } from './variants.js';

export interface SequenceComparison {
  /** Residues L. */
  length: number;
  /** Cosine of the mean embeddings (last layer, residues 1 … L). */
  meanCosine: number;
  /** ‖test − ref‖ / ‖ref‖ over all L + 2 logits rows. */
  logitsRelError: number;
  /** ‖test − ref‖ / ‖ref‖ over the L per-residue rows of the last layer. */
  rowsRelError: number;
  /** |PLL_test − PLL_ref| / L (masked only). */
  pllDiffPerResidue?: number;
  /** Spearman of the L × 19 deep-mutational-scan scores (wild-type entries left out; masked only). */
  dmsSpearman?: number;
}

export interface CompareOptions {
  /** Also the L masked passes per sequence and precision: PLL and the DMS come from the same matrix. */
  masked: boolean;
  windowSize?: number;
}

/** Compares one cls … eos `tokens` sequence; the reference runs first, then the test. */
export async function compareSequence(reference: Infer, test: Infer, tokenizer: Tokenizer, tokens: Int32Array, numLayers: number, options: CompareOptions): Promise<SequenceComparison> {
  const want = { logits: true, hidden: [numLayers], mean: [numLayers] };
  const [ref] = await reference([tokens], want);
  const [out] = await test([tokens], want);
  const residues = tokens.length - 2;
  const rows = (h: Float32Array) => h.subarray(h.length / tokens.length, (h.length / tokens.length) * (residues + 1));
  const result: SequenceComparison = {
    length: residues,
    meanCosine: cosine(out.mean![numLayers], ref.mean![numLayers]),
    logitsRelError: relativeError(out.logits!, ref.logits!),
    rowsRelError: relativeError(rows(out.hidden![numLayers]), rows(ref.hidden![numLayers])),
  };
  if (!options.masked) return result;
  const refMatrix = await maskedLogProbs(reference, tokenizer, tokens, { windowSize: options.windowSize });
  const testMatrix = await maskedLogProbs(test, tokenizer, tokens, { windowSize: options.windowSize });
  const vocab = tokenizer.vocab.length;
  const pllRef = pseudoLikelihoodFromMatrix(refMatrix, tokens, vocab).pseudo_log_likelihood;
  const pllTest = pseudoLikelihoodFromMatrix(testMatrix, tokens, vocab).pseudo_log_likelihood;
  const scores = (matrix: Float32Array) => {
    const scan = deepMutationalScan(matrix, tokens, tokenizer);
    const wildTypes = Array.from(tokens.subarray(1, -1), (id) => scan.amino_acids.indexOf(tokenizer.vocab[id]));
    return scan.matrix.flatMap((row, i) => row.filter((_, j) => j !== wildTypes[i]));
  };
  return { ...result, pllDiffPerResidue: Math.abs(pllTest - pllRef) / residues, dmsSpearman: spearman(scores(testMatrix), scores(refMatrix)) };
}

/** The worst of each figure over sequences (lowest cosine and Spearman, largest errors). */
export function worstOf(results: readonly SequenceComparison[]): Omit<SequenceComparison, 'length'> & { sequences: number; residues: number } {
  const max = (f: (r: SequenceComparison) => number | undefined) => {
    const values = results.map(f).filter((v): v is number => v !== undefined);
    return values.length ? Math.max(...values) : undefined;
  };
  const min = (f: (r: SequenceComparison) => number | undefined) => {
    const values = results.map(f).filter((v): v is number => v !== undefined);
    return values.length ? Math.min(...values) : undefined;
  };
  const pll = max((r) => r.pllDiffPerResidue);
  const dms = min((r) => r.dmsSpearman);
  return {
    sequences: results.length,
    residues: results.reduce((sum, r) => sum + r.length, 0),
    meanCosine: min((r) => r.meanCosine) ?? Number.NaN,
    logitsRelError: max((r) => r.logitsRelError) ?? Number.NaN,
    rowsRelError: max((r) => r.rowsRelError) ?? Number.NaN,
    ...(pll !== undefined ? { pllDiffPerResidue: pll } : {}),
    ...(dms !== undefined ? { dmsSpearman: dms } : {}),
  };
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/** ‖a − b‖ / ‖b‖ (Frobenius), in float64. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} and ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] * b[i];
  }
  return Math.sqrt(num / den);
}

/** Spearman's rank correlation (ties get their average rank). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} and ${b.length}`);
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (a.length - 1) / 2;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (ra[i] - mean) * (rb[i] - mean);
    aa += (ra[i] - mean) ** 2;
    bb += (rb[i] - mean) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

function ranks(values: readonly number[]): Float64Array {
  const order = values.map((_, i) => i).sort((i, j) => values[i] - values[j]);
  const out = new Float64Array(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && values[order[end]] === values[order[start]]) end++;
    for (let k = start; k < end; k++) out[order[k]] = (start + end - 1) / 2;
    start = end;
  }
  return out;
}

/** The comparison as an aligned text table, one row per label. */
export function comparisonTable(rows: readonly { label: string; figures: Omit<SequenceComparison, 'length'> & { sequences?: number; residues?: number } }[]): string {
  const header = ['', 'seqs', 'residues', 'mean cos', 'logits rel err', 'rows rel err', '|ΔPLL|/L', 'DMS Spearman'];
  const fmt = (v: number | undefined, digits: number, exp = false) => (v === undefined ? '—' : exp ? v.toExponential(digits) : v.toFixed(digits));
  const body = rows.map(({ label, figures: f }) => [
    label,
    f.sequences === undefined ? '—' : String(f.sequences),
    f.residues === undefined ? '—' : String(f.residues),
    fmt(f.meanCosine, 6),
    fmt(f.logitsRelError, 2, true),
    fmt(f.rowsRelError, 2, true),
    fmt(f.pllDiffPerResidue, 2, true),
    fmt(f.dmsSpearman, 4),
  ]);
  const all = [header, ...body];
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  return all.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}
