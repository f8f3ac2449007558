// The one closed-loop load driver of the benchmarks, and the statistics of what it measured.
// N clients each send a request, wait for its answer, and send the next, until a request count or
// a deadline is reached (both are always set: every loop is bounded in count and in time). What a
// "request" is — an HTTP call, a scheduler submit — is the caller's `send`.

/** One finished request, as the load driver records it. */
export interface Completion {
  /** performance.now() when it was sent / answered. */
  startedAt: number;
  endedAt: number;
  ok: boolean;
  /** HTTP status ("200", "429", …), or "timeout" / "network" / "error" when there was none. */
  status: string;
  /** Sequences and residues the request carried. */
  sequences: number;
  residues: number;
  /** Response body bytes (HTTP only). */
  bytes?: number;
  /** First part of the error body or message, for the log. */
  detail?: string;
}

export interface ClosedLoopOptions {
  concurrency: number;
  /** Most requests started (warm-up excluded: the caller runs warm-up as its own loop). */
  maxRequests: number;
  /** performance.now() after which no client starts another request. */
  deadline: number;
  /** Sends request number `index`; resolves with its completion (a rejection is recorded as status "error"). */
  send(index: number): Promise<Completion>;
}

export interface ClosedLoopResult {
  completions: Completion[];
  /** When the loop started (performance.now()). */
  startedAt: number;
  /** True when the deadline, not the count, ended it. */
  stoppedByDeadline: boolean;
}

/** Runs `concurrency` closed-loop clients; resolves once every started request has finished. */
export async function closedLoop(opts: ClosedLoopOptions): Promise<ClosedLoopResult> {
  if (!(opts.concurrency >= 1)) throw new RangeError(`concurrency must be ≥ 1, got ${opts.concurrency}`);
  if (!Number.isFinite(opts.maxRequests) || opts.maxRequests < 0) throw new RangeError(`maxRequests must be a finite count, got ${opts.maxRequests}`);
  if (!Number.isFinite(opts.deadline)) throw new RangeError('a closed loop needs a finite deadline');
  const completions: Completion[] = [];
  const startedAt = performance.now();
  let issued = 0;
  let stoppedByDeadline = false;
  const client = async () => {
    for (;;) {
      if (issued >= opts.maxRequests) return;
      if (performance.now() >= opts.deadline) {
        stoppedByDeadline = true;
        return;
      }
      const index = issued++;
      const sentAt = performance.now();
      try {
        completions.push(await opts.send(index));
      } catch (err) {
        completions.push({ startedAt: sentAt, endedAt: performance.now(), ok: false, status: 'error', sequences: 0, residues: 0, detail: err instanceof Error ? err.message : String(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.round(opts.concurrency) }, client));
  return { completions, startedAt, stoppedByDeadline };
}

/** Nearest-rank percentile of ascending values (NaN when empty). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export interface LatencyStats {
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export interface PointStats {
  /** Every measured request that was sent (all of them finished), successful or not. */
  requests: number;
  ok: number;
  /** Sequences and residues of the successful requests. */
  sequences: number;
  residues: number;
  /** Failed requests by status ("429", "503", "timeout", …); {} when none failed. */
  errors: Record<string, number>;
  /** The window throughput is measured over: [first send, deadline] with a duration, else [first send, last answer]. */
  window_s: number;
  /** First send to last answer, stragglers after the deadline included. */
  elapsed_s: number;
  /** Successful requests / sequences / residues answered inside the window, per second of the window. */
  requests_per_s: number;
  seq_per_s: number;
  residues_per_s: number;
  /** Latency of the successful requests, ms; null when none succeeded. */
  latency_ms: LatencyStats | null;
  /** Response bytes received (HTTP). */
  bytes: number;
  /** True when the time limit, not the request count, ended a count-bounded run. */
  truncated: boolean;
  /** The first error's detail, if any. */
  first_error?: string;
}

/**
 * Statistics of a measured loop. With `windowEnd` (a duration run) throughput counts what was
 * answered by then — requests still running at the deadline finish and are counted in requests,
 * errors and latency, but not in the rates — so the drain after the deadline does not dilute it.
 */
export function summarize(run: ClosedLoopResult, windowEnd?: number, truncated = false): PointStats {
  const { completions, startedAt } = run;
  const ok = completions.filter((c) => c.ok);
  const lastEnd = completions.reduce((max, c) => Math.max(max, c.endedAt), startedAt);
  const end = windowEnd ?? lastEnd;
  const windowS = Math.max(1e-9, (end - startedAt) / 1000);
  const inWindow = ok.filter((c) => c.endedAt <= end);
  const errors: Record<string, number> = {};
  for (const c of completions) if (!c.ok) errors[c.status] = (errors[c.status] ?? 0) + 1;
  const latencies = ok.map((c) => c.endedAt - c.startedAt).sort((a, b) => a - b);
  const sum = (list: readonly Completion[], pick: (c: Completion) => number) => list.reduce((s, c) => s + pick(c), 0);
  return {
    requests: completions.length,
    ok: ok.length,
    sequences: sum(ok, (c) => c.sequences),
    residues: sum(ok, (c) => c.residues),
    errors,
    window_s: windowS,
    elapsed_s: (lastEnd - startedAt) / 1000,
    requests_per_s: inWindow.length / windowS,
    seq_per_s: sum(inWindow, (c) => c.sequences) / windowS,
    residues_per_s: sum(inWindow, (c) => c.residues) / windowS,
    latency_ms: latencies.length
      ? {
          min: latencies[0],
          p50: percentile(latencies, 50),
          p95: percentile(latencies, 95),
          p99: percentile(latencies, 99),
          max: latencies[latencies.length - 1],
          mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
        }
      : null,
    bytes: sum(completions, (c) => c.bytes ?? 0),
    truncated,
    ...(completions.find((c) => !c.ok)?.detail !== undefined ? { first_error: completions.find((c) => !c.ok)!.detail } : {}),
  };
}

/** Runs an optional warm-up loop, then the measured loop, over one `send`. */
export async function warmupThenMeasure(opts: {
  concurrency: number;
  send(index: number): Promise<Completion>;
  /** Warm-up: this many requests, and/or this many seconds (whichever ends first when both are set). */
  warmupRequests: number;
  warmupS?: number;
  /** Measured: a request count, or a duration (then `maxRequests` only caps it). */
  requests: number;
  durationS?: number;
  /** Longest a count-bounded phase may run, seconds. */
  timeLimitS: number;
  /** Called between warm-up and measurement (e.g. to read server metrics). */
  beforeMeasured?: () => Promise<void>;
}): Promise<{ warmup: ClosedLoopResult; measured: ClosedLoopResult; stats: PointStats }> {
  const now = () => performance.now();
  let cursor = 0;
  const send = (_: number) => opts.send(cursor++);
  const warmupDeadline = now() + 1000 * (opts.warmupS ?? opts.timeLimitS);
  const warmupCount = opts.warmupS !== undefined && opts.warmupRequests <= 0 ? Number.MAX_SAFE_INTEGER : Math.max(0, opts.warmupRequests);
  const warmup = await closedLoop({ concurrency: opts.concurrency, maxRequests: warmupCount, deadline: warmupDeadline, send });
  await opts.beforeMeasured?.();
  const start = now();
  const duration = opts.durationS !== undefined;
  const deadline = start + 1000 * (duration ? opts.durationS! : opts.timeLimitS);
  // The window opens when the deadline was set, so a duration run's window is exactly its duration.
  const measured = { ...(await closedLoop({ concurrency: opts.concurrency, maxRequests: opts.requests, deadline, send })), startedAt: start };
  // A duration run measures up to its deadline; one that hit its request cap first, to its last answer.
  const stats = summarize(measured, duration && measured.stoppedByDeadline ? deadline : undefined, !duration && measured.stoppedByDeadline);
  return { warmup, measured, stats };
}
