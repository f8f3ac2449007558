// A request's cost, computed from the request alone before any work starts: the tokens it will
// run (windows and masked copies included), the bytes of results the server will hold for it, and
// the size of its response in the format asked for. Requests past a limit are refused with the
// figure, the limit, its setting and what to send instead; the server's memory for results is a
// budget shared by all requests in flight.
import { resultBytes, type ModelDims, type Want } from '../contract/index.js';
import { CostLimitError, ResultMemoryBusyError } from './errors.js';
import { windowWant, windowsFor } from './windows.js';

/** About this many bytes per float in JSON ("-0.0123456789012345," as JSON.stringify writes a float32). */
export const JSON_BYTES_PER_FLOAT = 20;
const MiB = 1024 * 1024;

export type ResponseFormat = 'json' | 'safetensors';

export interface RequestCost {
  /** Tokens of inference: every row it runs, padded to nothing (cls and eos included). */
  tokens: number;
  /** Bytes of results the server holds for it at the most (engine results, assembled windows, matrices). */
  resultBytes: number;
  /** Floats in its response body, and the body's format. */
  responseFloats: number;
  format: ResponseFormat;
  /** What is costly in it, for the advice in a refusal (e.g. "contacts of 20,000 residues"). */
  largest?: string;
}

export interface CostLimits {
  maxRequestTokens: number;
  maxRequestResultBytes: number;
  maxJsonResponseBytes: number;
}

/** Tokens to run one sequence of `residues`: whole, or as its windows. */
export function sequenceTokens(residues: number, windowSize: number): number {
  return residues <= windowSize ? residues + 2 : windowsFor(residues, windowSize).length * (windowSize + 2);
}

/** Tokens of the masked copies of `positions` positions of a sequence of `residues` (each copy is the sequence or its window). */
export function maskedTokens(residues: number, positions: number, windowSize: number): number {
  return positions * (Math.min(residues, windowSize) + 2);
}

/** Bytes the server holds for one sequence run for `want`: its result, and for windows also theirs until assembled. */
export function sequenceResultBytes(dims: ModelDims, residues: number, windowSize: number, want: Want): number {
  if (residues <= windowSize) return resultBytes(dims, residues + 2, want);
  // Windows return (and assembly builds) the per-residue rows of every layer a mean is asked of.
  const perWindow = windowWant(want);
  const assembled = resultBytes(dims, residues + 2, perWindow) + resultBytes(dims, residues + 2, { mean: want.mean });
  // Assembly counts the windows covering each row (and pair of residues) in a byte each.
  const counts = residues + 2 + (want.contacts ? residues * residues : 0);
  return assembled + counts + windowsFor(residues, windowSize).length * resultBytes(dims, windowSize + 2, perWindow);
}

const figure = (n: number) => Math.round(n).toLocaleString('en-US');
const megabytes = (bytes: number) => `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 1 : 0)} MiB`;

/** Refuses a request whose cost passes a limit (CostLimitError, HTTP 413), naming the figures. */
export function checkCost(cost: RequestCost, limits: CostLimits): void {
  const about = cost.largest ? ` (${cost.largest})` : '';
  if (cost.tokens > limits.maxRequestTokens) {
    throw new CostLimitError(
      `this request needs ${figure(cost.tokens)} tokens of inference${about}, more than MAX_REQUEST_TOKENS = ${figure(limits.maxRequestTokens)}: send fewer or shorter sequences, or fewer positions, per request`,
    );
  }
  if (cost.resultBytes > limits.maxRequestResultBytes) {
    throw new CostLimitError(
      `this request's results need ${megabytes(cost.resultBytes)} of server memory${about}, more than MAX_REQUEST_RESULT_BYTES = ${megabytes(limits.maxRequestResultBytes)}: send fewer sequences or layers per request, or leave out contacts for long sequences`,
    );
  }
  const jsonBytes = cost.responseFloats * JSON_BYTES_PER_FLOAT;
  if (cost.format === 'json' && jsonBytes > limits.maxJsonResponseBytes) {
    throw new CostLimitError(
      `this request's JSON response would be about ${megabytes(jsonBytes)} (${figure(cost.responseFloats)} numbers${about}), more than MAX_JSON_RESPONSE_BYTES = ${megabytes(limits.maxJsonResponseBytes)}: ask for \`Accept: application/octet-stream\` (safetensors, 4 bytes a number), or send fewer sequences or layers per request`,
    );
  }
}

/**
 * The server's memory for results, shared by every request in flight: a request reserves its
 * resultBytes before any work and gives them back when its reply is done (sent or abandoned).
 */
export class ResultMemory {
  private held = 0;

  constructor(readonly limitBytes: number) {}

  get heldBytes(): number {
    return this.held;
  }

  /** Reserves `bytes`; returns the release (idempotent). Throws ResultMemoryBusyError when they don't fit now. */
  reserve(bytes: number): () => void {
    if (bytes > 0 && this.held > 0 && this.held + bytes > this.limitBytes) {
      throw new ResultMemoryBusyError(
        1,
        `the server holds ${megabytes(this.held)} of results for other requests; this one needs ${megabytes(bytes)} more, past MAX_RESULT_BYTES_IN_FLIGHT = ${megabytes(this.limitBytes)}: retry shortly`,
      );
    }
    this.held += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
    };
  }
}

/** The work needs longer than the request may take, at this server's measured rate (HTTP 413 too: it is too costly to answer in time). */
export function checkDeadline(tokens: number, tokensPerSecond: number | undefined, timeoutMs: number, what = 'this request'): void {
  if (tokensPerSecond === undefined || tokensPerSecond <= 0) return;
  const seconds = tokens / tokensPerSecond;
  if (seconds * 1000 <= timeoutMs) return;
  throw new CostLimitError(
    `${what} needs ${figure(tokens)} tokens of inference: about ${Math.ceil(seconds)} s at this server's measured ${figure(tokensPerSecond)} tokens/s, past its deadline (REQUEST_TIMEOUT_MS = ${figure(timeoutMs > 0 ? timeoutMs : 0)} ms ${what === 'this request' ? 'for the whole request' : 'left'}): send fewer or shorter sequences, or fewer positions, per request`,
  );
}

/** The biggest single quantity of a request, for the advice of a refusal. */
function describe(kind: string, residues: number): string {
  return `${kind} of ${figure(residues)} residues`;
}

/** Cost of embedding sequences of `lengths` residues for `want` (esm-extract's outputs: residue rows only). */
export function embedCost(dims: ModelDims, windowSize: number, lengths: readonly number[], want: Want, format: ResponseFormat): RequestCost {
  let tokens = 0;
  let bytes = 0;
  let floats = 0;
  const longest = Math.max(0, ...lengths);
  for (const L of lengths) {
    tokens += sequenceTokens(L, windowSize);
    bytes += sequenceResultBytes(dims, L, windowSize, want);
    const E = dims.hiddenSize;
    floats += (want.mean?.length ?? 0) * E + (want.bos?.length ?? 0) * E + (want.hidden?.length ?? 0) * L * E;
    if (want.logits) floats += L * dims.vocabSize;
    if (want.contacts) floats += L * L;
  }
  const largest = want.contacts ? describe('contacts', longest) : want.hidden?.length ? describe(`${want.hidden.length} layers of per-residue rows`, longest) : undefined;
  return { tokens, resultBytes: bytes, responseFloats: floats, format, ...(largest ? { largest } : {}) };
}

/**
 * Cost of masked-marginal work: for each sequence, `positions` masked copies (the sequence or its
 * window each), an L × V matrix held, and `responseFloats` numbers sent.
 */
export function maskedCost(dims: ModelDims, windowSize: number, sequences: readonly { residues: number; positions: number }[], responseFloats: number): RequestCost {
  let tokens = 0;
  // Each matrix twice (the shared working copy and the one returned) …
  let bytes = 0;
  for (const { residues, positions } of sequences) {
    tokens += maskedTokens(residues, positions, windowSize);
    bytes += 2 * residues * dims.vocabSize * FLOAT_BYTES;
  }
  // … and the masked copies' full logits held until their call completes (masked-marginals.ts: 8 calls of 32).
  const longest = Math.max(0, ...sequences.map((s) => s.residues));
  bytes += 8 * 32 * resultBytes(dims, Math.min(longest, windowSize) + 2, { logits: true });
  return { tokens, resultBytes: bytes, responseFloats, format: 'json', largest: `${figure(sequences.reduce((n, s) => n + s.positions, 0))} masked passes, the longest sequence ${figure(longest)} residues` };
}

const FLOAT_BYTES = 4;

/**
 * Cost of variant scoring of one sequence: masked_marginal runs `positions` masked copies,
 * wt_marginal one unmasked pass; `answers` numbers go back (20 a position for a scan).
 */
export function scoreCost(dims: ModelDims, windowSize: number, residues: number, method: 'masked_marginal' | 'wt_marginal', positions: number, answers: number): RequestCost {
  if (method === 'masked_marginal') return maskedCost(dims, windowSize, [{ residues, positions }], answers);
  return { ...embedCost(dims, windowSize, [residues], { logits: true }, 'json'), responseFloats: answers };
}
