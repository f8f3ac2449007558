// The stalled-upload attack of docs/reliability.md, promise 3, on 127.0.0.1: N connections each
// declare a 10 MB JSON body, send 9.9 MB of it and stall until CLIENT_TIMEOUT_MS (408). The server is
// a child process reading bodies as the service does (test/helpers/body-memory-server.ts): with the
// budget (server/body.ts) or, `--before`, with Fastify's own parsers as before it. Prints its memory
// (after gc()) at the start, once the uploads are all sent, and after the 408s.
// node dist/bench/body-flood.js [--before] [connections=450] [budget bytes=268435456]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { postHead, StalledUpload } from '../test/helpers/stalled-upload.js';

const args = process.argv.slice(2);
const before = args.includes('--before');
const [connections = 450, budget = 256 * 2 ** 20] = args.filter((a) => !a.startsWith('--')).map(Number);
const LIMIT = 10 * 2 ** 20;
const CLIENT_TIMEOUT_MS = 20_000;
const child = fork(fileURLToPath(new URL('../test/helpers/body-memory-server.js', import.meta.url)), [String(LIMIT), String(budget), String(CLIENT_TIMEOUT_MS), ...(before ? ['fastify'] : [])], {
  execArgv: ['--expose-gc'],
});
type Memory = { rss: number; external: number; arrayBuffers: number; inFlight: number; peak: number };
const waiting: ((m: Memory & { port: number; type: string }) => void)[] = [];
child.on('message', (m: Memory & { port: number; type: string }) => waiting.shift()?.(m));
const nextMessage = () => new Promise<Memory & { port: number; type: string }>((resolve) => waiting.push(resolve));
const memory = () => {
  const reply = nextMessage();
  child.send({ type: 'memory' });
  return reply;
};
const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
const show = (label: string, m: Memory) => console.log(`${label.padEnd(28)} RSS ${mib(m.rss).padStart(9)}  external ${mib(m.external).padStart(9)}  arrayBuffers ${mib(m.arrayBuffers).padStart(9)}  budget held ${mib(m.inFlight)}`);

const { port } = await nextMessage();
console.log(`${before ? "before (Fastify's parsers)" : `with MAX_BODY_BYTES_IN_FLIGHT=${budget}`}: ${connections} uploads of 9.9 of 10 MB, CLIENT_TIMEOUT_MS=${CLIENT_TIMEOUT_MS}`);
show('start', await memory());
const body = Buffer.alloc(9_900_000, 0x20);
const started = performance.now();
const uploads = Array.from({ length: connections }, () => new StalledUpload(port, postHead('/echo', 'Content-Length: 10000000\r\n')));
await Promise.all(uploads.map((u) => Promise.race([u.send(body), u.answeredOrClosed()])));
let peakRss = 0;
const sampler = setInterval(() => void memory().then((m) => (peakRss = Math.max(peakRss, m.rss))), 500);
show(`all sent (${((performance.now() - started) / 1000).toFixed(1)} s)`, await memory());
await Promise.all(uploads.map((u) => u.done));
clearInterval(sampler);
// ArrayBuffer backing stores are freed by a sweeper after the gc(): sample a few times.
let last = await memory();
for (let i = 0; i < 20 && last.arrayBuffers > 16 * 2 ** 20; i++) {
  await new Promise((resolve) => setTimeout(resolve, 500));
  last = await memory();
}
const statuses = new Map<string, number>();
for (const u of uploads) statuses.set(String(u.status()), (statuses.get(String(u.status())) ?? 0) + 1);
show(`after the 408s (${((performance.now() - started) / 1000).toFixed(1)} s)`, last);
console.log(`peak RSS sampled ${mib(peakRss)}; answers: ${[...statuses].map(([s, n]) => `${s === 'NaN' ? 'reset unanswered' : s} × ${n}`).join(', ')}`);
child.send({ type: 'exit' });
