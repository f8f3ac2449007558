// Recent replica throughput, for the Retry-After of an overloaded queue.

const WINDOW = 64;
const MAX_RETRY_AFTER_SECONDS = 300;

export class ThroughputMeter {
  private readonly samples: { tokens: number; durationMs: number }[] = [];

  /** Records one successful batch: its real tokens and how long its replica took. */
  record(tokens: number, durationMs: number): void {
    this.samples.push({ tokens, durationMs });
    if (this.samples.length > WINDOW) this.samples.shift();
  }

  /**
   * Seconds until `excessTokens` more tokens have been processed, with `replicas` working in
   * parallel. The rate is real tokens per busy second of one replica over the last batches —
   * busy time, not wall time, so idle periods don't make the service look slow — times the
   * replicas up. Without history it answers 1. Always a whole number in [1, 300].
   */
  secondsToProcess(excessTokens: number, replicas: number): number {
    const tokensPerSecond = this.tokensPerSecond(replicas);
    if (tokensPerSecond === undefined) return 1;
    const seconds = Math.ceil(excessTokens / tokensPerSecond);
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, seconds));
  }

  /** Real tokens per second of `replicas` working in parallel at the recent rate; undefined without history. */
  tokensPerSecond(replicas: number): number | undefined {
    const tokens = this.samples.reduce((sum, s) => sum + s.tokens, 0);
    const busyMs = this.samples.reduce((sum, s) => sum + s.durationMs, 0);
    if (tokens === 0 || busyMs <= 0) return undefined;
    return (tokens / busyMs) * 1000 * Math.max(1, replicas);
  }
}
