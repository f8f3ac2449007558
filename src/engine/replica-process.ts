// The child side of a replica: one process owning the ORT session(s) of one device. The parent
// forks it with an IPC channel; a native crash or hang here costs only this process.
import * as ort from 'onnxruntime-node';
import { executionProvidersFor, formatDevice, parseDevice, type DeviceSpec } from './devices.js';
import { float16ToFloat32 } from '../model/float-formats.js';
import {
  outputsToFetch,
  padTokens,
  splitResults,
  type BatchOutput,
  type SequenceResult,
} from './batch.js';
import { Worker } from 'node:worker_threads';
import { BLOCK_ON_RUN_MS, type ChildMessage, type InitMessage, type ParentMessage, type ReplyMessage, type RunMessage } from './protocol.js';
import { removeQuietly, removeQuietlySync, resultBytes, writeResultFile } from './transfer.js';

interface Sessions {
  init: InitMessage;
  /** The device sessions are created on: the requested one, or cpu after a fallback (a second init). */
  device: DeviceSpec;
  default: ort.InferenceSession;
  contacts?: Promise<ort.InferenceSession>;
}

let sessions: Sessions | undefined;
let faultPending = false;
/** Deleted if the parent vanishes before it could read (and delete) it. */
let lastResultFile: string | undefined;

function send(message: ChildMessage): Promise<void> {
  // Resolves once the message is handed to the channel, so exiting after it cannot drop it.
  return new Promise((resolve) => process.send?.(message, undefined, {}, () => resolve()) ?? resolve());
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * memoryArena false: ORT's CPU arena is off, so what a batch allocates goes back when it ends. The
 * arena keeps its peak for the life of the session, and grows past it: one contacts batch of
 * 4 × 1022 residues on t6 took the process to 4.0 GB, a second to 7.1 GB, kept; without the arena
 * both peak at ~3.1 GB and the process is back at ~0.15 GB after each (docs/reliability.md). The
 * contacts session has it off (its T² attention maps are the big allocation; a contacts request is
 * already slow, its allocations a small share of it); the default session keeps it (< 0.7 GB at
 * 4 × 1024 tokens, and its many small batches are where allocation speed counts).
 */
function createSession(path: string, device: DeviceSpec, init: InitMessage, memoryArena = true): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path, {
    executionProviders: executionProvidersFor(device),
    ...(init.intraOpNumThreads ? { intraOpNumThreads: init.intraOpNumThreads } : {}),
    ...(memoryArena ? {} : { enableCpuMemArena: false }),
  });
}

async function initialize(init: InitMessage): Promise<void> {
  const device = parseDevice(init.device);
  let session: ort.InferenceSession;
  try {
    session = await createSession(init.models.default, device, init);
  } catch (err) {
    if (device.kind === 'cpu') throw err;
    // No usable GPU (missing CUDA libraries, no adapter): the parent decides — the cpu's graphs
    // (its precision) in a second init, or the end of this process when a fallback is not allowed.
    void send({ type: 'device-unavailable', reason: errorText(err) });
    return;
  }
  const layers = session.outputNames.flatMap((name) => /^hidden_(\d+)$/.exec(name)?.[1] ?? []).map(Number);
  if (layers.length === 0) throw new Error(`${init.models.default} has no hidden_K outputs`);
  sessions = { init, device, default: session };
  faultPending = init.faultInjection !== undefined;
  void send({ type: 'ready', actual: formatDevice(device), fallbackReason: init.fallbackReason, numLayers: Math.max(...layers) });
}

function sessionFor(run: RunMessage, s: Sessions): Promise<ort.InferenceSession> {
  if (!run.want.contacts) return Promise.resolve(s.default);
  if (!s.init.models.contacts) throw new Error('contacts requested but this replica has no contacts model');
  if (!s.contacts) {
    s.contacts = createSession(s.init.models.contacts, s.device, s.init, false);
    // A failed creation is not kept, so a later request retries it.
    s.contacts.catch(() => (s.contacts = undefined));
  }
  return s.contacts;
}

function toBatchOutput(tensor: ort.Tensor): BatchOutput {
  if (tensor.type === 'float32') return { data: tensor.data as Float32Array, dims: tensor.dims };
  if (tensor.type === 'float16') return { data: float16ToFloat32(tensor.data as Uint16Array), dims: tensor.dims };
  throw new Error(`unexpected output type ${tensor.type}`);
}

function injectFault(): void {
  if (!faultPending) return;
  faultPending = false;
  if (sessions?.init.faultInjection === 'crash-on-run') process.abort();
  if (sessions?.init.faultInjection === 'hang-on-run') for (;;);
  if (sessions?.init.faultInjection === 'block-on-run') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, BLOCK_ON_RUN_MS);
}

async function reply(message: RunMessage, results: SequenceResult[], init: InitMessage): Promise<ReplyMessage> {
  const path = message.resultFile;
  if (!path || resultBytes(results) < init.fileTransferMinBytes) return { type: 'result', id: message.id, results };
  try {
    lastResultFile = path;
    return { type: 'result-file', id: message.id, layout: await writeResultFile(path, results) };
  } catch (err) {
    // No room (/dev/shm full: 64 MB in a default Docker container), a short write, any write error:
    // no partial file stays behind, and IPC still works. The parent logs and counts it.
    await removeQuietly(path);
    return { type: 'result', id: message.id, results, inlineBecause: errorText(err) };
  }
}

async function run(message: RunMessage): Promise<void> {
  try {
    if (!sessions) throw new Error('run before init');
    injectFault();
    const session = await sessionFor(message, sessions);
    const batch = padTokens(message.tokens, sessions.init.padTokenId);
    const feeds = { input_ids: new ort.Tensor('int64', batch.ids, [batch.batchSize, batch.seqLen]) };
    const fetched = await session.run(feeds, outputsToFetch(message.want));
    const outputs = Object.fromEntries(Object.entries(fetched).map(([name, t]) => [name, toBatchOutput(t)]));
    const lengths = message.tokens.map((row) => row.length);
    void send(await reply(message, splitResults(outputs, lengths, message.want), sessions.init));
  } catch (err) {
    void send({ type: 'run-error', id: message.id, message: errorText(err) });
  }
}

// Answers the parent's heartbeat while a batch blocks this thread (replica-heartbeat.ts); unref'd:
// it never keeps the process alive.
new Worker(new URL('./replica-heartbeat.js', import.meta.url)).unref();

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'init':
      initialize(message).catch(async (err) => {
        await send({ type: 'init-error', message: errorText(err) });
        process.exit(1);
      });
      break;
    case 'run':
      void run(message);
      break;
    case 'close':
      void Promise.allSettled([sessions?.default.release(), sessions?.contacts?.then((s) => s.release())]).then(() =>
        process.exit(0),
      );
      break;
  }
});

// A signal to the whole process group (systemd, `docker stop` of a shell, Ctrl-C, `kill -TERM -pgid`)
// reaches replicas too: they ignore it and finish their batch; the server drains and tells them to
// close ('close' above), or kills them (SIGKILL) when it cannot wait.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);

// The parent is gone: nothing left to serve, and an orphan would hold the device.
process.on('disconnect', () => {
  if (lastResultFile) removeQuietlySync(lastResultFile);
  process.exit();
});
