// Prometheus text exposition, read back: the benchmarks compare the server's own counters before
// and after a measurement (requests by route and status, batches, padding).

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** Sum of the samples of `name` whose labels include every given label (a value list matches any of its values). */
export function sumOf(samples: readonly Sample[], name: string, labels: Record<string, string | readonly string[]> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => (typeof v === 'string' ? s.labels[k] === v : v.includes(s.labels[k]))))
    .reduce((sum, s) => sum + s.value, 0);
}

/** What esm2-serve did between two scrapes of its /metrics. */
export interface ServerDelta {
  /** esm2_requests_total increase per route, all statuses. */
  requests: Record<string, number>;
  /** Engine batches run, and their mean size in sequences. */
  batches: number;
  mean_batch_sequences: number | null;
  /** 1 − real tokens / padded tokens over those batches (cls and eos count as real). */
  padding: number | null;
  residues: number;
}

export function serverDelta(before: readonly Sample[], after: readonly Sample[], routes: readonly string[]): ServerDelta {
  const d = (name: string, labels: Record<string, string | readonly string[]> = {}) => sumOf(after, name, labels) - sumOf(before, name, labels);
  const batches = d('esm2_batch_sequences_count');
  const sequences = d('esm2_batch_sequences_sum');
  const padded = d('esm2_batch_tokens_sum');
  const residues = d('esm2_residues_total');
  return {
    requests: Object.fromEntries(routes.map((route) => [route, d('esm2_requests_total', { route })])),
    batches,
    mean_batch_sequences: batches > 0 ? sequences / batches : null,
    padding: padded > 0 ? 1 - (residues + 2 * sequences) / padded : null,
    residues,
  };
}
