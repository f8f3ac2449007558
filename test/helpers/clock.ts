// A simulated clock for unit tests of timing logic (batch waits, closed loops): setTimeout,
// setInterval and Date are node:test's mock timers and performance.now() reads the same clock,
// so time moves only when the test advances it — what a test asserts about waits is exact and
// the same on any machine. setImmediate stays real: settle() lets promise chains run.
import type { TestContext } from 'node:test';

export interface SimulatedClock {
  /** Milliseconds since the clock was installed. */
  now(): number;
  /** Lets pending promise callbacks (and what they queue) run, without moving time. */
  settle(): Promise<void>;
  /** Moves time on by `ms`, firing the timers due meanwhile, then settles. */
  advance(ms: number): Promise<void>;
}

export function simulatedClock(t: TestContext): SimulatedClock {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 0 });
  t.mock.method(performance, 'now', () => Date.now());
  const settle = async () => {
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  };
  return {
    now: () => Date.now(),
    settle,
    async advance(ms: number) {
      // One millisecond at a time, settling in between: a timer armed by a promise callback
      // (e.g. the scheduler's pump, a microtask) fires at its time, not at the end of the step.
      for (let i = 0; i < ms; i++) {
        t.mock.timers.tick(1);
        await settle();
      }
      await settle();
    },
  };
}
