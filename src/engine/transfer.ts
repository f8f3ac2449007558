// Moving large results from a replica process to its parent through a file in /dev/shm.
// Measured (bench/ipc.ts, 84 MB, 2 cores busy as when replicas compute): structured-clone IPC ran
// at 100–280 MB/s and stalled the parent's event loop for 150–1400 ms while it deserialised;
// a tmpfs file ran at 280–760 MB/s with stalls ≤ 32 ms, as the parent reads it asynchronously.
// Small results (mean embeddings, short logits) still go inline over IPC.
import { existsSync, rmSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SequenceResult } from './batch.js';

/** Results at least this large (bytes) travel by file, smaller ones inline. */
export const DEFAULT_FILE_TRANSFER_MIN_BYTES = 1 << 20;

/** Memory-backed and shared by parent and child on Linux; elsewhere results stay on IPC. */
export const DEFAULT_TRANSFER_DIR = existsSync('/dev/shm') ? '/dev/shm' : undefined;

/** Where a float array sits in a result file, in floats. */
export interface Slot {
  offset: number;
  length: number;
}

/** The file a child may write run `runId`'s result to; the parent can name it even if the child died. */
export function resultFilePath(dir: string, childPid: number, runId: number): string {
  return join(dir, `esm2-replica-${childPid}-${runId}.f32`);
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

/** Child side: writes every array back to back; returns where each one went. */
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
  const file = await open(path, 'w');
  try {
    await file.writev(chunks);
  } finally {
    await file.close();
  }
  return layout;
}

/**
 * Parent side: reads and deletes the file. The arrays are views into one buffer per batch,
 * as Node's IPC deserialiser also returns them (views into the message buffer).
 */
export async function readResultFile(path: string, layout: SequenceResult<Slot>[]): Promise<SequenceResult[]> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } finally {
    await removeQuietly(path);
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
