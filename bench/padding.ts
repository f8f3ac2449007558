// The padding share of a set of batches: (padded − real) / padded tokens, where a batch of n
// sequences computes n × its longest token count.

export function paddingShare(tokenCounts: readonly number[], batches: readonly (readonly number[])[]): number {
  let padded = 0;
  let real = 0;
  for (const batch of batches) {
    let longest = 0;
    for (const i of batch) {
      longest = Math.max(longest, tokenCounts[i]);
      real += tokenCounts[i];
    }
    padded += longest * batch.length;
  }
  return padded === 0 ? 0 : (padded - real) / padded;
}

/**
 * Length-sorted batches under the same padded-token budget as tokenBudgetBatches, but cut where
 * padding is least rather than greedily: an exact partition of the sorted lengths minimising
 * padded tokens + `batchCost` per batch (dynamic programming, O(n²)). Greedy filling from the
 * shortest lets one batch span 30 … 200 residues; this one closes a batch before a long jump.
 */
export function tightBatches(lengths: readonly number[], maxTokens: number, batchCost = 256): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const n = order.length;
  const best = new Float64Array(n + 1).fill(Infinity);
  const cut = new Int32Array(n + 1);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    const longest = lengths[order[j - 1]];
    for (let i = j - 1; i >= 0; i--) {
      const count = j - i;
      if (count > 1 && count * longest > maxTokens) break;
      const cost = best[i] + count * longest + batchCost;
      if (cost < best[j]) {
        best[j] = cost;
        cut[j] = i;
      }
    }
  }
  const batches: number[][] = [];
  for (let j = n; j > 0; j = cut[j]) batches.unshift(order.slice(cut[j], j));
  return batches;
}
