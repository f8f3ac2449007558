// Large results whose result file cannot carry them (a full /dev/shm) still arrive whole, inline:
// real replicas on the golden checkpoint, and real file systems that refuse the write, cut it
// short, or hand back other bytes than were written. Nothing is mocked: the short write is the
// kernel's (RLIMIT_FSIZE stops a write where a full tmpfs would), the rest are /proc, /dev/full
// and /dev/null.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, symlink, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { compileCheckpoint, type CompiledModel } from '../src/compile/index.js';
import type { SequenceResult, Want } from '../src/engine/batch.js';
import { Replica, type ReplicaOptions } from '../src/engine/replica.js';
import { readResultFile, resultBytes, resultFilePath, TransferError, writeResultFile } from '../src/engine/transfer.js';
import { loadCheckpoint, type Esm2Checkpoint } from '../src/model/checkpoint.js';
import { fixtureModelDir, goldenCases, goldenTensor, relativeError, type GoldenCase } from './helpers/golden.js';
import { tempDir } from './helpers/temp-dir.js';

const WANT: Want = { logits: true, hidden: [1, 2], mean: [0, 2], bos: [2] };
/** The write limit the kernel enforces on the child: a file system full after this many bytes. */
const ROOM_BYTES = 4096;

let checkpoint: Esm2Checkpoint;
let cacheDir: string;
let plain: CompiledModel;
let cases: GoldenCase[];
let rows: Int32Array[];
/** What a replica that sends everything inline answers. */
let expected: SequenceResult[];
const started: Replica[] = [];

const hasPrlimit = (() => {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
/** procfs reports no free blocks: a file system with no room at all. */
const procHasNoRoom = (() => {
  try {
    return statfsSync('/proc').bavail === 0;
  } catch {
    return false;
  }
})();

async function startReplica(options: Partial<ReplicaOptions>): Promise<Replica> {
  const replica = await Replica.start({
    device: 'cpu',
    models: { default: plain.onnxPath },
    padTokenId: plain.padTokenId,
    intraOpNumThreads: 1,
    ...options,
  });
  started.push(replica);
  return replica;
}

before(async () => {
  checkpoint = await loadCheckpoint(fixtureModelDir);
  cacheDir = await mkdtemp(join(tmpdir(), 'esm2-transfer-'));
  plain = await compileCheckpoint(checkpoint, { variant: 'default', precision: 'fp32', cacheDir });
  cases = await goldenCases();
  rows = cases.map((c) => checkpoint.tokenizer.encode(c.sequence));
  expected = await (await startReplica({ fileTransferMinBytes: Infinity })).run({ tokens: rows, want: WANT });
  assert.ok(resultBytes(expected) > 4 * ROOM_BYTES, 'the result is larger than the room left');
});

after(async () => {
  await Promise.allSettled(started.map((r) => r.close()));
  await checkpoint.close();
  await rm(cacheDir, { recursive: true, force: true });
});

/** A replica whose every result goes to a file in `dir`, and the lines it logs. */
async function fileReplica(dir: string): Promise<{ replica: Replica; logs: string[] }> {
  const replica = await startReplica({ fileTransferMinBytes: 0, transferDir: dir });
  const logs: string[] = [];
  replica.on('log', (line) => logs.push(line));
  return { replica, logs };
}

/** Bit-identical to the inline replica's answer, and fair-esm's mean embeddings. */
async function assertWhole(actual: SequenceResult[]): Promise<void> {
  assert.equal(actual.length, expected.length);
  for (const [i, c] of cases.entries()) {
    assert.deepEqual(actual[i], expected[i], `${c.id}: equal to the inline result`);
    const error = relativeError(actual[i].mean![2], await goldenTensor(c.id, 'mean'));
    assert.ok(error <= 1e-5, `${c.id} mean: relative error ${error}`);
  }
}

async function resultFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith('esm2-replica-'));
}

test('a write cut short (the file system filled up mid-write) is detected: the result comes inline, whole', { skip: !hasPrlimit && 'needs prlimit (util-linux)' }, async (t) => {
  const dir = await tempDir(t);
  const { replica, logs } = await fileReplica(dir);
  // The kernel now stops the child's writes at ROOM_BYTES (EFBIG), as a full tmpfs stops them (ENOSPC):
  // the write returns a short count, and the error comes only on the next one.
  execFileSync('prlimit', ['--pid', String(replica.info().pid), `--fsize=${ROOM_BYTES}`]);
  await assertWhole(await replica.run({ tokens: rows, want: WANT }));
  await assertWhole(await replica.run({ tokens: rows, want: WANT }));
  const info = replica.info();
  assert.equal(info.batchesRun, 2, 'each batch ran once: no split, no rerun');
  assert.equal(info.restarts, 0);
  assert.equal(info.inlineFallbacks, 2);
  assert.equal(logs.length, 1, `one warning per replica: ${logs.join('\n')}`);
  assert.match(logs[0], /^warning: replica cpu: a result file in .+ failed \(EFBIG: file too large.*\); the result came inline/);
  assert.deepEqual(await resultFiles(dir), [], 'the partial files are removed');
});

test('a file system without room is not written to at all', { skip: !procHasNoRoom && 'needs /proc reporting 0 free blocks (Linux)' }, async () => {
  const { replica, logs } = await fileReplica('/proc');
  await assertWhole(await replica.run({ tokens: rows, want: WANT }));
  assert.equal(replica.info().inlineFallbacks, 1);
  assert.equal(replica.info().batchesRun, 1);
  assert.match(logs.join('\n'), /no room in \/proc: 0 bytes free, the result needs \d+/);
});

test('a write refused at its first byte (ENOSPC) goes inline and leaves no file', async (t) => {
  const dir = await tempDir(t);
  const { replica, logs } = await fileReplica(dir);
  await symlink('/dev/full', resultFilePath(dir, replica.info().pid!, 1)); // the path of run 1
  await assertWhole(await replica.run({ tokens: rows, want: WANT }));
  assert.equal(replica.info().inlineFallbacks, 1);
  assert.match(logs.join('\n'), /ENOSPC/);
  assert.deepEqual(await resultFiles(dir), []);
});

test('a result file that reads back short is run again inline, not failed or split', async (t) => {
  const dir = await tempDir(t);
  const { replica, logs } = await fileReplica(dir);
  // The child writes all of it (to /dev/null) and says so; the parent reads back 0 bytes.
  await symlink('/dev/null', resultFilePath(dir, replica.info().pid!, 1));
  await assertWhole(await replica.run({ tokens: rows, want: WANT }));
  const info = replica.info();
  assert.equal(info.batchesRun, 2, 'the batch ran twice on the same process: file, then inline');
  assert.equal(info.restarts, 0);
  assert.equal(info.inlineFallbacks, 1);
  assert.match(logs.join('\n'), /holds 0 bytes, the result \d+\); the batch is run again, its result inline/);
  assert.deepEqual(await resultFiles(dir), []);
  await assertWhole(await replica.run({ tokens: rows, want: WANT })); // later runs use files again
  assert.equal(replica.info().inlineFallbacks, 1);
});

test('readResultFile refuses a truncated file with a TransferError and removes it', async (t) => {
  const path = join(await tempDir(t), 'result.f32');
  const layout = await writeResultFile(path, expected);
  assert.equal((await stat(path)).size, resultBytes(expected));
  await truncate(path, resultBytes(expected) - 4);
  await assert.rejects(readResultFile(path, layout), (err: unknown) => {
    assert.ok(err instanceof TransferError, String(err));
    assert.match(err.message, new RegExp(`holds ${resultBytes(expected) - 4} bytes, the result ${resultBytes(expected)}$`));
    return true;
  });
  await assert.rejects(stat(path), { code: 'ENOENT' });
  await assert.rejects(readResultFile(path, layout), TransferError);
});
