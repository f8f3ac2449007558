// How long a large per-residue result takes to cross from a replica process to its parent.
// Usage: node dist/bench/ipc.js [sequences=64] [tokens=256] [width=1280] [runs=5] [busyCores=0]
// Moves sequences × tokens × width float32 (84 MB by default) child → parent both ways the engine
// can: inline over fork IPC (REPLICA_FORK_OPTIONS) and through a /dev/shm file (transfer.ts).
// busyCores > 0 keeps that many cores spinning meanwhile, as replicas computing would.
// Prints cold (first) and median times, MB/s, and the parent's longest event-loop stall.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { SequenceResult } from '../src/engine/batch.js';
import { REPLICA_FORK_OPTIONS, type ResultFileMessage, type ResultMessage } from '../src/engine/protocol.js';
import { DEFAULT_TRANSFER_DIR, readResultFile, resultFilePath, writeResultFile } from '../src/engine/transfer.js';

type Transport = 'ipc' | 'file';
interface Request {
  transport: Transport;
  id: number;
}

const isChild = process.argv[2] === 'child';
const args = process.argv.slice(isChild ? 3 : 2);
const [sequences, tokens, width, runs, busyCores] = [64, 256, 1280, 5, 0].map((fallback, i) => Number(args[i] ?? fallback));
const LAYER = 33;

function makeResults(): SequenceResult[] {
  return Array.from({ length: sequences }, (_, s) => ({ hidden: { [LAYER]: new Float32Array(tokens * width).fill(s) } }));
}

function child(): void {
  const results = makeResults();
  process.on('message', async ({ transport, id }: Request) => {
    if (transport === 'ipc') return process.send?.({ type: 'result', id, results } satisfies ResultMessage);
    const layout = await writeResultFile(resultFilePath(DEFAULT_TRANSFER_DIR!, process.pid, id), results);
    process.send?.({ type: 'result-file', id, layout } satisfies ResultFileMessage);
  });
}

async function receive(worker: ChildProcess, transport: Transport, id: number): Promise<SequenceResult[]> {
  const reply = new Promise<ResultMessage | ResultFileMessage>((resolve) => worker.once('message', resolve));
  worker.send({ transport, id } satisfies Request);
  const message = await reply;
  if (message.type === 'result') return message.results;
  return readResultFile(resultFilePath(DEFAULT_TRANSFER_DIR!, worker.pid!, id), message.layout);
}

async function measure(worker: ChildProcess, transport: Transport): Promise<void> {
  const stall = monitorEventLoopDelay({ resolution: 1 });
  const times: number[] = [];
  for (let id = 0; id <= runs; id++) {
    if (id === 1) stall.enable(); // the cold run pays page faults and JIT; stalls are counted warm
    const start = performance.now();
    const results = await receive(worker, transport, id);
    times.push(performance.now() - start);
    if (results[sequences - 1].hidden![LAYER][tokens * width - 1] !== sequences - 1) throw new Error('corrupt transfer');
  }
  stall.disable();
  const warm = times.slice(1).sort((a, b) => a - b);
  const median = warm[Math.floor(warm.length / 2)];
  const megabytes = (sequences * tokens * width * 4) / 1e6;
  console.log(
    `${transport.padEnd(4)} ${megabytes.toFixed(1)} MB: cold ${times[0].toFixed(0)} ms, ` +
      `median of ${runs} ${median.toFixed(0)} ms = ${(megabytes / (median / 1000)).toFixed(0)} MB/s, ` +
      `longest parent event-loop stall ${(stall.max / 1e6).toFixed(0)} ms`,
  );
}

async function parent(): Promise<void> {
  console.log(`${sequences} sequences × ${tokens} tokens × ${width} floats, child → parent, ${busyCores} cores busy`);
  const spinners = Array.from({ length: busyCores }, () => spawn(process.execPath, ['-e', 'for (;;);']));
  try {
    for (const transport of DEFAULT_TRANSFER_DIR ? (['ipc', 'file'] as const) : (['ipc'] as const)) {
      // A fresh child per transport, so neither inherits the other's warm-up.
      const worker = fork(fileURLToPath(import.meta.url), ['child', ...args], REPLICA_FORK_OPTIONS);
      await measure(worker, transport);
      worker.kill();
    }
  } finally {
    for (const spinner of spinners) spinner.kill();
  }
}

if (isChild) child();
else await parent();
