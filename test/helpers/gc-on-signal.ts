// Preloaded into a server under test (`node --expose-gc --import …/gc-on-signal.js`, see
// GC_ON_SIGNAL in cli-server.ts): on SIGUSR2, a full garbage collection, then one line on stderr,
// `gc-memory {…}` with process.memoryUsage(). Not part of the server: a leak test's probe.
const gc = (globalThis as { gc?: () => void }).gc;
process.on('SIGUSR2', () => {
  for (let i = 0; i < 3; i++) gc?.();
  // A moment for the freed pages to go back to the kernel before RSS is read.
  setTimeout(() => process.stderr.write(`gc-memory ${JSON.stringify({ ...process.memoryUsage(), gc: gc !== undefined })}\n`), 100);
});
