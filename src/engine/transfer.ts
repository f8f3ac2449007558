// Moving large results from a replica process to its parent through a file in /dev/shm.
// Measured (bench/ipc.ts, 84 MB, 2 cores busy as when replicas compute): structured-clone IPC ran
// at 100–280 MB/s and stalled the parent's event loop for 150–1400 ms while it deserialised;
// a tmpfs file ran at 280–760 MB/s with stalls ≤ 32 ms, as the parent reads it asynchronously.
// Small results (mean embeddings, short logits) still go inline over IPC, and so does a large one
// that the file system cannot hold whole (TransferError: /dev/shm full, 64 MB in a default Docker
// container), written or read.
import { existsSync, rmSync } from 'node:fs';
import { open, readFile, rm, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { SequenceResult } from './batch.js';

/** Results at least this large (bytes) travel by file, smaller ones inline. */
export const DEFAULT_FILE_TRANSFER_MIN_BYTES = 1 << 20;

/** Memory-backed and shared by parent and child on Linux; elsewhere results stay on IPC. */
export const DEFAULT_TRANSFER_DIR = existsSync('/dev/shm') ? '/dev/shm' : undefined;

const FREE_SLACK_BYTES = 1 << 16;

/** Where a float array sits in a result file, in floats. */
export interface Slot {
  offset: number;
  length: number;
}

/** A result that did not go through its file whole (no room, a short write, a short read): it goes inline instead. */
export class TransferError extends Error {
  override readonly name = 'TransferError';
}

/** The file a child may write run `runId`'s result to; the parent can name it even if the child died. */
export function resultFilePath(dir: string, childPid: number, runId: number): string {
  return join(dir, `esm2-replica-${childPid}-${runId}.f32`);
}

/**
 * Parent side, one per Replica: names the run's result file (none for a run that must come back
 * inline) and counts the large results that came inline because the file way failed, logging the
 * first of each kind (the child could not write it; the parent could not read it).
 */
export class TransferWatch {
  fallbacks = 0;
  private readonly warned = new Set<string>();

  constructor(
    private readonly dir: string | undefined,
    private readonly name: string,
    private readonly log: (line: string) => void,
  ) {}

  fileFor(childPid: number, runId: number, inline: boolean): string | undefined {
    return this.dir && !inline ? resultFilePath(this.dir, childPid, runId) : undefined;
  }

  fellBack(kind: 'unwritable' | 'unreadable', reason: string): void {
    this.fallbacks++;
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    const what =
      kind === 'unwritable'
        ? `the result came inline over IPC, as large ones will while ${this.dir} lacks room`
        : 'the batch is run again, its result inline';
    this.log(`warning: replica ${this.name}: a result file in ${this.dir} failed (${reason}); ${what} (logged once; counted in info().inlineFallbacks)`);
  }
}

/** Applies `f` to every array of a result, keeping its shape. */
export function mapArrays<A, B>(result: SequenceResult<A>, f: (array: A) => B): SequenceResult<B> {
  const mapped: SequenceResult<B> = {};
  const perLayer = (byLayer: Record<number, A>) =>
    Object.fromEntries(Object.entries(byLayer).map(([layer, array]) => [layer, f(array)]));
  if (result.logits) mapped.logits = f(result.logits);
  if (result.hidden) mapped.hidden = perLayer(result.hidden);
  if (result.mean) mapped.mean = perLayer(result.mean);
  if (result.bos) mapped.bos = perLayer(result.bos);
  if (result.contacts) mapped.contacts = f(result.contacts);
  return mapped;
}

export function resultBytes(results: SequenceResult[]): number {
  let bytes = 0;
  for (const result of results) mapArrays(result, (array) => (bytes += array.byteLength));
  return bytes;
}

/** Bytes a result file of this layout holds. */
export function layoutBytes(layout: SequenceResult<Slot>[]): number {
  let floats = 0;
  for (const result of layout) mapArrays(result, (slot) => (floats += slot.length));
  return floats * Float32Array.BYTES_PER_ELEMENT;
}

/** Bytes an unprivileged process may still write in `dir`'s file system; undefined if it cannot tell. */
async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const { bavail, bsize } = await statfs(dir);
    return bavail * bsize;
  } catch {
    return undefined; // the write finds out
  }
}

/** The chunks' bytes from `skip` on, as views. */
function remainder(chunks: Uint8Array[], skip: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  for (const chunk of chunks) {
    if (skip >= chunk.byteLength) skip -= chunk.byteLength;
    else {
      rest.push(chunk.subarray(skip));
      skip = 0;
    }
  }
  return rest;
}

/**
 * Child side: writes every array back to back; returns where each one went. Throws TransferError
 * (or the file system's error: ENOSPC, EDQUOT, EFBIG) when the file system has no room for all of
 * it, checked before (statfs) and during the write, whose short count libuv reports without the
 * error that cut it short; the caller removes the partial file and sends the result inline.
 */
export async function writeResultFile(path: string, results: SequenceResult[]): Promise<SequenceResult<Slot>[]> {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const layout = results.map((result) =>
    mapArrays(result, (array) => {
      chunks.push(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      const slot = { offset, length: array.length };
      offset += array.length;
      return slot;
    }),
  );
  const bytes = offset * Float32Array.BYTES_PER_ELEMENT;
  const free = await freeBytes(dirname(path));
  // Slack: tmpfs rounds a file up to whole pages, and other replicas write beside it.
  if (free !== undefined && free < bytes + FREE_SLACK_BYTES) {
    throw new TransferError(`no room in ${dirname(path)}: ${free} bytes free, the result needs ${bytes}`);
  }
  const file = await open(path, 'w');
  try {
    // A short count (space ran out mid-write) is retried for the rest, which then fails with the
    // reason (ENOSPC, …) or, if the shortage was transient, completes.
    for (let written = 0; written < bytes; ) {
      const { bytesWritten } = await file.writev(remainder(chunks, written));
      if (bytesWritten === 0) throw new TransferError(`writing ${path} stopped at ${written} of ${bytes} bytes`);
      written += bytesWritten;
    }
  } finally {
    await file.close();
  }
  return layout;
}

/**
 * Parent side: reads and deletes the file. The arrays are views into one buffer per batch,
 * as Node's IPC deserialiser also returns them (views into the message buffer). A file that is
 * missing or not exactly the layout's size is a TransferError, never a garbled result.
 */
export async function readResultFile(path: string, layout: SequenceResult<Slot>[]): Promise<SequenceResult[]> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new TransferError(`reading ${path} failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await removeQuietly(path);
  }
  const expected = layoutBytes(layout);
  if (bytes.byteLength !== expected) {
    throw new TransferError(`${path} holds ${bytes.byteLength} bytes, the result ${expected}`);
  }
  if (bytes.byteOffset % Float32Array.BYTES_PER_ELEMENT !== 0) bytes = bytes.slice();
  const { buffer, byteOffset } = bytes;
  return layout.map((result) =>
    mapArrays(result, (slot) => new Float32Array(buffer, byteOffset + slot.offset * 4, slot.length)),
  );
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
}

/** For process exit paths, where nothing asynchronous runs any more. */
export function removeQuietlySync(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // best effort: the parent removes what it can name
  }
}
