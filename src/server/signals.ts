// What SIGTERM and SIGINT do to `esm2 serve`: the first drains, a second exits at once. A repeat of
// the first signal within SAME_SIGNAL_WINDOW_MS is the same signal, not a second one.

/**
 * A signal sent to a whole process group (`kill -TERM -<pgid>`: systemd's default KillMode=control-group,
 * `docker stop` of a shell wrapper, Ctrl-C in a terminal) reaches `npm start` and this process alike,
 * and npm forwards its copy to its child again: the copy arrives milliseconds after the original
 * (7–13 ms measured with npm 11). Within this window a repeat of the same signal is that copy, not a person asking
 * to stop now. Half a second is far above any forwarding delay, and below the second or so a person
 * takes to press Ctrl-C again because the first did not end it fast enough.
 */
export const SAME_SIGNAL_WINDOW_MS = 500;

export interface SignalHandlers {
  /** The first signal: stop taking work, finish what was accepted, exit. */
  drain(signal: NodeJS.Signals): void;
  /** A second signal (another one, or the same after the window): exit now with `code`. */
  exitNow(signal: NodeJS.Signals, code: number): void;
  /** A repeat of the first signal within the window (a forwarded copy): nothing to do but say so. */
  repeated?(signal: NodeJS.Signals, afterMs: number): void;
}

/** 128 + the signal's number, as a shell reports death by that signal: 130 for SIGINT, 143 for SIGTERM. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (signal === 'SIGINT' ? 2 : 15);
}

/** The decision for each SIGTERM/SIGINT, separate from the process for tests; `now` in milliseconds. */
export function signalPolicy(handlers: SignalHandlers, now: () => number = () => performance.now()): (signal: NodeJS.Signals) => void {
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  return (signal) => {
    const at = now();
    if (first === undefined) {
      first = { signal, at };
      handlers.drain(signal);
    } else if (signal === first.signal && at - first.at < SAME_SIGNAL_WINDOW_MS) {
      handlers.repeated?.(signal, at - first.at);
    } else {
      handlers.exitNow(signal, signalExitCode(signal));
    }
  };
}

/** Installs the policy on this process's SIGTERM and SIGINT. */
export function onStopSignals(handlers: SignalHandlers): void {
  const handle = signalPolicy(handlers);
  process.on('SIGTERM', () => handle('SIGTERM'));
  process.on('SIGINT', () => handle('SIGINT'));
}
